"""FedAvg's train step with the client slots split over 4 devices (shard_map per device, as the
trainer compiles it) gives the numbers of the same step on one device, unrolled and vmapped."""
import jax
import numpy as np
import pytest

from jaxai.core import sharding, trainer
from jaxai.tasks import federated
from tests.helpers import load_config


@pytest.mark.parametrize("parallelism", ["unroll", "vmap"])
def test_split_clients_match_one_device(parallelism):
  config = load_config("mnist_fedavg", {"fl.client_parallelism": parallelism, "fl.rounds": 1})
  task = federated.make_task(config)
  placement = sharding.placement(config, task.sharding_rules)
  abstract = jax.eval_shape(task.init, jax.random.key(0))
  task.source.open(placement)
  state = jax.jit(task.init, out_shardings=placement.state(abstract))(jax.random.key(0))
  assert state.extra["clients"]["params"]["Conv_0"]["kernel"].sharding.spec == jax.sharding.PartitionSpec(("clients",))
  local = jax.device_get(state)
  step = trainer.compile_train_step(task, placement, abstract, task.source.rows(0, state)[0])
  single = jax.jit(task.train_step)  # no mesh: every slot on one device.
  for t in range(task.num_train_steps):  # a whole round: local steps, then the aggregation.
    batch = task.source.rows(t, state)[0]
    state, _ = step(state, batch, jax.random.key(1))
    local, _ = single(local, jax.device_get(batch), jax.random.fold_in(jax.random.key(1), t))
  for a, b in zip(jax.tree.leaves(jax.device_get(state)), jax.tree.leaves(local), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)
