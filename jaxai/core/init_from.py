"""Starting a run from another run's parameters (`config.init_from`): transfer, distillation, pruning.

    config.init_from.path = '/runs/teacher'                 # a workdir (its latest checkpoint) or
                                                            # <workdir>/checkpoints/<step>
    config.init_from.map = 'params=params,model_state=model_state'   # the default
    config.init_from.map = 'params/backbone=params/encoder'          # source prefix=destination prefix
    config.init_from.fresh = 'params/Dense_1/.*|.*_lora_[ab]'        # keep these freshly initialized

Every leaf of the new state under a destination prefix is read from the same path under the
source prefix; every other leaf keeps its fresh initialization. Missing source leaves and leaves
whose shapes or dtypes differ are refused with one message naming them, before anything trains.
Destination leaves whose path fully matches `fresh` (a regex) keep their initialization: a new
head for transfer, LoRA adapters the source never had.
Only a fresh run starts this way: a workdir with checkpoints resumes from its own.
"""
import os
import re
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging

from jaxai.core.checkpoint import CHECKPOINT_DIR, Checkpointer, signature
from jaxai.core.sharding import path_of
from jaxai.errors import UserError

DEFAULT_MAP = "params=params,model_state=model_state"


def resolve(path: str) -> tuple[str, int]:
  """(workdir, step) of a workdir (its latest checkpoint) or of a checkpoints/<step> directory."""
  path = os.path.abspath(os.path.expanduser(path))
  if os.path.basename(path).isdigit() and os.path.basename(os.path.dirname(path)) == CHECKPOINT_DIR:
    return os.path.dirname(os.path.dirname(path)), int(os.path.basename(path))
  if not os.path.isdir(os.path.join(path, CHECKPOINT_DIR)):
    raise UserError(f"config.init_from.path={path!r} is neither a run's workdir (with a {CHECKPOINT_DIR}/ "
                    f"directory) nor a <workdir>/{CHECKPOINT_DIR}/<step> directory.")
  ckpt = Checkpointer(path, async_save=False)
  step = ckpt.latest_step()
  ckpt.close()
  if step is None:
    raise UserError(f"config.init_from.path={path!r} holds no checkpoint yet.")
  return path, step


def parse_map(text: str) -> list[tuple[str, str]]:
  pairs = []
  for item in filter(None, (s.strip() for s in (text or DEFAULT_MAP).split(","))):
    if item.count("=") != 1:
      raise UserError(f"config.init_from.map item {item!r} must be 'source_prefix=destination_prefix', "
                      f"e.g. {DEFAULT_MAP!r}.")
    src, dst = (s.strip("/") for s in item.split("="))
    pairs.append((src, dst))
  return pairs


def _under(path: str, prefix: str) -> bool:
  return path == prefix or path.startswith(prefix + "/") or prefix == ""


def parse_fresh(pattern: str):
  """The compiled `config.init_from.fresh` regex, or None when unset."""
  if not pattern:
    return None
  try:
    return re.compile(pattern)
  except re.error as e:
    raise UserError(f"config.init_from.fresh={pattern!r} is not a regular expression: {e}.") from None


def plan(saved: dict[str, str], target: dict[str, str], pairs, fresh=None) -> dict[str, str]:
  """{destination path: source path}; a UserError naming every leaf that is missing or differs.
  Destination paths that `fresh` (a compiled regex) fully matches are left out."""
  sources, problems = {}, []
  for dst_path, dst_sig in target.items():
    if fresh is not None and fresh.fullmatch(dst_path):
      continue
    for src, dst in pairs:
      if _under(dst_path, dst):
        src_path = (src + dst_path[len(dst):]).strip("/")
        if src_path not in saved:
          problems.append(f"'{src_path}' (for '{dst_path}' {dst_sig}) is not in the source checkpoint")
        elif saved[src_path] != dst_sig:
          problems.append(f"'{dst_path}' is {dst_sig} here but '{src_path}' is {saved[src_path]} in the source")
        else:
          sources[dst_path] = src_path
        break
  if problems:
    shown = problems[:12] + ([f"... and {len(problems) - 12} more"] if len(problems) > 12 else [])
    raise UserError("config.init_from cannot load these leaves:\n  - " + "\n  - ".join(shown) +
                    "\nFix config.init_from.map (source_prefix=destination_prefix), keep new leaves "
                    "freshly initialized with config.init_from.fresh (a regex, e.g. 'params/Dense_1/.*'), "
                    "or start from a run with the same architecture.")
  if not sources:
    raise UserError(f"config.init_from.map={[f'{s}={d}' for s, d in pairs]} matches no leaf of the new state.")
  return sources


def load_into(state: Any, init_from) -> Any:
  """`state` with the leaves `init_from` names read from the source run, on the state's shardings."""
  workdir, step = resolve(init_from.path)
  ckpt = Checkpointer(workdir, async_save=False)
  try:
    saved = ckpt.restore_meta(step).get("signature", {})
  finally:
    ckpt.close()
  flat, treedef = jax.tree_util.tree_flatten_with_path(state)
  leaves = {path_of(k): leaf for k, leaf in flat}
  sources = plan(saved, signature(state), parse_map(init_from.get("map", "")),
                 parse_fresh(init_from.get("fresh", "")))

  target, restore_args = {}, {}
  for dst_path, src_path in sources.items():
    leaf = leaves[dst_path]
    _set(target, src_path, jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding))
    _set(restore_args, src_path, ocp.ArrayRestoreArgs(sharding=leaf.sharding))
  directory = os.path.join(workdir, CHECKPOINT_DIR, str(step), "state")
  restored = ocp.PyTreeCheckpointer().restore(directory, args=ocp.args.PyTreeRestore(
      target, restore_args=restore_args, partial_restore=True))
  new = [_get(restored, sources[path_of(k)]) if path_of(k) in sources else leaf for k, leaf in flat]
  logging.info("Initialized %d of %d leaves from step %d of %s.", len(sources), len(flat), step, workdir)
  return jax.tree_util.tree_unflatten(treedef, new)


def _set(tree: dict, path: str, value):
  *parents, leaf = path.split("/")
  for p in parents:
    tree = tree.setdefault(p, {})
  tree[leaf] = value


def _get(tree: dict, path: str):
  for p in path.split("/"):
    tree = tree[p]
  return tree
