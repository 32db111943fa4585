"""The contract between a domain and the shared trainer.

A domain module exposes `make_task(config, facts=None) -> Task`. Everything in a Task is pure or
host-side; the core applies `jax.jit`, shardings and donation, places batches, checkpoints the
state and writes the summaries.

    Task(name, init, train_step, source, num_train_steps,
         evaluators=[...],            # any number: core.evaluators.{DatasetEvaluator, Evaluator, HostEvaluator}
         sharding_rules=[...],        # (leaf-path regex, PartitionSpec): core.sharding; default replicated
         units_per_step={...},        # counted per train step: 'examples', 'env_steps', 'model_flops' ...
         facts={...})                 # JSON facts from the data that shapes depend on (vocabulary, classes)

  init(rng) -> state                  a pytree of arrays with an int `step` (train steps taken).
  train_step(state, batch, rng) -> (state, metrics)   traced under jax.set_mesh(mesh): it may
                                      shard_map over the mesh's axes (a batch is split along all of them).
  source                              the rows of each step: core.sources.DatasetSource (random access by
                                      step: bitwise resume) or core.sources.CollectionSource
                                      (environments, self-play: collected with the current parameters).

`facts` are saved with the run (<workdir>/facts.json); `make_task(config, facts)` must then build
the same state layout without reading any data, so tools (samplers, game engines, evaluation
commands) restore a run cheaply (`jaxai.core.runs`). Starting from another run's parameters
(`config.init_from`) and freezing parameters (`config.optimizer.frozen`) are the core's, for every
domain.
"""
import dataclasses
from typing import Any, Callable, Sequence

import jax

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Task:
  name: str
  init: Callable[[jax.Array], PyTree]
  train_step: Callable[[PyTree, PyTree, jax.Array], tuple[PyTree, dict]]
  source: Any                                   # a core.sources.Source
  num_train_steps: int                          # train steps (state.step counts them).
  evaluators: Sequence[Any] = ()
  sharding_rules: Sequence[tuple[str, Any]] = ()
  # Units made per train step, logged cumulatively and per second: {'tokens': 16384} logs 'tokens'
  # and 'perf/tokens_per_sec'. 'model_flops' (forward + backward of the global batch) also logs
  # 'perf/mfu' against the machine's measured peak (jaxai.core.flops).
  units_per_step: dict = dataclasses.field(default_factory=dict)
  facts: dict = dataclasses.field(default_factory=dict)
  summary: str = ""                             # one line for the log: data, model, sizes.
