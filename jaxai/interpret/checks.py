"""Sanity checks of saliency maps: rank correlation, model-parameter randomization, pixel deletion.

- `randomization_check` (Adebayo et al. 2018, "Sanity checks for saliency maps"): a method that explains
  the model must give different maps for a trained and a re-initialised model. A low rank correlation
  passes; a method that mostly reflects the input (an edge detector, gradient x input on sparse images)
  stays correlated and fails. `cascading_randomization` re-initialises from the top layer down.
- `deletion_curve` (Samek et al. 2017): accuracy as the most salient pixels are set to a baseline, against
  removing as many random pixels; faithful maps make accuracy fall faster.
A map function is `map_fn(variables, x, target) -> (B, H, W, C) or (B, H, W)`; maps are compared by their
`saliency.magnitude` (|.| summed over channels).
"""
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from jaxai.interpret import saliency

MapFn = Callable[..., jax.Array]  # map_fn(variables, x, target) -> (B, H, W[, C])


def _average_ranks(v):
  """(N,) -> (N,) float ranks 0..N-1, tied values sharing their mean rank."""
  s = jnp.sort(v)
  lo = jnp.searchsorted(s, v, side="left", method="sort")
  hi = jnp.searchsorted(s, v, side="right", method="sort")
  return (lo + hi - 1).astype(jnp.float32) / 2


def rank_correlation(maps_a, maps_b) -> jax.Array:
  """(B,) Spearman rank correlation between the pixels of each pair of maps (B, ...); ties get average
  ranks; a constant map has correlation 0."""
  a = maps_a.reshape(maps_a.shape[0], -1).astype(jnp.float32)
  b = maps_b.reshape(maps_b.shape[0], -1).astype(jnp.float32)
  ra, rb = jax.vmap(_average_ranks)(a), jax.vmap(_average_ranks)(b)  # (B, N)
  ra, rb = ra - ra.mean(1, keepdims=True), rb - rb.mean(1, keepdims=True)
  norm = jnp.sqrt((ra**2).sum(1) * (rb**2).sum(1))
  return jnp.where(norm > 0, (ra * rb).sum(1) / jnp.maximum(norm, 1e-12), 0.0)


def randomization_check(map_fn: MapFn, variables, random_variables, x, target) -> jax.Array:
  """() mean over images of the rank correlation between the maps of `variables` (trained) and of
  `random_variables` (every layer re-initialised: e.g. the model's init at a fresh rng). Near 0: the
  maps depend on what the model learned; near 1: they do not (the method fails the check)."""
  trained = saliency.magnitude(map_fn(variables, x, target))
  randomized = saliency.magnitude(map_fn(random_variables, x, target))
  return rank_correlation(trained, randomized).mean()


def top_level_modules(apply, variables, x) -> list:
  """Names of the model's top-level submodules in the order they first run (input to output)."""
  order = []
  for path, _ in saliency.module_outputs(apply, variables, x):
    if path[0] not in order:
      order.append(path[0])
  return order


def randomize_layers(variables, random_variables, names: Sequence[str]):
  """`variables` with the top-level entries `names` of every collection taken from `random_variables`."""
  swap = lambda collection, k, v: (random_variables[collection][k]
                                   if k in names and k in random_variables.get(collection, {}) else v)
  return {collection: {k: swap(collection, k, v) for k, v in tree.items()}
          for collection, tree in variables.items()}


def cascading_randomization(map_fn: MapFn, variables, random_variables, x, target,
                            layers: Sequence[str]) -> jax.Array:
  """(L,) mean rank correlation after re-initialising the top 1, 2, ..., L of `layers` (input-to-output
  order, e.g. `top_level_modules`; those without variables, like Dropout, are dropped first): the cascade
  of Adebayo et al. Correlation should fall as more layers are randomized."""
  layers = [n for n in layers if any(n in tree for tree in random_variables.values())]
  trained = saliency.magnitude(map_fn(variables, x, target))
  out = []
  for k in range(1, len(layers) + 1):
    mixed = randomize_layers(variables, random_variables, list(layers)[-k:])
    out.append(rank_correlation(trained, saliency.magnitude(map_fn(mixed, x, target))).mean())
  return jnp.stack(out)


def deletion_curve(apply, variables, x, labels, maps, fractions, rng, baseline: float = 0.0) -> tuple:
  """(accuracy_salient (F,), accuracy_random (F,)): accuracy on x (B, H, W, C) after setting the
  round(fraction * H * W) most salient pixels of each image (by `magnitude` of `maps`, all channels)
  to `baseline`, against as many pixels chosen uniformly at random (fresh per image, from `rng`).
  All F * B deleted images go through `apply` as one vmapped batch."""
  b, h, w, _ = x.shape
  fractions = jnp.asarray(fractions, jnp.float32)  # (F,)
  m = saliency.magnitude(maps).reshape(b, h * w)
  salient_rank = jnp.argsort(jnp.argsort(-m, axis=1), axis=1)  # (B, HW) 0 = most salient
  random_rank = jax.vmap(lambda k: jax.random.permutation(k, h * w))(jax.random.split(rng, b))  # (B, HW)
  counts = jnp.round(fractions * h * w)  # (F,)

  def accuracy(rank):  # rank (B, HW) -> (F,)
    def at(count):
      deleted = (rank < count).reshape(b, h, w, 1)
      logits = apply(variables, jnp.where(deleted, jnp.asarray(baseline, x.dtype), x))
      return jnp.mean(jnp.argmax(logits, -1) == labels)
    return jax.vmap(at)(counts)
  return accuracy(salient_rank), accuracy(random_rank)


def area_under_curve(fractions, values) -> jax.Array:
  """() trapezoid area under values(fractions), divided by the fraction range: the mean value over it."""
  f, v = jnp.asarray(fractions, jnp.float32), jnp.asarray(values, jnp.float32)
  if f.shape[0] < 2:
    return v.mean()
  return jnp.sum((v[1:] + v[:-1]) / 2 * jnp.diff(f)) / (f[-1] - f[0])
