"""The interface between a domain and the shared trainer.

A domain module exposes `make_task(config) -> Task`. Everything in a Task is pure or host-side:
the trainer applies `jax.jit`, shardings and donation, moves batches to devices, checkpoints the
state and writes the metrics.
"""
import dataclasses
from typing import Any, Callable, Iterable, Protocol

import jax

PyTree = Any


class TrainData(Protocol):
  """Random-access training input: the batch of any step, so resuming needs only the step."""

  def batch(self, step: int) -> PyTree:
    """This process's rows of the global batch for `step` (numpy arrays, leading dim = rows)."""

  def position(self, step: int) -> dict:
    """JSON-able description of where `step` is in the data (epoch, offset); saved in checkpoints."""


@dataclasses.dataclass(frozen=True)
class Task:
  name: str
  init: Callable[[jax.Array], PyTree]                  # rng -> state; state has an int `step` field.
  train_step: Callable[[PyTree, PyTree, jax.Array], tuple[PyTree, dict]]  # (state, batch, rng) -> (state, metrics)
  train_data: TrainData
  num_train_steps: int
  # (state, batch) -> dict of per-batch *sums* including 'count' (padded rows masked out); the
  # trainer adds them over the whole split and divides by 'count'.
  eval_step: Callable[[PyTree, PyTree], dict] | None = None
  eval_data: Callable[[], Iterable[PyTree]] | None = None  # this process's rows of each eval batch.
  summary: str = ""                                     # one line for the log: data, model, sizes.
