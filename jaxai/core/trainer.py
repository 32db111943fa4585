"""The training loop shared by every domain, and the one place that jits the domains' step functions.

restore-or-init -> compile once -> for each step: batch -> `state, metrics = step(state, batch, rng)`
-> log, evaluate, checkpoint at their cadences -> final evaluation and checkpoint.

Metrics of step t are read back while step t+1 runs, so the host never stalls the device, yet a
non-finite loss or gradient is caught at the step where it appears, before its state is saved.
"""
import json
import math
import os
import signal
import threading
import time
from typing import Any

import jax
import ml_collections
from absl import logging
from jax.experimental import multihost_utils

from jaxai.core import flops, mesh as mesh_lib
from jaxai.core.checkpoint import Checkpointer, signature
from jaxai.core.errors import UserError
from jaxai.core.metrics import MetricsWriter, RunningMean
from jaxai.core.runs import CONFIG_FILE
from jaxai.core.task import Task



class NonFiniteError(UserError):
  """Training produced NaN or inf; raised after the last good checkpoint is safely on disk."""


def compile_steps(task: Task, mesh, abstract_state, local_batch) -> tuple[Any, Any]:
  """Jits and compiles the train and eval steps with their shardings. The only `jax.jit` of steps."""
  repl, data = mesh_lib.replicated(mesh), mesh_lib.batch_sharded(mesh)
  state_sharding = jax.tree.map(lambda _: repl, abstract_state)

  def step_with_rng(state, batch, base_rng):  # fold the step into the key: same batch, same noise.
    return task.train_step(state, batch, jax.random.fold_in(base_rng, state.step))

  train = jax.jit(step_with_rng, in_shardings=(state_sharding, data, repl),
                  out_shardings=(state_sharding, repl), donate_argnums=(0,))
  batch_spec = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct((x.shape[0] * jax.process_count(),) + x.shape[1:], x.dtype,
                                     sharding=data), local_batch)
  key_spec = jax.eval_shape(lambda: jax.random.key(0))
  train = train.lower(with_sharding(abstract_state, state_sharding), batch_spec, key_spec).compile()
  evaluate = None
  if task.eval_step is not None:
    evaluate = jax.jit(task.eval_step, in_shardings=(state_sharding, data), out_shardings=repl)
  return train, evaluate


def jit_collect(task: Task, mesh=None):
  """Jits `task.collect`: on this process's first local device, or over `mesh` if the task asks."""
  def collect_with_rng(policy, carry, base_rng):
    return task.collect(policy, carry, jax.random.fold_in(base_rng, policy["step"]))
  if mesh is None:
    return jax.jit(collect_with_rng, donate_argnums=(1,))
  repl, data = mesh_lib.replicated(mesh), mesh_lib.batch_sharded(mesh)
  return jax.jit(collect_with_rng, in_shardings=(repl, data, repl), out_shardings=(data, data, repl),
                 donate_argnums=(1,))


class _Collector:
  """Runs `task.collect` with the current parameters; holds the (not checkpointed) carry.

  `batch` returns the global batch of rows: collected on one device per process and assembled, or
  collected already split over the mesh (`task.collect_on_mesh`).
  """

  def __init__(self, task: Task, rng, mesh):
    self._mesh = mesh
    if task.collect_on_mesh:
      self._device = None
      self._fn = jit_collect(task, mesh)
      self._carry = mesh_lib.global_batch(task.init_carry(), mesh)
      self._rng = rng  # uncommitted: jit replicates it over the mesh (also across processes).
    else:
      self._device = jax.local_devices()[0]
      self._fn = jit_collect(task)
      self._carry = jax.device_put(task.init_carry(), self._device)
      self._rng = jax.device_put(rng, self._device)

  def batch(self, state) -> tuple[Any, dict]:
    policy = {"params": state.params, "step": state.step}  # replicated over the mesh.
    if self._device is None:
      self._carry, rows, metrics = self._fn(policy, self._carry, self._rng)
      return rows, metrics
    policy = jax.device_put(mesh_lib.local_copy(policy), self._device)
    self._carry, rows, metrics = self._fn(policy, self._carry, self._rng)
    return mesh_lib.global_batch(rows, self._mesh), metrics


def with_sharding(abstract: Any, shardings: Any) -> Any:
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)


def evaluate(task: Task, eval_fn, state, mesh) -> dict:
  """Sums eval metrics over every eval batch, then divides by the number of real examples."""
  if task.evaluate is not None:
    return task.evaluate(state)
  totals = None
  for local in task.eval_data():
    sums = eval_fn(state, mesh_lib.global_batch(local, mesh))
    totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
  totals = jax.device_get(totals)
  count = float(totals.pop("count"))
  return {f"eval/{k}": float(v) / count for k, v in totals.items()} | {"eval/examples": count}


def _is_finite(metrics: dict) -> bool:
  return all(math.isfinite(float(v)) for v in jax.tree.leaves(metrics))


class _StopRequest:
  """Turns SIGTERM (what SLURM and preemptible TPU VMs send) and, in one process, Ctrl-C into a
  checkpoint at a step boundary followed by a clean return.

  With several processes, all must stop at the same step, whichever of them got the signal: JAX's
  preemption service (started by `jax.distributed.initialize`) catches SIGTERM, spreads the notice
  to every process and agrees on a step; `requested` polls it without blocking the device.
  """

  def __init__(self):
    self.signal = None
    self._multiprocess = jax.process_count() > 1

  def install(self):
    """Installs the handlers; returns a function that puts the previous ones back."""
    if self._multiprocess or threading.current_thread() is not threading.main_thread():
      return lambda: None

    def handler(signum, frame):
      self.signal = signal.Signals(signum).name

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(s, h) for s, h in previous.items()]

  def requested(self, step: int) -> str | None:
    """The signal's name if the run should save and stop after `step`; call at every step."""
    if self._multiprocess and multihost_utils.reached_preemption_sync_point(step):
      self.signal = "SIGTERM"
    return self.signal


class _Profiler:
  """Records a JAX profiler trace (for TensorBoard's profile plugin or Perfetto) of a window of steps."""

  def __init__(self, config, start: int, workdir: str):
    n = config.get("profile_steps", 0)
    self.first = start + config.get("profile_after_steps", 0) if n else None
    self.end = self.first + n if n else None
    self.directory = os.path.join(workdir, "profile")
    self.active = False

  def before(self, step: int):
    if step == self.first:
      jax.profiler.start_trace(self.directory)
      self.active = True

  def after(self, done: int, state, final: bool):
    if self.active and (done == self.end or final):
      jax.block_until_ready(state)
      jax.profiler.stop_trace()
      self.active = False
      logging.info("Profiler trace of steps %d-%d written to %s", self.first + 1, done, self.directory)

  def close(self):
    """Ends a trace cut short (a stop request or an error): what was recorded is kept."""
    if self.active:
      jax.profiler.stop_trace()
      self.active = False


class _Progress:
  """Console progress: step, loss, steps/s and time remaining."""

  def __init__(self, start_step: int, total: int):
    self.total, self._t, self._step = total, time.perf_counter(), start_step

  def rate(self, step: int) -> float:
    now = time.perf_counter()
    rate = (step - self._step) / max(now - self._t, 1e-9)
    self._t, self._step = now, step
    return rate

  def line(self, step: int, scalars: dict, rate: float) -> str:
    remaining = (self.total - step) / rate if rate > 0 else float("inf")
    loss = scalars.get("train/loss", float("nan"))
    eta = time.strftime("%H:%M:%S", time.gmtime(remaining)) if math.isfinite(remaining) else "?"
    return f"step {step}/{self.total}  loss {loss:.4f}  {rate:.2f} steps/s  eta {eta}"


def check_config(config: ml_collections.ConfigDict) -> None:
  """Checks that need no data and no compilation; call before building the task."""
  mesh = mesh_lib.make_mesh()
  if "batch_size" in config:
    mesh_lib.check_batch_size(config.batch_size, mesh)
  if "eval_batch_size" in config:
    mesh_lib.check_batch_size(config.eval_batch_size, mesh, name="eval_batch_size")
  for key in ("log_every_steps", "eval_every_steps", "checkpoint_every_steps", "num_train_steps",
              "profile_steps", "profile_after_steps"):
    if config.get(key, 0) < 0:
      raise UserError(f"config.{key}={config[key]} must be >= 0.")
  if config.log_every_steps == 0:
    raise UserError("config.log_every_steps must be >= 1.")
  if "optimizer" in config and config.num_train_steps and \
      config.optimizer.warmup_steps >= config.num_train_steps:
    raise UserError(f"config.optimizer.warmup_steps={config.optimizer.warmup_steps} must be below "
                    f"num_train_steps={config.num_train_steps}; lower it, e.g. "
                    f"--config.optimizer.warmup_steps={config.num_train_steps // 10}.")
  if config.keep_checkpoints < 1:
    raise UserError(f"config.keep_checkpoints={config.keep_checkpoints} must be >= 1.")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, task: Task) -> tuple[Any, dict]:
  """Trains `task` in `workdir`, resuming from its latest checkpoint. Returns (final state, metrics)."""
  check_config(config)
  mesh = mesh_lib.make_mesh()
  total = task.num_train_steps
  rng = jax.random.key(config.seed)
  init_rng, train_rng = jax.random.split(rng)

  abstract = jax.eval_shape(task.init, init_rng)
  state_sharding = jax.tree.map(lambda _: mesh_lib.replicated(mesh), abstract)
  ckpt = Checkpointer(workdir, keep=config.keep_checkpoints, async_save=config.async_checkpointing)
  start = ckpt.latest_step()
  if start is not None:  # Resume: checks compatibility before touching anything.
    state, meta = ckpt.restore(start, with_sharding(abstract, state_sharding))
    expected = _position(task, start)
    if meta.get("data") != expected:
      logging.warning("Data position in the checkpoint %s differs from this config's %s (data or batch "
                      "settings changed?); continuing with this config's order.", meta.get("data"), expected)
    logging.info("Resumed from step %d in %s", start, ckpt.directory)
  else:
    start = 0
    state = jax.jit(task.init, out_shardings=state_sharding)(init_rng)
  if start > total:
    raise UserError(f"The workdir's checkpoint is at step {start}, past num_train_steps={total}. "
                    "Raise --config.num_train_steps or use a new --workdir.")

  if jax.process_index() == 0:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, CONFIG_FILE), "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  writer = MetricsWriter(workdir)
  logging.info("%s | %d devices, %d processes | %d params | steps %d -> %d", task.summary,
               jax.device_count(), jax.process_count(), _count_params(abstract), start, total)

  collector = _Collector(task, jax.random.fold_in(train_rng, 1), mesh) if task.collect else None

  def next_batch(step, state):
    """The global batch of `step` and the metrics of making it (collection), if any."""
    if collector is None:
      return mesh_lib.global_batch(task.train_data.batch(step), mesh), {}
    return collector.batch(state)

  batch, collect_metrics = next_batch(start, state)
  train_fn, eval_fn = compile_steps(task, mesh, abstract, _local_rows(batch))
  _log_memory(train_fn)
  peak_flops = flops.peak_flops_per_sec() if task.flops_per_step else 0.0  # measured once, before timing.
  evaluates = task.eval_step is not None or task.evaluate is not None

  def save(step):
    ckpt.save(step, state, {"signature": signature(abstract), "data": _position(task, step),
                            "config": json.loads(config.to_json_best_effort())})

  def check(step, metrics):
    metrics = jax.device_get(metrics)
    if not _is_finite(metrics):
      ckpt.wait()
      last = ckpt.latest_step()
      raise NonFiniteError(
          f"Non-finite training metrics at step {step}: {_plain(metrics)}. Training stopped; "
          + (f"the last good checkpoint (step {last}) is kept in {ckpt.directory}. " if last is not None
             else "no checkpoint had been saved yet. ")
          + "Lower the learning rate, enable gradient clipping (--config.optimizer.grad_clip_norm=1.0), "
          "or check the input data.")
    means.add(metrics)

  means, progress, results = RunningMean(), _Progress(start, total), {}
  pending, stop, profiler = None, _StopRequest(), _Profiler(config, start, workdir)
  restore_signals = stop.install()
  try:
    for step in range(start, total):
      profiler.before(step)
      if step > start:
        batch, collect_metrics = next_batch(step, state)
      state, metrics = train_fn(state, batch, train_rng)
      metrics = {f"train/{k}": v for k, v in metrics.items()} | collect_metrics
      if pending is not None:
        check(*pending)
      pending, done = (step + 1, metrics), step + 1
      last = done == total
      profiler.after(done, state, final=last)
      log_now = last or done % config.log_every_steps == 0
      eval_now = evaluates and (last or (config.eval_every_steps and done % config.eval_every_steps == 0))
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
        scalars = means.result() | {"perf/steps_per_sec": rate}
        for unit, per_step in task.units_per_step.items():
          scalars |= {unit: done * per_step, f"perf/{unit}_per_sec": rate * per_step}
        if peak_flops:
          scalars["perf/mfu"] = rate * task.flops_per_step / peak_flops
        logging.info(progress.line(done, scalars, rate))
        writer.write(done, scalars)
        results.update(scalars)
      if eval_now:
        scalars = evaluate(task, eval_fn, state, mesh)
        logging.info("step %d  %s", done, "  ".join(f"{k} {v:.4f}" for k, v in scalars.items()))
        writer.write(done, scalars)
        results.update(scalars)
        if task.eval_texts is not None:
          writer.write_texts(done, task.eval_texts(state))
        progress.rate(done)  # Do not count evaluation time in steps/s.
      if save_now:
        save(done)
    if start == total and evaluates:  # Already finished: report the final numbers.
      results.update(evaluate(task, eval_fn, state, mesh))
  finally:
    profiler.close()
    restore_signals()
    ckpt.wait()
    ckpt.close()
    writer.close()
  results["step"] = done if stop.signal else total
  return state, results


def _position(task: Task, step: int) -> dict:
  """Where `step` is in the input (collected data has no position beyond the step)."""
  return task.train_data.position(step) if task.train_data is not None else {"step": step}


def _local_rows(global_batch) -> Any:
  """Shapes of this process's rows of a global batch (what `compile_steps` expects)."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(
      (x.shape[0] // jax.process_count(),) + x.shape[1:], x.dtype), global_batch)


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
  except Exception:  # Not every backend reports memory.
    pass
