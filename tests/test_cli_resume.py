"""A CLI run killed with SIGKILL after a checkpoint and started again with the same command ends
bitwise equal to an uninterrupted run, and its metrics.jsonl stays well formed."""
import math
import signal
import subprocess
import time

import numpy as np
import pytest

from jaxai import tasks
from jaxai.core import trainer
from jaxai.core.metrics import read_metrics
from tests.helpers import (REPO_ROOT, check_ok, checkpoint_steps, cli_command, cli_env, leaves_with_paths,
                           load_config, metrics_lines, restore_state, run_cli)

# Enough steps that the run is still training well after its first checkpoint (at step 10).
OVERRIDES = {"num_train_steps": 120, "checkpoint_every_steps": 10, "log_every_steps": 5}
STEPS = OVERRIDES["num_train_steps"]


def kill_after_first_checkpoint(workdir, timeout=120.0) -> int:
  """Starts the CLI, SIGKILLs it as soon as a committed checkpoint exists; returns that step."""
  proc = subprocess.Popen(cli_command("mnist_cnn.py:tiny", workdir, OVERRIDES), env=cli_env(),
                          cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + timeout
  try:
    while not checkpoint_steps(workdir):
      if proc.poll() is not None:
        pytest.fail(f"the run ended (exit {proc.returncode}) before any checkpoint:\n{proc.stderr.read()[-3000:]}")
      assert time.monotonic() < deadline, "no checkpoint appeared in time"
      time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
    proc.stderr.close()
  assert proc.returncode == -signal.SIGKILL
  steps = checkpoint_steps(workdir)
  assert steps and max(steps) < STEPS, f"the run finished before it could be killed: {steps}"
  return max(steps)


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
  uninterrupted = tmp_path_factory.mktemp("uninterrupted")  # the reference runs in-process: same code.
  config = load_config("mnist_cnn", OVERRIDES)
  trainer.train_and_evaluate(config, str(uninterrupted), tasks.make_task(config))
  resumed = tmp_path_factory.mktemp("resumed")
  killed_at = kill_after_first_checkpoint(resumed)
  proc = check_ok(run_cli("mnist_cnn.py:tiny", resumed, OVERRIDES))  # the very same command.
  assert f"Resumed from step {killed_at}" in proc.stderr
  return uninterrupted, resumed, killed_at


def test_resumed_run_is_bitwise_equal(runs):
  uninterrupted, resumed, _ = runs
  task = tasks.make_task(load_config("mnist_cnn", OVERRIDES))
  want, got = leaves_with_paths(restore_state(uninterrupted, task)), leaves_with_paths(restore_state(resumed, task))
  assert int(got[".step"]) == STEPS
  assert want.keys() == got.keys()
  different = [k for k in want if not np.array_equal(np.asarray(want[k]), np.asarray(got[k]))]
  assert not different, f"leaves differ after resume: {different}"
  assert checkpoint_steps(resumed) == checkpoint_steps(uninterrupted)


def test_resumed_metrics_are_well_formed(runs):
  uninterrupted, resumed, killed_at = runs
  lines = metrics_lines(resumed)  # every line parses as a JSON object with an integer step.
  for r in lines:
    assert all(isinstance(v, float) and math.isfinite(v) for k, v in r.items() if k != "step")
  train_steps = [r["step"] for r in lines if "train/loss" in r]
  # Logged before the kill, then again from the checkpoint on: never backwards except at the restart.
  restarts = sum(b < a for a, b in zip(train_steps, train_steps[1:]))
  assert restarts <= 1
  assert train_steps[-1] == STEPS

  def train_losses(workdir):
    return {r["step"]: r["train/loss"] for r in read_metrics(workdir) if "train/loss" in r}

  # read_metrics keeps the latest record per step: the same steps and losses as the uninterrupted run
  # (log windows line up with checkpoints here, so every logged mean covers the same steps).
  assert train_losses(resumed) == train_losses(uninterrupted)
  final = lambda w: [r for r in read_metrics(w) if "eval/accuracy" in r][-1]
  assert final(resumed) == final(uninterrupted)
