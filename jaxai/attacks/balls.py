"""Threat models: the eps-ball of an L-inf or L2 norm around each clean image, intersected with the valid
pixel range [lo, hi]. Every attack's iterate passes through `project`, so outputs never leave either.

Images are float (B, H, W, C); eps is in pixel units (MNIST eps 0.3 on pixels in [0, 1]).
"""
import math

import jax
import jax.numpy as jnp

from jaxai.errors import UserError

NORMS = ("linf", "l2")
_TINY = 1e-12


def check(eps: float, norm: str, lo: float = 0.0, hi: float = 1.0, image_shape=None) -> None:
  """A UserError for a norm or eps no attack can use (negative, or larger than the pixel range allows)."""
  if norm not in NORMS:
    raise UserError(f"norm={norm!r} is unknown; use one of {NORMS}.")
  if not hi > lo:
    raise UserError(f"The pixel range [{lo}, {hi}] is empty.")
  if not eps >= 0:
    raise UserError(f"eps={eps} must be >= 0 (a radius in pixel units, e.g. 0.3 for MNIST under L-inf).")
  largest = hi - lo if norm == "linf" else (hi - lo) * math.sqrt(math.prod(image_shape) if image_shape else 1e12)
  if eps > largest:
    raise UserError(f"eps={eps} is above the pixel range: no {norm} perturbation of images in [{lo}, {hi}] "
                    f"is larger than {largest:g}. Give eps in the units of pixels in [{lo}, {hi}].")


def _norm2(v):  # (B, ...) -> (B, 1, 1, 1): per-example L2 norm, broadcastable against v.
  return jnp.sqrt(jnp.sum(jnp.square(v), axis=tuple(range(1, v.ndim)), keepdims=True))


def project(x_adv, x, eps, norm: str, lo: float, hi: float):
  """The point of the ball around x (per example) nearest to x_adv, clipped to [lo, hi]. Clipping keeps
  it in the ball: x lies in the box, so clipping moves no coordinate away from x."""
  delta = x_adv - x
  if norm == "linf":
    delta = jnp.clip(delta, -eps, eps)
  else:
    delta = delta * jnp.minimum(1.0, eps / jnp.maximum(_norm2(delta), _TINY))
  return jnp.clip(x + delta, lo, hi)


def direction(grad, norm: str):
  """The unit step of steepest ascent under the norm: sign(g) for L-inf, g / ||g||_2 for L2 (0 where
  g is 0, so a flat loss moves nothing)."""
  if norm == "linf":
    return jnp.sign(grad)
  return grad / jnp.maximum(_norm2(grad), _TINY)


def random_start(rngs, x, eps, norm: str, lo: float, hi: float):
  """A uniform draw from each example's ball (its own key in rngs (B,)), clipped to [lo, hi]."""
  def one(rng, xi):
    if norm == "linf":
      return xi + jax.random.uniform(rng, xi.shape, xi.dtype, -eps, eps)
    dir_rng, radius_rng = jax.random.split(rng)
    v = jax.random.normal(dir_rng, xi.shape, xi.dtype)
    radius = eps * jax.random.uniform(radius_rng, (), xi.dtype) ** (1.0 / xi.size)
    return xi + radius * v / jnp.maximum(jnp.linalg.norm(v), _TINY)
  return jnp.clip(jax.vmap(one)(rngs, x), lo, hi)


def distance(x_adv, x, norm: str):
  """(B,) the per-example size of the perturbation under the norm."""
  delta = (x_adv - x).reshape(x.shape[0], -1)
  return jnp.max(jnp.abs(delta), -1) if norm == "linf" else jnp.linalg.norm(delta, axis=-1)
