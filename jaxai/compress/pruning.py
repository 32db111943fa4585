"""Magnitude pruning as an optax wrapper: the masks live in the optimizer state (so they are
checkpointed, restored and sharded with it) and are applied inside the train step.

`masked(inner, cfg, total_steps)` wraps the whole optimizer. In every update it
  1. zeroes the gradients of pruned weights before `inner` sees them (no momentum builds up there);
  2. on a mask step, ranks the prunable weights as they would be after this update and prunes the
     smallest to the schedule's sparsity (pruned weights stay pruned: masks only shrink);
  3. returns `-param` for every pruned weight, so `optax.apply_updates` makes it exactly 0.0
     (x + (-x) is exactly zero in floating point) in the very update where its mask turns off.

Steps are optimizer updates. "After t updates" the prunable weights have exactly the sparsity
`polynomial_sparsity(t, ...)`, the schedule of Zhu & Gupta (2017, "To prune, or not to prune"):
    s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3,   t0 = begin_step, n dt = end_step - begin_step,
held between mask steps t0, t0 + dt, ..., and at end_step (always a mask step), s_f from there on.
begin_step == end_step prunes once (one-shot); training then fine-tunes the survivors. A mask step
at 0 takes effect in the first update (the initial weights are never changed by `init`).

Scope 'global' ranks all prunable weights together (one threshold: layers end up with different
sparsities); 'layer' prunes each leaf to the sparsity. `structured` ranks whole output channels
(the last axis of a kernel) by their L2 norm, and the sparsity is then a fraction of channels.
Only leaves whose path inside params ('Dense_0/kernel') fully matches `prunable` and that have
ndim >= 2 are pruned; the masks of other leaves are `optax.MaskedNode()` (no arrays).

The update has no host callbacks: the mask step is a `lax.cond` on the update count, so it jits
and runs with sharded parameters.
"""
import re
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai.errors import UserError

METHODS = ("none", "magnitude")
SCOPES = ("global", "layer")


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      method="none",            # 'none' | 'magnitude'.
      sparsity=0.9,             # final fraction of prunable weights (channels if structured) that are zero.
      initial_sparsity=0.0,     # the schedule's start s_i (Zhu & Gupta 2017), <= sparsity.
      begin_step=0,             # optimizer updates: first mask step; begin == end: one-shot.
      end_step=-1,              # last mask step (optimizer updates), <= the run's; -1 = 3/4 of the run.
      frequency=100,            # optimizer updates between mask steps.
      scope="global",           # 'global' (one threshold over all prunable weights) | 'layer'.
      structured=False,         # prune whole output channels (L2 norm of each) instead of weights.
      prunable=r".*kernel",     # regex over parameter paths; only >= 2-D leaves are pruned.
  ))


class PruningState(NamedTuple):
  count: jax.Array   # () int32: optimizer updates taken.
  masks: Any         # params-shaped: bool (True = kept) for prunable leaves, optax.MaskedNode() elsewhere.
  inner_state: Any   # the wrapped transformation's state.


class Schedule(NamedTuple):
  """A validated pruning schedule, in optimizer updates."""
  sparsity: float
  initial_sparsity: float
  begin_step: int
  end_step: int
  frequency: int


def path_of(key_path) -> str:
  return jax.tree_util.keystr(key_path, simple=True, separator="/")


def _is_masked_node(x) -> bool:
  return isinstance(x, optax.MaskedNode)


# ---------------------------------------------------------------------------------------------------
# Schedule.

def check_config(cfg: ml_collections.ConfigDict, total_steps: int) -> Schedule:
  """Validates config.optimizer.pruning against the run's `total_steps` optimizer updates."""
  key = "config.optimizer.pruning"
  if cfg.method not in METHODS:
    raise UserError(f"{key}.method={cfg.method!r} is unknown; use one of {METHODS}.")
  if cfg.scope not in SCOPES:
    raise UserError(f"{key}.scope={cfg.scope!r} is unknown; use one of {SCOPES}.")
  if not 0.0 <= cfg.sparsity < 1.0:
    raise UserError(f"{key}.sparsity={cfg.sparsity} must be in [0, 1) (the fraction of prunable "
                    f"weights set to zero), e.g. --{key}.sparsity=0.9.")
  if not 0.0 <= cfg.initial_sparsity <= cfg.sparsity:
    raise UserError(f"{key}.initial_sparsity={cfg.initial_sparsity} must be in [0, sparsity="
                    f"{cfg.sparsity}] (masks only shrink); e.g. --{key}.initial_sparsity=0.0.")
  if cfg.frequency < 1:
    raise UserError(f"{key}.frequency={cfg.frequency} must be >= 1 optimizer update between mask "
                    f"steps, e.g. --{key}.frequency=100.")
  end = cfg.end_step if cfg.end_step != -1 else int(0.75 * total_steps)
  if cfg.begin_step < 0:
    raise UserError(f"{key}.begin_step={cfg.begin_step} must be >= 0 (optimizer updates).")
  if not cfg.begin_step <= end <= total_steps:
    shown = f"{cfg.end_step}" + (f" (3/4 of the run: {end})" if cfg.end_step == -1 else "")
    raise UserError(f"{key}: need begin_step <= end_step <= the run's {total_steps} optimizer updates, "
                    f"got begin_step={cfg.begin_step}, end_step={shown}; lower begin_step or set "
                    f"--{key}.end_step (begin_step == end_step prunes once).")
  _compile(cfg.prunable)
  return Schedule(float(cfg.sparsity), float(cfg.initial_sparsity), int(cfg.begin_step), int(end),
                  int(cfg.frequency))


def _compile(pattern: str) -> re.Pattern:
  try:
    return re.compile(pattern)
  except re.error as e:
    raise UserError(f"config.optimizer.pruning.prunable={pattern!r} is not a regular expression: "
                    f"{e}.") from None


def polynomial_sparsity(step, sparsity: float, initial_sparsity: float = 0.0, begin_step: int = 0,
                        end_step: int = 0, frequency: int = 1):
  """The sparsity of the prunable weights after `step` optimizer updates (int or traced int):
  0 before begin_step, Zhu & Gupta's cubic at the last mask step <= step, `sparsity` from end_step."""
  step = jnp.asarray(step)
  span = end_step - begin_step
  # The last mask step <= step: begin + k * frequency, or end_step once reached.
  last = begin_step + (jnp.clip(step, begin_step, end_step) - begin_step) // frequency * frequency
  last = jnp.where(step >= end_step, end_step, last)
  progress = (last - begin_step) / span if span > 0 else jnp.ones_like(last, jnp.float32)
  s = sparsity + (initial_sparsity - sparsity) * (1.0 - progress) ** 3
  return jnp.where(step < begin_step, 0.0, s).astype(jnp.float32)


def is_mask_step(count, schedule: Schedule):
  """Whether optimizer update number `count` (0-based: updates taken before it) recomputes the masks:
  when the weights after it (count + 1 updates) are at a mask step, or it is the first update and
  begin_step is 0."""
  t = count + 1
  begin, end, freq = schedule.begin_step, schedule.end_step, schedule.frequency
  on_grid = (t >= begin) & (t <= end) & (((t - begin) % freq == 0) | (t == end))
  return on_grid | ((count == 0) & (begin == 0))


# ---------------------------------------------------------------------------------------------------
# Masks.

def prunable_paths(params, prunable: str) -> list[str]:
  """Paths of the leaves that are pruned: fullmatch `prunable` and ndim >= 2."""
  regex = _compile(prunable)
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return [path_of(k) for k, x in flat if regex.fullmatch(path_of(k)) and x.ndim >= 2]


def init_masks(params, prunable: str):
  """All-True masks for the prunable leaves, MaskedNode elsewhere; a UserError when none match."""
  paths = set(prunable_paths(params, prunable))
  if not paths:
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    examples = [f"{path_of(k)} {tuple(x.shape)}" for k, x in flat][:4]
    raise UserError(f"config.optimizer.pruning.prunable={prunable!r} matches no parameter with ndim >= 2; "
                    f"paths look like {examples}; e.g. --config.optimizer.pruning.prunable='.*kernel'.")
  return jax.tree_util.tree_map_with_path(
      lambda k, x: jnp.ones(x.shape, bool) if path_of(k) in paths else optax.MaskedNode(), params)


def _scores(weight, structured: bool):
  """Per-weight |w|, or per-output-channel L2 norms (C,) of a (..., C) kernel."""
  weight = weight.astype(jnp.float32)
  if structured:
    return jnp.sqrt(jnp.sum(jnp.square(weight), axis=tuple(range(weight.ndim - 1))))
  return jnp.abs(weight).reshape(-1)


def _prune_lowest(scores, keep, sparsity):
  """New keep-flags (N,): False for the round(sparsity * N) lowest scores, counting weights that are
  already pruned (`keep` False) as the lowest; ties go by position, so the count is exact."""
  n = scores.shape[0]
  num_pruned = jnp.round(sparsity * n).astype(jnp.int32)
  scores = jnp.where(keep, scores, -1.0)  # already pruned: ranked first (scores are >= 0).
  order = jnp.argsort(scores, stable=True)
  ranks = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
  return (ranks >= num_pruned) & keep


def _flat_keep(mask, structured):
  return mask[(0,) * (mask.ndim - 1)] if structured else mask.reshape(-1)  # a kept channel is all True.


def compute_masks(params, masks, sparsity, scope: str = "global", structured: bool = False):
  """Masks that prune `params` (leaves with a mask) to `sparsity` given the current `masks`."""
  leaves, treedef = jax.tree.flatten(masks, is_leaf=_is_masked_node)
  weights = treedef.flatten_up_to(params)
  pruned = [i for i, m in enumerate(leaves) if not _is_masked_node(m)]
  scores = [_scores(weights[i], structured) for i in pruned]
  keeps = [_flat_keep(leaves[i], structured) for i in pruned]
  if scope == "global":
    sizes = np.cumsum([s.shape[0] for s in scores])[:-1]
    new = jnp.split(_prune_lowest(jnp.concatenate(scores), jnp.concatenate(keeps), sparsity), sizes)
  else:
    new = [_prune_lowest(s, k, sparsity) for s, k in zip(scores, keeps)]
  out = list(leaves)
  for i, keep in zip(pruned, new):
    shape = leaves[i].shape
    out[i] = jnp.broadcast_to(keep, shape) if structured else keep.reshape(shape)
  return treedef.unflatten(out)


def apply_masks(params, masks):
  """params with pruned weights set to zero (leaves without a mask unchanged)."""
  return jax.tree.map(lambda m, p: p if _is_masked_node(m) else jnp.where(m, p, jnp.zeros_like(p)),
                      masks, params, is_leaf=_is_masked_node)


def prune(params, sparsity: float, scope: str = "global", structured: bool = False,
          prunable: str = r".*kernel"):
  """One-shot magnitude pruning for tools: (params with pruned weights zero, masks)."""
  if scope not in SCOPES:
    raise UserError(f"Pruning scope {scope!r} is unknown; use one of {SCOPES}.")
  if not 0.0 <= sparsity < 1.0:
    raise UserError(f"Pruning sparsity={sparsity} must be in [0, 1).")
  masks = compute_masks(params, init_masks(params, prunable), sparsity, scope, structured)
  return apply_masks(params, masks), masks


# ---------------------------------------------------------------------------------------------------
# The optax wrapper.

def masked(inner: optax.GradientTransformation, cfg: ml_collections.ConfigDict,
           total_steps: int) -> optax.GradientTransformation:
  """`inner` with magnitude pruning per `cfg` (default_config) over a run of `total_steps` updates."""
  schedule = check_config(cfg, total_steps)
  scope, structured, prunable = cfg.scope, bool(cfg.structured), cfg.prunable

  def init(params):
    return PruningState(count=jnp.zeros((), jnp.int32), masks=init_masks(params, prunable),
                        inner_state=inner.init(params))

  def update(grads, state, params=None):
    if params is None:
      raise ValueError("Pruning needs the parameters: call tx.update(grads, state, params).")
    keep = lambda m, x, y: x if _is_masked_node(m) else jnp.where(m, x, y)
    grads = jax.tree.map(lambda g, m: keep(m, g, jnp.zeros_like(g)), grads, state.masks)
    updates, inner_state = inner.update(grads, state.inner_state, params)
    # Under the old masks, pruned weights would land on 0; rank the others where they would land.
    zeroing = lambda masks: jax.tree.map(lambda u, m, p: keep(m, u, -p), updates, masks, params)

    def new_masks(masks):
      landed = optax.apply_updates(params, zeroing(masks))
      target = polynomial_sparsity(state.count + 1, *schedule)  # the sparsity after this update.
      return compute_masks(landed, masks, target, scope, structured)

    masks = jax.lax.cond(is_mask_step(state.count, schedule), new_masks, lambda m: m, state.masks)
    return zeroing(masks), PruningState(state.count + 1, masks, inner_state)

  return optax.GradientTransformation(init, update)


def masks_of(opt_state):
  """The masks inside an optimizer state built by `masked` (None if there are none)."""
  if isinstance(opt_state, PruningState):
    return opt_state.masks
  return None
