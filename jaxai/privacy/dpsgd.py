"""DP-SGD's gradient (Abadi et al. 2016) through jax-privacy: per-example gradients (vmap), each
clipped to L2 norm C, summed, plus Gaussian noise of std sigma * C, divided by the expected batch
size (Poisson sampling: the batch size itself would leak; padded rows count for nothing)."""
from typing import Callable

import jax
import jax.numpy as jnp
import jax_privacy
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

  def grad_fn(params, rng, *batch_args, mask, noise_rng):
    clipped = jax_privacy.clipped_grad(loss_fn, has_aux=True, l2_clip_norm=l2_clip_norm, prng_argnum=1,
                                       batch_argnums=tuple(range(2, 2 + len(batch_args))),
                                       return_grad_norms=True)
    summed, aux = clipped(params, rng, *batch_args, is_padding_example=jnp.logical_not(mask))
    noisy = add_noise(summed, noise_multiplier * l2_clip_norm, noise_rng)
    mean = jax.tree.map(lambda g: g / expected_batch_size, noisy)
    return mean, {"aux": aux.aux, "grad_norm": aux.grad_norms}

  return grad_fn
