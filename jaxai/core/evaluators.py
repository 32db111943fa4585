"""Evaluators: a task lists any number; the core compiles, places and runs them at their cadence.

Each returns summaries {tag: value}: numbers are scalars, `core.summaries.Text` and `Image` are
written as files and TensorBoard entries. Three kinds:

  DatasetEvaluator(step, batches)   per-batch sums of step(state, batch) (padded rows masked out,
                                    with a 'count' of real rows) over every batch of a split,
                                    divided by the count: '<prefix>/<key>' means. With `finish`,
                                    corpus-level metrics instead (entity F1, BLEU: not means of
                                    per-example numbers): step's per-row outputs of every batch
                                    are gathered to the host, padded rows dropped, concatenated
                                    row-wise, and finish(outputs, step) -> summaries.
  Evaluator(fn, finish=None)        fn(view(state), rng) -> outputs, compiled by the core: over the
                                    mesh ('mesh') or on this process's first device with its copy
                                    of view(state) ('local': environment calls); finish(outputs,
                                    step) -> summaries on the host (numpy outputs).
  HostEvaluator(fn)                 host code the core does not compile (games over GTP, a privacy
                                    accountant): fn(state, step) -> summaries, with this process's
                                    copy of view(state); process 0 only unless all_processes.

`every_steps` = 0 follows config.eval_every_steps; every evaluator also runs after the last step.
The rng of an evaluation is fold_in(key(seed), step): the same step evaluates the same way.
"""
import dataclasses
from typing import Any, Callable, Iterable

import jax
import numpy as np

from jaxai.core import sharding

PLACEMENTS = ("mesh", "local")


@dataclasses.dataclass(frozen=True)
class DatasetEvaluator:
  step: Callable[[Any, Any], dict]
  batches: Callable[[], Iterable[Any]]  # this process's rows of each batch.
  prefix: str = "eval"
  every_steps: int = 0
  count_key: str = "examples"  # '<prefix>/<count_key>': how many examples were evaluated.
  # finish(outputs, step) -> summaries, outputs = {key: (examples, ...) numpy} of every real row in
  # order; step then returns per-row arrays (leading axis = the batch), not sums.
  finish: Callable[[dict, int], dict] | None = None


@dataclasses.dataclass(frozen=True)
class Evaluator:
  fn: Callable[[Any, jax.Array], Any]
  finish: Callable[[Any, int], dict] | None = None
  view: Callable[[Any], Any] | None = None  # the part of the state fn reads (default: all of it).
  placement: str = "mesh"
  seed: int = 0
  every_steps: int = 0


@dataclasses.dataclass(frozen=True)
class HostEvaluator:
  fn: Callable[[Any, int], dict]
  all_processes: bool = False
  every_steps: int = 0
  view: Callable[[Any], Any] | None = None  # the part of the state fn reads, copied to the host.


def compile_evaluator(evaluator, placement: sharding.Placement, abstract_state) -> Callable[[Any, int], dict]:
  """`run(state, step) -> summaries` for one evaluator: the only `jax.jit` of evaluation code."""
  state_sharding, repl = placement.state(abstract_state), placement.replicated
  if isinstance(evaluator, DatasetEvaluator):
    if evaluator.finish:  # corpus-level: every real row's outputs, then finish on the host.
      rows_fn = jax.jit(lambda state, batch: (evaluator.step(state, batch), batch["mask"]),
                        in_shardings=(state_sharding, None), out_shardings=repl)

      def run_rows(state, step):
        parts = []
        for local in evaluator.batches():
          outputs, real = jax.device_get(rows_fn(state, placement.global_batch(local)))
          parts.append({k: np.asarray(v)[np.asarray(real, bool)] for k, v in outputs.items()})
        rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
        return evaluator.finish(rows, step)
      return run_rows

    step_fn = jax.jit(evaluator.step, in_shardings=(state_sharding, None), out_shardings=repl)

    def run(state, step):
      totals = None
      for local in evaluator.batches():
        sums = step_fn(state, placement.global_batch(local))
        totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
      totals = jax.device_get(totals)
      count = float(totals.pop("count"))
      p = evaluator.prefix
      return {f"{p}/{k}": float(v) / count for k, v in totals.items()} | {f"{p}/{evaluator.count_key}": count}
    return run

  if isinstance(evaluator, HostEvaluator):
    view = lambda state: sharding.local_copy(evaluator.view(state) if evaluator.view else state)
    if not evaluator.all_processes and jax.process_index() != 0:
      return lambda state, step: {}
    return lambda state, step: evaluator.fn(view(state), step)

  if evaluator.placement not in PLACEMENTS:
    raise ValueError(f"Evaluator placement {evaluator.placement!r} is not one of {PLACEMENTS}.")
  view = evaluator.view or (lambda state: state)
  base_rng = jax.random.key(evaluator.seed)
  if evaluator.placement == "mesh":
    fn = jax.jit(lambda state, rng: evaluator.fn(view(state), rng), in_shardings=(state_sharding, repl),
                 out_shardings=repl)
    call = lambda state, rng: fn(state, rng)
  else:
    local = sharding.on_local_device(evaluator.fn)
    call = lambda state, rng: local(view(state), rng)

  def run(state, step):
    outputs = jax.device_get(call(state, jax.random.fold_in(base_rng, step)))
    return evaluator.finish(outputs, step) if evaluator.finish else dict(outputs)
  return run


class Evaluations:
  """The task's evaluators, compiled, with their cadences."""

  def __init__(self, evaluators, placement, abstract_state, default_every: int):
    self._runs = [(compile_evaluator(e, placement, abstract_state), e.every_steps or default_every)
                  for e in evaluators]

  def __bool__(self):
    return bool(self._runs)

  def due(self, step: int, last: bool) -> list:
    return [run for run, every in self._runs if last or (every and step % every == 0)]

  def run(self, state, step: int, last: bool = False) -> dict:
    summaries = {}
    for run in self.due(step, last):
      summaries |= run(state, step)
    return summaries
