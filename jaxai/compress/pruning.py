"""Magnitude pruning as an optax wrapper: the masks live in the optimizer state (so they are
checkpointed, restored and sharded with it) and are applied inside the train step.

(Stub: the implementation lands with the pruning work.)
"""
import ml_collections
import optax

from jaxai.errors import UserError

METHODS = ("none", "magnitude")


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      method="none",            # 'none' | 'magnitude'.
      sparsity=0.9,             # final fraction of prunable weights that are zero.
      initial_sparsity=0.0,     # the schedule's start (Zhu & Gupta 2017).
      begin_step=0,             # optimizer updates: first mask update; begin == end: one-shot.
      end_step=-1,              # last mask update; -1 = 3/4 of the run.
      frequency=100,            # updates between mask updates.
      scope="global",           # 'global' (one threshold over all prunable weights) | 'layer'.
      structured=False,         # prune whole output channels (L2 norm of each) instead of weights.
      prunable=r".*kernel",     # regex over parameter paths; only >= 2-D leaves are pruned.
  ))


def masked(inner: optax.GradientTransformation, cfg: ml_collections.ConfigDict,
           total_steps: int) -> optax.GradientTransformation:
  if cfg.method not in METHODS:
    raise UserError(f"config.optimizer.pruning.method={cfg.method!r} is unknown; use one of {METHODS}.")
  raise NotImplementedError("pruning")
