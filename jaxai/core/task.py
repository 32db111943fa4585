"""The interface between a domain and the shared trainer.

A domain module exposes `make_task(config) -> Task`. Everything in a Task is pure or host-side:
the trainer applies `jax.jit`, shardings and donation, moves batches to devices, checkpoints the
state and writes the metrics.

Where the training data comes from, one of:
  * `train_data`: a random-access dataset (supervised learning): the batch of a step depends only
    on the step, so a resumed run sees exactly the batches an uninterrupted run sees.
  * `collect` + `init_carry`: data generated with the current parameters (reinforcement learning,
    self-play). `collect(policy, carry, rng) -> (carry, rows, metrics)` is pure and runs on this
    process's first local device, because environment calls (EnvPool's XLA interface) cannot be
    partitioned over a mesh; its rows become this process's share of the global batch of
    `train_step`, which runs data-parallel over the mesh. `policy` is {'params', 'step'} of the
    state. The carry (environments, current observations, episode counters) is not checkpointed:
    environments restart on resume.
    With `collect_on_mesh=True` (collection written in pure JAX, e.g. self-play) collection instead
    runs data-parallel over the mesh: the carry and the rows are split over devices along their
    leading (batch) dimension, and `init_carry` returns this process's rows of the carry.
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
  num_train_steps: int
  train_data: TrainData | None = None
  collect: Callable[[PyTree, PyTree, jax.Array], tuple[PyTree, PyTree, dict]] | None = None
  init_carry: Callable[[], PyTree] | None = None
  collect_on_mesh: bool = False
  # (state, batch) -> dict of per-batch *sums* including 'count' (padded rows masked out); the
  # trainer adds them over the whole split and divides by 'count'.
  eval_step: Callable[[PyTree, PyTree], dict] | None = None
  eval_data: Callable[[], Iterable[PyTree]] | None = None  # this process's rows of each eval batch.
  # Or a whole evaluation the domain runs itself (e.g. episodes in an environment): state -> scalars
  # named 'eval/...'.
  evaluate: Callable[[PyTree], dict] | None = None
  # Units counted per train step, logged cumulatively and per second: {'examples': 128} logs
  # 'examples' and 'perf/examples_per_sec'.
  units_per_step: dict = dataclasses.field(default_factory=dict)
  # Model FLOPs of one train step (forward + backward, whole global batch); > 0 logs 'perf/mfu', the
  # achieved FLOP/s over the machine's measured peak (jaxai.core.flops).
  flops_per_step: float = 0.0
  # Text written at evaluation time (e.g. generated samples): state -> {tag: text}; each goes to
  # TensorBoard and to <workdir>/<tag>/step_<N>.txt.
  eval_texts: Callable[[PyTree], dict] | None = None
  summary: str = ""                                     # one line for the log: data, model, sizes.

  def __post_init__(self):
    if (self.train_data is None) == (self.collect is None):
      raise ValueError(f"Task {self.name!r}: give exactly one of train_data and collect.")
    if (self.collect is None) != (self.init_carry is None):
      raise ValueError(f"Task {self.name!r}: collect and init_carry go together.")
