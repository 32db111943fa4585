"""Two processes x two fake devices (jax.distributed over gloo, via launch/local.py) train like one
process with four devices, and their checkpoint restores and continues in a single process."""
import socket
import subprocess
import sys
import time

import numpy as np

from tests.helpers import DATA_DIR, REPO_ROOT, check_ok, checkpoint_steps, cli_env, metrics_lines, run_cli

OVERRIDES = {"num_train_steps": 12, "checkpoint_every_steps": 4}


def train_losses(workdir) -> dict:
  return {r["step"]: r["train/loss"] for r in metrics_lines(workdir) if "train/loss" in r}


def test_two_processes_match_one_process_and_resume_in_one(tmp_path):
  two, one = tmp_path / "two_processes", tmp_path / "one_process"
  args = [f"--config={REPO_ROOT / 'configs/mnist_cnn.py'}:tiny", f"--workdir={two}",
          f"--config.data_dir={DATA_DIR}"] + [f"--config.{k}={v}" for k, v in OVERRIDES.items()]
  proc = subprocess.run([sys.executable, "launch/local.py", "--processes=2", "--devices_per_process=2", "--",
                         *args], cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)
  check_ok(proc)
  check_ok(run_cli("mnist_cnn.py:tiny", one, OVERRIDES, devices=4))
  got, want = train_losses(two), train_losses(one)
  assert got.keys() == want.keys() and len(got) >= 3
  np.testing.assert_allclose([got[k] for k in sorted(got)], [want[k] for k in sorted(want)], rtol=1e-5)
  assert checkpoint_steps(two)[-1] == OVERRIDES["num_train_steps"]

  # The 2-process checkpoint restores in one process with one device, and training continues.
  longer = dict(OVERRIDES, num_train_steps=16, **{"optimizer.warmup_steps": 2})
  resumed = check_ok(run_cli("mnist_cnn.py:tiny", two, longer))
  assert f"Resumed from step {OVERRIDES['num_train_steps']}" in resumed.stderr
  assert checkpoint_steps(two)[-1] == 16


def test_bad_process_arguments_are_clear_errors(tmp_path):
  proc = run_cli("mnist_cnn.py:tiny", tmp_path, extra_args=[
      "--coordinator_address=127.0.0.1:1", "--num_processes=2", "--process_id=2"])
  assert proc.returncode == 2 and "--process_id=2 must be in [0, 2)" in proc.stderr, proc.stderr[-2000:]


def test_unreachable_coordinator_fails_within_the_timeout(tmp_path):
  with socket.socket() as s:  # a port nobody listens on.
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  start = time.monotonic()
  proc = run_cli("mnist_cnn.py:tiny", tmp_path, extra_args=[
      f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", "--process_id=1",
      "--distributed_timeout_s=3"])
  assert proc.returncode == 2 and "Could not reach the coordinator" in proc.stderr, proc.stderr[-2000:]
  assert time.monotonic() - start < 60
