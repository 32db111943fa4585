"""Optimizer and learning-rate schedule from config, through optax.

Config keys (`default_config()` documents each):
  name: 'sgd' | 'adam' | 'adamw'          schedule: 'constant' | 'cosine' | 'linear'
  learning_rate, warmup_steps, end_learning_rate_factor, momentum, nesterov, b1, b2, eps,
  weight_decay, weight_decay_mask, grad_clip_norm, frozen, trainable, pruning

Steps here are optimizer updates (`warmup_steps`, the schedule's length), which a domain may make
several of per train step (PPO's epochs x minibatches, AlphaZero's updates_per_step); each domain
passes its total number of updates.
"""
import re

import jax
import ml_collections
import optax

from jaxai.compress import pruning
from jaxai.errors import UserError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "linear")
DECAY_MASKS = ("all", "kernels")


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      name="sgd",                    # one of OPTIMIZERS.
      learning_rate=0.1,             # peak learning rate, reached after warmup.
      schedule="cosine",             # decay after warmup, over the rest of the run.
      warmup_steps=0,                # linear warmup from 0 to learning_rate, in optimizer steps.
      end_learning_rate_factor=0.0,  # final lr = learning_rate * this (cosine and linear).
      momentum=0.9,                  # sgd only; 0 disables momentum.
      nesterov=False,                # sgd only.
      b1=0.9, b2=0.999, eps=1e-8,    # adam / adamw.
      weight_decay=0.0,              # sgd: L2 added to the gradient; adamw: decoupled decay; adam: must be 0.
      weight_decay_mask="kernels",   # 'kernels': decay only >=2-D weights (no biases/norm scales); 'all'.
      grad_clip_norm=0.0,            # clip the global gradient norm to this; 0 disables.
      frozen="",                     # regex over parameter paths ('Dense_0/.*|Conv_0/kernel') that
                                     # never change (zero updates, no weight decay); '' = none.
      trainable="",                  # regex of the only parameters that train (a linear probe:
                                     # 'Dense_1/.*'; LoRA: '.*_lora_[ab]'); '' = all but `frozen`.
      pruning=pruning.default_config(),  # magnitude pruning masks in the optimizer state (jaxai.compress.pruning).
  ))


def make_schedule(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  if cfg.schedule not in SCHEDULES:
    raise UserError(f"config.optimizer.schedule={cfg.schedule!r} is unknown; use one of {SCHEDULES}.")
  if not 0 <= cfg.warmup_steps < max(total_steps, 1):
    raise UserError(f"config.optimizer.warmup_steps={cfg.warmup_steps} (optimizer updates) must be in "
                    f"[0, {total_steps}), the run's number of optimizer updates; lower it, e.g. "
                    f"--config.optimizer.warmup_steps={total_steps // 10}.")
  peak, end = cfg.learning_rate, cfg.learning_rate * cfg.end_learning_rate_factor
  decay_steps = max(total_steps - cfg.warmup_steps, 1)
  if cfg.schedule == "constant":
    after = optax.constant_schedule(peak)
  elif cfg.schedule == "cosine":
    after = optax.cosine_decay_schedule(peak, decay_steps, alpha=cfg.end_learning_rate_factor)
  else:
    after = optax.linear_schedule(peak, end, decay_steps)
  if cfg.warmup_steps == 0:
    return after
  warmup = optax.linear_schedule(0.0, peak, cfg.warmup_steps)
  return optax.join_schedules([warmup, after], [cfg.warmup_steps])


def _decay_mask(kind: str):
  if kind not in DECAY_MASKS:
    raise UserError(f"config.optimizer.weight_decay_mask={kind!r} is unknown; use one of {DECAY_MASKS}.")
  if kind == "all":
    return None
  return lambda params: jax.tree.map(lambda p: p.ndim > 1, params)


def make_optimizer(cfg: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """Returns the optax transformation; its learning rate is `make_schedule(cfg, total_steps)`."""
  if cfg.name not in OPTIMIZERS:
    raise UserError(f"config.optimizer.name={cfg.name!r} is unknown; use one of {OPTIMIZERS}.")
  lr = make_schedule(cfg, total_steps)
  mask = _decay_mask(cfg.weight_decay_mask)
  chain = []
  if cfg.grad_clip_norm > 0:
    chain.append(optax.clip_by_global_norm(cfg.grad_clip_norm))
  if cfg.name == "sgd":
    if cfg.weight_decay > 0:
      chain.append(optax.add_decayed_weights(cfg.weight_decay, mask))
    chain.append(optax.sgd(lr, momentum=cfg.momentum or None, nesterov=cfg.nesterov))
  elif cfg.name == "adam":
    if cfg.weight_decay > 0:
      raise UserError("config.optimizer.weight_decay>0 with name='adam': use name='adamw' for "
                      "decoupled weight decay.")
    chain.append(optax.adam(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
  else:
    chain.append(optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay,
                             mask=mask))
  tx = optax.chain(*chain)
  frozen, trainable = cfg.get("frozen", ""), cfg.get("trainable", "")
  if frozen or trainable:
    tx = optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()},
                               frozen_labels(frozen, trainable))
  if cfg.get("pruning") and cfg.pruning.method != "none":
    tx = pruning.masked(tx, cfg.pruning, total_steps)
  return tx


def _regex(pattern: str, key: str):
  try:
    return re.compile(pattern)
  except re.error as e:
    raise UserError(f"config.optimizer.{key}={pattern!r} is not a regular expression: {e}.") from None


def frozen_labels(frozen: str = "", trainable: str = ""):
  """params -> labels: 'frozen' where the path fully matches `frozen`, or does not match
  `trainable` (when set); else 'train'. Refuses a pattern that matches no parameter (a typo would
  otherwise train everything, or nothing)."""
  patterns = {key: _regex(p, key) for key, p in (("frozen", frozen), ("trainable", trainable)) if p}

  def labels(params):
    paths = jax.tree_util.tree_map_with_path(
        lambda k, _: jax.tree_util.keystr(k, simple=True, separator="/"), params)
    for key, regex in patterns.items():
      if not any(regex.fullmatch(p) for p in jax.tree.leaves(paths)):
        raise UserError(f"config.optimizer.{key}={regex.pattern!r} matches no parameter; paths look like "
                        f"{jax.tree.leaves(paths)[:3]}.")

    def label(path):
      if "frozen" in patterns and patterns["frozen"].fullmatch(path):
        return "frozen"
      if "trainable" in patterns and not patterns["trainable"].fullmatch(path):
        return "frozen"
      return "train"
    return jax.tree.map(label, paths)
  return labels


def trained_leaves(opt_cfg: ml_collections.ConfigDict, params):
  """A tree of bools like `params`, False where config.optimizer.frozen / trainable freeze the
  leaf (the optimizer gives it zero updates); None when every parameter trains."""
  if not (opt_cfg.get("frozen") or opt_cfg.get("trainable")):
    return None
  labels = frozen_labels(opt_cfg.get("frozen", ""), opt_cfg.get("trainable", ""))(params)
  return jax.tree.map(lambda label: label == "train", labels)
