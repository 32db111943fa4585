"""A run's files beside its checkpoints, and reading a run back for tools (sampling, game engines,
evaluation commands) without its training data: config.json (the resolved config) and facts.json
(the task's facts, e.g. a vocabulary) rebuild the task's state layout; the latest checkpoint fills it."""
import json
import os
from typing import Any

import jax
import ml_collections

from jaxai.core import checkpoint, sharding
from jaxai.errors import UserError

CONFIG_FILE = "config.json"  # the resolved config, written by the trainer at the start of every run.
FACTS_FILE = "facts.json"    # Task.facts, written with it.


def save_run_files(workdir: str, config: ml_collections.ConfigDict, facts: dict) -> None:
  """config.json and facts.json (process 0; the workdir is shared by all processes)."""
  if jax.process_index() != 0:
    return
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  with open(os.path.join(workdir, FACTS_FILE), "w") as f:
    json.dump(facts, f, indent=2, sort_keys=True)


def load_config(workdir: str, task_name: str,
                defaults: ml_collections.ConfigDict | None = None) -> ml_collections.ConfigDict:
  """The config the run in `workdir` was trained with; it must be a `task_name` run.

  `defaults` (the domain's default_config()) fills settings added since the run was saved.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise UserError(f"{path} does not exist: --workdir must be the directory of a {task_name!r} "
                    "training run (python -m jaxai.main --config=... --workdir=...).")
  with open(path) as f:
    saved = json.load(f)
  if saved.get("task") != task_name:
    raise UserError(f"The run in {workdir} is a {saved.get('task')!r} run, not a {task_name!r} one.")
  if defaults is None:
    return ml_collections.ConfigDict(saved)
  config = ml_collections.ConfigDict(defaults.to_dict())
  config.update(saved)
  return config


def load_facts(workdir: str) -> dict | None:
  """The task facts the run saved, or None for a run saved before facts existed."""
  path = os.path.join(workdir, FACTS_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def restore_latest_state(workdir: str, task) -> tuple[Any, int]:
  """(state, step) of the run's latest checkpoint, on this process's mesh with the task's rules."""
  placement = sharding.placement(None, task.sharding_rules)
  abstract = placement.with_shardings(jax.eval_shape(task.init, jax.random.key(0)))
  return checkpoint.restore_latest(workdir, abstract)
