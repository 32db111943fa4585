"""Reading a run back from its workdir, for tools that use a trained model (sampling, game engines)."""
import json
import os
from typing import Any

import jax
import ml_collections

from jaxai.core import checkpoint, mesh as mesh_lib
from jaxai.core.errors import UserError
from jaxai.core.task import Task

CONFIG_FILE = "config.json"  # the resolved config, written by the trainer at the start of every run.


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


def restore_latest_state(workdir: str, task: Task) -> tuple[Any, int]:
  """(state, step) of the run's latest checkpoint, replicated over this process's mesh."""
  mesh = mesh_lib.make_mesh()
  abstract = jax.eval_shape(task.init, jax.random.key(0))
  replicated = mesh_lib.replicated(mesh)
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated), abstract)
  return checkpoint.restore_latest(workdir, abstract)
