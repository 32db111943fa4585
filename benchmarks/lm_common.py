"""Runs a language-model config through the real CLI and summarizes its metrics (used by benchmarks/lm_*.py)."""
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # run as `python benchmarks/<script>.py` from anywhere.

from jaxai.core import metrics as metrics_lib  # noqa: E402
DEFAULT_DATA_DIR = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "tfds"))


def train(config: str, workdir: str, data_dir: str, overrides: list[str]) -> dict:
  """`python -m jaxai.main` on `config` in a fresh `workdir`; returns the figures of its metrics.jsonl.

  wall: the whole subprocess (start-up, data, compilation, training, evaluations, checkpoints);
  tokens_per_sec, mfu: over training time only (the trainer's log intervals exclude evaluation).
  """
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    sys.exit(f"error: {workdir} already holds checkpoints; the trainer would resume from them. Use a new --workdir.")
  cmd = [sys.executable, "-m", "jaxai.main", f"--config={config}", f"--workdir={workdir}",
         f"--config.data_dir={data_dir}", *overrides]
  print("$ " + " ".join(cmd), flush=True)
  start = time.perf_counter()
  code = subprocess.call(cmd, cwd=REPO)
  wall = time.perf_counter() - start
  if code != 0:
    sys.exit(f"error: jaxai.main exited with status {code}")
  records = metrics_lib.read_metrics(workdir)
  seconds = tokens = flops_seconds = 0.0
  prev_step = 0
  for r in records:
    if "perf/steps_per_sec" in r:
      interval = (r["step"] - prev_step) / r["perf/steps_per_sec"]
      seconds += interval
      tokens = r["tokens"]
      flops_seconds += r.get("perf/mfu", 0.0) * interval
      prev_step = r["step"]
  evals = [(r["step"], r["eval/loss"]) for r in records if "eval/loss" in r]
  samples = sorted(os.listdir(os.path.join(workdir, "samples"))) if os.path.isdir(
      os.path.join(workdir, "samples")) else []
  return {"wall": wall, "train_seconds": seconds, "tokens_per_sec": tokens / seconds if seconds else 0.0,
          "mfu": flops_seconds / seconds if seconds else 0.0, "evals": evals, "steps": prev_step,
          "sample": open(os.path.join(workdir, "samples", samples[-1])).read() if samples else ""}


def flops_per_token(config_file: str, data_dir: str) -> float:
  """Model training FLOPs per token of `configs/<file>.py[:variant]`, as the trainer's perf/mfu counts them."""
  import importlib.util
  from jaxai import tasks
  path, _, variant = config_file.partition(":")
  spec = importlib.util.spec_from_file_location("benchmark_config", os.path.join(REPO, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(variant)
  config.data_dir = data_dir
  task = tasks.make_task(config)
  return task.units_per_step["model_flops"] / task.units_per_step["tokens"]


def peak_flops() -> float:
  """The peak the trainer's perf/mfu divides by (jaxai.core.flops; measured here again, in this process)."""
  from jaxai.core import flops
  return flops.peak_flops_per_sec()
