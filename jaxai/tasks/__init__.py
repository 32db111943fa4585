"""Domains. Each module exposes `make_task(config, facts=None) -> jaxai.core.task.Task`; domains never
import each other."""
import importlib

from jaxai.errors import UserError

TASKS = {  # config.task -> module
    "classification": "jaxai.tasks.classification",
    "ppo": "jaxai.tasks.rl.ppo",
    "dqn": "jaxai.tasks.rl.dqn",
    "alphazero": "jaxai.tasks.alphazero",
    "lm": "jaxai.tasks.lm",
    "gan": "jaxai.tasks.generative.gan",
    "vae": "jaxai.tasks.generative.vae",
    "text2image": "jaxai.tasks.generative.text2image",
    "federated": "jaxai.tasks.federated",
    "ner": "jaxai.tasks.ner",
    "sentiment": "jaxai.tasks.sentiment",
}


def make_task(config, facts: dict | None = None):
  """The task of `config.task`; `facts` (a saved run's facts.json) rebuild it without reading data."""
  if config.task not in TASKS:
    raise UserError(f"config.task={config.task!r} is unknown; available tasks: {sorted(TASKS)}.")
  return importlib.import_module(TASKS[config.task]).make_task(config, facts)
