"""The training loop shared by every domain, and the one place that jits train steps.

restore (or init, or init from another run) -> compile once -> for each step: rows from the source
-> `state, metrics = train_step(state, batch, rng)` -> log, evaluate, checkpoint at their cadences.

Metrics of step t are read back while step t+1 runs, so the host never stalls the device, yet a
non-finite loss or gradient is caught at the step where it appears, before its state is saved.
"""
import json
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
from absl import logging

from jaxai.core import flops, init_from, runs, sharding
from jaxai.core.checkpoint import Checkpointer, signature
from jaxai.errors import UserError
from jaxai.core.evaluators import Evaluations
from jaxai.core.metrics import MetricsWriter, RunningMean
from jaxai.core.preemption import StopRequest
from jaxai.core.profiler import Profiler
from jaxai.core.progress import Progress
from jaxai.core.summaries import scalars
from jaxai.core.task import Task


class NonFiniteError(UserError):
  """Training produced NaN or inf; raised after the last good checkpoint is safely on disk."""


def compile_train_step(task: Task, placement: sharding.Placement, abstract_state, batch) -> Any:
  """The train step jitted with its shardings and donation, compiled for `batch`'s global shapes."""
  def step_with_rng(state, batch, base_rng):  # fold the step into the key: same batch, same noise.
    return task.train_step(state, batch, jax.random.fold_in(base_rng, state.step))

  return _compile(step_with_rng, placement, abstract_state, batch)


def compile_train_steps(task: Task, placement: sharding.Placement, abstract_state, batches: tuple,
                        unroll: bool = False) -> Any:
  """len(batches) train steps in one device call: `lax.scan` of the train step over the batches (the
  same rng per step as `compile_train_step`). Returns (state, metrics with a leading (steps,) axis)."""
  def steps_with_rng(state, batches, base_rng):
    stacked = jax.tree.map(lambda *rows: jnp.stack(rows), *batches)  # (steps, ...) per leaf.

    def one(state, batch):
      return task.train_step(state, batch, jax.random.fold_in(base_rng, state.step))

    return jax.lax.scan(one, state, stacked, unroll=unroll)

  return _compile(steps_with_rng, placement, abstract_state, batches)


def _compile(fn, placement: sharding.Placement, abstract_state, batch_arg) -> Any:
  state_sharding, repl = placement.state(abstract_state), placement.replicated
  batch_spec = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), batch_arg)
  train = jax.jit(fn, in_shardings=(state_sharding, jax.tree.map(lambda x: x.sharding, batch_spec), repl),
                  out_shardings=(state_sharding, repl), donate_argnums=(0,))
  key_spec = jax.eval_shape(lambda: jax.random.key(0))
  with jax.set_mesh(placement.mesh):  # a step may shard_map over the mesh's axes (jaxai.privacy.dpsgd).
    return train.lower(placement.with_shardings(abstract_state), batch_spec, key_spec).compile()


def check_config(config: ml_collections.ConfigDict) -> None:
  """Checks that need no data and no compilation; call before building the task. Each key is
  checked in its own unit: steps here are train steps; optimizer updates are checked where the
  domain counts them (jaxai.core.optim)."""
  placement = sharding.placement(config)
  for key in ("batch_size", "eval_batch_size"):
    if key in config:
      sharding.check_batch_size(config[key], placement.mesh, name=key)
  for key in ("log_every_steps", "eval_every_steps", "checkpoint_every_steps", "num_train_steps",
              "profile_steps", "profile_after_steps"):
    if config.get(key, 0) < 0:
      raise UserError(f"config.{key}={config[key]} must be >= 0.")
  if config.log_every_steps == 0:
    raise UserError("config.log_every_steps must be >= 1.")
  if config.get("steps_per_call", 1) < 1:
    raise UserError(f"config.steps_per_call={config.steps_per_call} must be >= 1 (1 = one train step per call).")
  if config.keep_checkpoints < 1:
    raise UserError(f"config.keep_checkpoints={config.keep_checkpoints} must be >= 1.")
  if config.get("init_from") and config.init_from.path:
    init_from.resolve(config.init_from.path)
    init_from.parse_map(config.init_from.map)
    init_from.parse_fresh(config.init_from.get("fresh", ""))


def restore_or_init(config, task: Task, placement, ckpt: Checkpointer, init_rng, abstract) -> tuple[Any, int]:
  """The workdir's latest state, else a fresh one (from config.init_from where set)."""
  start = ckpt.latest_step()
  if start is not None:  # Resume: checks compatibility before touching anything.
    state, meta = ckpt.restore(start, placement.with_shardings(abstract))
    if meta.get("data") != task.source.position(start):
      logging.warning("Data position in the checkpoint %s differs from this config's %s (data or batch "
                      "settings changed?); continuing with this config's order.", meta.get("data"),
                      task.source.position(start))
    logging.info("Resumed from step %d in %s", start, ckpt.directory)
    return state, start
  state = jax.jit(task.init, out_shardings=placement.state(abstract))(init_rng)
  if config.get("init_from") and config.init_from.path:
    state = init_from.load_into(state, config.init_from)
  return state, 0


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, task: Task) -> tuple[Any, dict]:
  """Trains `task` in `workdir`, resuming from its latest checkpoint. Returns (final state, metrics)."""
  check_config(config)
  placement = sharding.placement(config, task.sharding_rules)
  total = task.num_train_steps
  init_rng, train_rng = jax.random.split(jax.random.key(config.seed))
  abstract = jax.eval_shape(task.init, init_rng)
  ckpt = Checkpointer(workdir, keep=config.keep_checkpoints, async_save=config.async_checkpointing)
  state, start = restore_or_init(config, task, placement, ckpt, init_rng, abstract)
  if start > total:
    raise UserError(f"The workdir's checkpoint is at step {start}, past num_train_steps={total}. "
                    "Raise --config.num_train_steps or use a new --workdir.")
  runs.save_run_files(workdir, config, task.facts)
  writer = MetricsWriter(workdir)
  logging.info("%s | %d devices, %d processes | %d params | steps %d -> %d", task.summary,
               jax.device_count(), jax.process_count(), _count_params(abstract), start, total)
  if split := placement.split_leaves(abstract):
    logging.info("State leaves split over the mesh %s: %s", dict(placement.mesh.shape), split)

  evaluations = Evaluations(task.evaluators, placement, abstract, config.eval_every_steps)
  per_call = config.get("steps_per_call", 1)
  if per_call > 1 and getattr(task.source, "rows_follow_state", False):
    raise UserError(f"config.steps_per_call={per_call}: the {task.name} task collects each step's rows "
                    "with the parameters of the step before (environments, self-play), so its steps "
                    "cannot run several to a call; use steps_per_call=1 (each of its steps is already "
                    "a long device call: a rollout and its updates).")
  profiler = Profiler(config, start, workdir)

  def call_end(step: int) -> int:
    """The last step + 1 of the call starting at `step`: at most steps_per_call steps, ending at the
    first step after which the trainer logs, evaluates, saves or profiles."""
    for done in range(step + 1, min(step + per_call, total)):
      if (done % config.log_every_steps == 0 or evaluations.due(done, last=False) or profiler.edge(done)
          or (config.checkpoint_every_steps and done % config.checkpoint_every_steps == 0)):
        return done
    return min(step + per_call, total)

  task.source.open(placement, jax.random.fold_in(train_rng, 1))
  compiled = {}

  def train_fn(batches):  # one compiled executable per call length (usually one or two).
    if len(batches) not in compiled:
      compiled[len(batches)] = (
          compile_train_step(task, placement, abstract, batches[0]) if len(batches) == 1 else
          compile_train_steps(task, placement, abstract, tuple(batches), unroll=config.get("unroll_steps", False)))
    return compiled[len(batches)]

  def rows(step, end):  # ([batch per step], [host metrics per step]) of steps step..end-1.
    out = [task.source.rows(s, state) for s in range(step, end)]
    return [b for b, _ in out], [m for _, m in out]

  batches, source_metrics = rows(start, call_end(start)) if start < total else (None, None)
  _log_memory(train_fn(batches) if batches else None)
  units = task.units_per_step
  peak_flops = flops.peak_flops_per_sec() if "model_flops" in units else 0.0  # measured once, before timing.

  def save(step):
    ckpt.save(step, state, {"signature": signature(abstract), "data": task.source.position(step),
                            "config": json.loads(config.to_json_best_effort())})

  def check(first, metrics, host_metrics):
    """Reads back the metrics of steps first+1.. (one call) and checks each step's, in order."""
    metrics = jax.device_get(metrics)
    for i, host in enumerate(host_metrics):
      step_metrics = metrics if len(host_metrics) == 1 else jax.tree.map(lambda x: x[i], metrics)
      step_metrics = {f"train/{k}": v for k, v in step_metrics.items()} | host
      if not all(math.isfinite(float(v)) for v in jax.tree.leaves(step_metrics)):
        ckpt.wait()
        last = ckpt.latest_step()
        raise NonFiniteError(
            f"Non-finite training metrics at step {first + i + 1}: {_plain(step_metrics)}. Training stopped; "
            + (f"the last good checkpoint (step {last}) is kept in {ckpt.directory}. " if last is not None
               else "no checkpoint had been saved yet. ")
            + "Lower the learning rate, enable gradient clipping (--config.optimizer.grad_clip_norm=1.0), "
            "or check the input data.")
      means.add(step_metrics)

  means, progress, results = RunningMean(), Progress(start, total), {}
  pending, done, stop = None, start, StopRequest()
  restore_signals = stop.install()
  try:
    step = start
    while step < total:
      end = call_end(step)
      profiler.before(step)
      if step > start:
        batches, source_metrics = rows(step, end)
      fn = train_fn(batches)
      state, metrics = fn(state, batches[0] if len(batches) == 1 else tuple(batches), train_rng)
      if pending is not None:
        check(*pending)
      pending, done, step = (step, metrics, source_metrics), end, end
      last = done == total
      profiler.after(done, state, final=last)
      log_now = last or done % config.log_every_steps == 0
      eval_now = bool(evaluations.due(done, last))
      save_now = last or (config.checkpoint_every_steps and done % config.checkpoint_every_steps == 0)
      if stop.requested(done):
        check(*pending)
        save(done)
        logging.warning("%s received: saved a checkpoint at step %d and stopped. Run the same command "
                        "to resume.", stop.signal, done)
        results["stopped_by"] = stop.signal
        break
      if not (log_now or eval_now or save_now):
        continue
      check(*pending)
      pending = None
      if log_now:
        rate = progress.rate(done)
        logged = means.result() | {"perf/steps_per_sec": rate}
        for unit, per_step in units.items():
          logged |= {unit: done * per_step, f"perf/{unit}_per_sec": rate * per_step}
        if peak_flops:
          logged["perf/mfu"] = rate * units["model_flops"] / peak_flops
        logging.info(progress.line(done, logged, rate))
        writer.write(done, logged)
        results.update(logged)
      if eval_now:
        summaries = evaluations.run(state, done, last)
        logging.info("step %d  %s", done, "  ".join(f"{k} {v:.4f}" for k, v in scalars(summaries).items()))
        writer.write_summaries(done, summaries)
        results.update(scalars(summaries))
        progress.rate(done)  # Do not count evaluation time in steps/s.
      if save_now:
        save(done)
    if start == total:  # Already finished: report the final numbers.
      logging.warning("The workdir %s already holds a finished run (step %d of %d): nothing to train. "
                      "Use a new --workdir to train again, or raise --config.num_train_steps to train on.",
                      workdir, start, total)
      results["already_finished"] = True
      results.update(scalars(evaluations.run(state, start, last=True)) if evaluations else {})
  finally:
    profiler.close()
    restore_signals()
    ckpt.wait()
    ckpt.close()
    writer.close()
  results["step"] = done if stop.signal else total
  return state, results


def _plain(metrics) -> dict:
  return {k: (float(v) if not hasattr(v, "total") else (float(v.total), float(v.count)))
          for k, v in metrics.items()}


def _count_params(abstract) -> int:
  params = getattr(abstract, "params", abstract)
  return sum(x.size for x in jax.tree.leaves(params))


def _log_memory(compiled):
  try:
    m = compiled.memory_analysis()
    logging.info("Compiled train step: %.1f MiB arguments, %.1f MiB temporaries per device",
                 m.argument_size_in_bytes / 2**20, m.temp_size_in_bytes / 2**20)
  except Exception:  # Not every backend reports memory (or nothing was compiled: a finished run).
    pass
