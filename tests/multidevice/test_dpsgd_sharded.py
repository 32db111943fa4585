"""DP-SGD's clipped, noised gradient on 4 devices (the batch split, traced under jax.set_mesh as the
trainer does) equals the one-device gradient for a convolutional model: per-example gradients of
conv kernels are computed per device in shard_map (left to the SPMD partitioner they came out
wrong on devices 1-3)."""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from jaxai.models.small_cnns import DPConvNet
from jaxai.privacy import dpsgd
from jaxai.tasks.classification.task import example_loss_fn


def test_sharded_private_gradient_equals_the_single_device_one():
  model = DPConvNet()
  params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))["params"]
  x = jax.random.normal(jax.random.key(1), (16, 28, 28, 1))
  y, mask = jnp.arange(16) % 10, jnp.arange(16) < 13
  grad = dpsgd.private_grad(example_loss_fn(model, 0.0), 1.0, 0.5, expected_batch_size=12.0)
  args = (params, jax.random.key(2), x, y)
  single, single_aux = jax.jit(grad)(*args, mask=mask, noise_rng=jax.random.key(3))

  mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  rows, repl = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
  with jax.set_mesh(mesh):
    placed = [jax.device_put(a, s) for a, s in zip(args, (repl, repl, rows, rows))]
    split, split_aux = jax.jit(grad)(*placed, mask=jax.device_put(mask, rows), noise_rng=jax.random.key(3))
  np.testing.assert_allclose(split_aux["grad_norm"], single_aux["grad_norm"], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(split), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
