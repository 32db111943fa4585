"""Domains. Each module exposes `make_task(config) -> jaxai.core.task.Task`; none imports another."""
import importlib

from jaxai.core.errors import UserError

TASKS = ("classification",)


def make_task(config):
  if config.task not in TASKS:
    raise UserError(f"config.task={config.task!r} is unknown; available tasks: {TASKS}.")
  return importlib.import_module(f"jaxai.tasks.{config.task}").make_task(config)
