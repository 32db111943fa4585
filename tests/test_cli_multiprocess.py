"""Two processes x two fake devices (jax.distributed over gloo, via launch/local.py) train like one
process with four devices, and their checkpoint restores and continues in a single process."""
import signal
import subprocess
import sys
import time

import numpy as np

from jaxai import tasks

from tests.helpers import (DATA_DIR, REPO_ROOT, check_ok, checkpoint_steps, cli_command, cli_env, free_port,
                           leaves_with_paths, load_config, metrics_lines, restore_state, run_cli)

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
  port = free_port()  # nobody listens there.
  start = time.monotonic()
  proc = run_cli("mnist_cnn.py:tiny", tmp_path, extra_args=[
      f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", "--process_id=1",
      "--distributed_timeout_s=3"])
  assert proc.returncode == 2 and "Could not reach the coordinator" in proc.stderr, proc.stderr[-2000:]
  assert time.monotonic() - start < 60


def test_sigterm_to_one_process_stops_all_at_one_step_and_resume_matches(tmp_path):
  """SIGTERM reaches only process 1; JAX's preemption service makes both save at the same step."""
  overrides = {"num_train_steps": 150, "checkpoint_every_steps": 0, "log_every_steps": 5}
  uninterrupted, preempted = tmp_path / "uninterrupted", tmp_path / "preempted"

  def start(workdir):
    port = free_port()
    return [subprocess.Popen(cli_command("mnist_cnn.py:tiny", workdir, overrides) + [
        f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"],
        env=cli_env(), cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for i in range(2)]

  def finish(procs):
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-2000:] for e in errs)
    return errs

  procs = start(preempted)
  deadline = time.monotonic() + 180
  metrics = preempted / "metrics.jsonl"
  while not (metrics.exists() and metrics.read_text().count("\n") >= 2):  # training is under way.
    assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGTERM)
  errs = finish(procs)
  saved = checkpoint_steps(preempted)
  assert len(saved) == 1 and 0 < saved[0] < overrides["num_train_steps"], (saved, errs[0][-2000:])
  assert all(f"saved a checkpoint at step {saved[0]}" in e for e in errs), errs[0][-2000:]

  finish(start(preempted))  # the same command resumes and finishes.
  finish(start(uninterrupted))
  task = tasks.make_task(load_config("mnist_cnn", overrides))
  want = leaves_with_paths(restore_state(uninterrupted, task))
  got = leaves_with_paths(restore_state(preempted, task))
  assert int(got[".step"]) == overrides["num_train_steps"]
  assert [k for k in want if not np.array_equal(np.asarray(want[k]), np.asarray(got[k]))] == []
