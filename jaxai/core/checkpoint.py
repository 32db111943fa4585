"""Orbax checkpointing: save every N steps and at the end, keep the last K, async, resume-first.

Each checkpoint holds two items:
  state: the train state pytree (restored directly onto the current mesh's shardings, so a run
         saved on one device count restores on another);
  meta:  JSON: the state's structure (path -> shape/dtype) to refuse incompatible resumes, and the
         input pipeline position, so a resumed run sees exactly the batches it would have seen.
"""
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxai.errors import UserError

CHECKPOINT_DIR = "checkpoints"


def signature(tree: Any) -> dict[str, str]:
  """{'params/Dense_0/kernel': 'float32[784,128]', ...} for every leaf (arrays or ShapeDtypeStructs)."""
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {jax.tree_util.keystr(path, simple=True, separator="/"):
          f"{np.dtype(leaf.dtype).name}{list(leaf.shape)}" for path, leaf in flat}


def incompatibilities(saved: dict[str, str], expected: dict[str, str], limit: int = 8) -> list[str]:
  """Human-readable differences between two `signature`s (empty if they match)."""
  problems = []
  for k in sorted(set(saved) | set(expected)):
    if k not in expected:
      problems.append(f"checkpoint has '{k}' ({saved[k]}) which the model does not")
    elif k not in saved:
      problems.append(f"model has '{k}' ({expected[k]}) which the checkpoint does not")
    elif saved[k] != expected[k]:
      problems.append(f"'{k}' is {saved[k]} in the checkpoint but {expected[k]} in the model")
  if len(problems) > limit:
    problems = problems[:limit] + [f"... and {len(problems) - limit} more"]
  return problems


class Checkpointer:
  """Thin wrapper over `ocp.CheckpointManager` for the train loop."""

  def __init__(self, workdir: str, keep: int = 3, async_save: bool = True):
    self.directory = os.path.join(os.path.abspath(workdir), CHECKPOINT_DIR)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=async_save)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, state: Any, meta: dict):
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

  def restore_meta(self, step: int) -> dict:
    return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict]:
    """Restores onto the shardings carried by `abstract_state` (ShapeDtypeStructs with `.sharding`).

    Refuses, before reading any array, when the saved structure differs from `abstract_state`.
    """
    meta = self.restore_meta(step)
    problems = incompatibilities(meta.get("signature", {}), signature(abstract_state))
    if problems:
      raise UserError(
          f"The checkpoint at step {step} in {self.directory} was saved by a different model or "
          f"state layout, so this run will not resume from it:\n  - " + "\n  - ".join(problems) +
          "\nUse a new --workdir for this config, or restore the config that wrote the checkpoint. "
          "Nothing in the workdir was changed.")
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    return restored["state"], restored["meta"]

  def wait(self):
    """Blocks until async saves are on disk."""
    self._manager.wait_until_finished()

  def close(self):
    self._manager.close()


def restore_latest(workdir: str, abstract_state: Any) -> tuple[Any, int]:
  """Convenience for notebooks and tools: the latest state of a run, and its step."""
  ckpt = Checkpointer(workdir, async_save=False)
  step = ckpt.latest_step()
  if step is None:
    raise UserError(f"No checkpoint in {ckpt.directory}.")
  state, _ = ckpt.restore(step, abstract_state)
  ckpt.close()
  return state, step
