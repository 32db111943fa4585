"""DP-SGD's gradient (Abadi et al. 2016) through jax-privacy: per-example gradients (vmap), each
clipped to L2 norm C, summed, plus Gaussian noise of std sigma * C, divided by the expected batch
size (Poisson sampling: the batch size itself would leak; padded rows count for nothing).

On a mesh of several devices (the trainer compiles under `jax.set_mesh`), the per-example gradients
are computed in `shard_map`, each device on its own rows, and the clipped sums added with `psum`.
Left to the SPMD partitioner, vmapped per-example gradients of convolution kernels came out wrong
on every device but the first (XLA:CPU, jax 0.10.2; tests/multidevice checks the two agree).
"""
from typing import Callable

import jax
import jax.numpy as jnp
import jax_privacy
from jax.sharding import PartitionSpec as P
from jax_privacy import noise_addition

from jaxai.errors import UserError


def add_noise(summed, stddev: float, rng: jax.Array):
  """`summed` + N(0, stddev^2) on every coordinate (jax-privacy's Gaussian privatizer, keyed by `rng`:
  the same step draws the same noise, so a resumed run replays it)."""
  privatizer = noise_addition.gaussian_privatizer(stddev=stddev, prng_key=rng)
  noisy, _ = privatizer.update(summed, privatizer.init(summed))
  return noisy


def private_grad(loss_fn: Callable, l2_clip_norm: float, noise_multiplier: float, expected_batch_size: float):
  """grad_fn(params, rng, *batch_args, mask, noise_rng) -> (noisy mean gradient, aux).

  loss_fn(params, rng, *batch_args) -> (the scalar loss of one example's slice (leading axis 1),
  its aux); `rng` is split per example (dropout). aux holds per-example arrays: 'aux' (loss_fn's),
  'grad_norm' (before clipping). mask: (B,) bool, True for real rows (padding contributes zero).
  """
  if expected_batch_size <= 0:
    raise UserError(f"DP-SGD needs a positive expected batch size, got {expected_batch_size}.")

  def clipped_sum(params, rng, *batch_args, mask):
    clipped = jax_privacy.clipped_grad(loss_fn, has_aux=True, l2_clip_norm=l2_clip_norm, prng_argnum=1,
                                       batch_argnums=tuple(range(2, 2 + len(batch_args))),
                                       return_grad_norms=True)
    summed, aux = clipped(params, rng, *batch_args, is_padding_example=jnp.logical_not(mask))
    return summed, {"aux": aux.aux, "grad_norm": aux.grad_norms}

  def clipped_sum_per_device(params, rng, *batch_args, mask):
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
      return clipped_sum(params, rng, *batch_args, mask=mask)
    axes = tuple(mesh.axis_names)  # batches are split along every mesh axis.

    def local(params, rng, mask, *batch_args):
      params = jax.lax.pcast(params, axes, to="varying")  # per-device gradients, not their psum.
      rng = jax.random.fold_in(rng, jax.lax.axis_index(axes))
      summed, aux = clipped_sum(params, rng, *batch_args, mask=mask)
      return jax.lax.psum(summed, axes), aux

    rows = P(axes)
    return jax.shard_map(local, in_specs=(P(), P(), rows) + (rows,) * len(batch_args),
                         out_specs=(P(), rows))(params, rng, mask, *batch_args)

  def grad_fn(params, rng, *batch_args, mask, noise_rng):
    summed, aux = clipped_sum_per_device(params, rng, *batch_args, mask=mask)
    noisy = add_noise(summed, noise_multiplier * l2_clip_norm, noise_rng)
    return jax.tree.map(lambda g: g / expected_batch_size, noisy), aux

  return grad_fn
