"""Two processes x two fake devices (jax.distributed over gloo) train like one process with four
devices, their checkpoint restores and continues in a single process (this test's), and a SIGTERM to
one of them stops both at one step from which the same command resumes bitwise. One uninterrupted run
(launch/local.py) is the reference of all three."""
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxai import tasks
from jaxai.core import trainer

from tests.helpers import (DATA_DIR, REPO_ROOT, check_ok, checkpoint_steps, cli_command, cli_env, free_port,
                           leaves_with_paths, load_config, metrics_lines, restore_state, run_cli)

# 2 processes x 2 devices. Long enough that a SIGTERM lands mid-run; checkpoints only at the end, so
# the one a SIGTERM leaves behind can only come from the signal.
# A constant learning rate (after the 2 warmup steps): a shorter run follows the same schedule.
OVERRIDES = {"num_train_steps": 150, "checkpoint_every_steps": 0, "log_every_steps": 4,
             "optimizer.schedule": "constant"}
STEPS = OVERRIDES["num_train_steps"]


def train_losses(workdir) -> dict:
  return {r["step"]: r["train/loss"] for r in metrics_lines(workdir) if "train/loss" in r}


def start_two(workdir):
  """The two processes of a run, started directly (a SIGTERM can then reach only one of them)."""
  port = free_port()
  return [subprocess.Popen(cli_command("mnist_cnn.py:tiny", workdir, OVERRIDES) + [
      f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"],
      env=cli_env(devices=2), cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
      for i in range(2)]


def finish(procs) -> list[str]:
  errs = [p.communicate(timeout=300)[1] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-2000:] for e in errs)
  return errs


@pytest.fixture(scope="module")
def two_processes(data_dir, tmp_path_factory):
  """An uninterrupted 2 x 2 run through launch/local.py."""
  workdir = tmp_path_factory.mktemp("two_processes")
  args = [f"--config={REPO_ROOT / 'configs/mnist_cnn.py'}:tiny", f"--workdir={workdir}",
          f"--config.data_dir={DATA_DIR}"] + [f"--config.{k}={v}" for k, v in OVERRIDES.items()]
  check_ok(subprocess.run([sys.executable, "launch/local.py", "--processes=2", "--devices_per_process=2", "--",
                           *args], cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True, timeout=300))
  assert checkpoint_steps(workdir) == [STEPS]
  return workdir


def test_two_processes_match_one_process_and_resume_in_one(two_processes, tmp_path):
  one = tmp_path / "one_process"
  # Only float reduction order differs; such differences grow over many steps, so compare the first
  # 12: the one-process reference stops there (a constant schedule: the same learning rates).
  check_ok(run_cli("mnist_cnn.py:tiny", one, dict(OVERRIDES, num_train_steps=12), devices=4))
  got, want = train_losses(two_processes), train_losses(one)
  assert got.keys() == set(range(4, STEPS + 1, 4)) | {STEPS} and want.keys() == {4, 8, 12}
  np.testing.assert_allclose([got[k] for k in (4, 8, 12)], [want[k] for k in (4, 8, 12)], rtol=1e-5)

  # The 2-process checkpoint restores in one process with one device (this one: the command line's
  # trainer), and training continues from it: every new metrics record is past STEPS.
  resumed_dir = tmp_path / "resumed"
  shutil.copytree(two_processes, resumed_dir)
  config = load_config("mnist_cnn", dict(OVERRIDES, num_train_steps=STEPS + 4))
  before = len(metrics_lines(resumed_dir))
  state, _ = trainer.train_and_evaluate(config, str(resumed_dir), tasks.make_task(config))
  assert int(state.step) == STEPS + 4
  new = [r["step"] for r in metrics_lines(resumed_dir)[before:]]
  assert new and min(new) > STEPS and max(new) == STEPS + 4, new
  assert checkpoint_steps(resumed_dir)[-1] == STEPS + 4


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


@pytest.mark.extended  # one process's SIGTERM path runs by default (test_cli_preemption.py).
def test_sigterm_to_one_process_stops_all_at_one_step_and_resume_matches(two_processes, tmp_path):
  """SIGTERM reaches only process 1; JAX's preemption service makes both save at the same step, and
  the same command resumes to the uninterrupted run's state, bitwise."""
  preempted = tmp_path / "preempted"
  procs = start_two(preempted)
  deadline = time.monotonic() + 180
  metrics = preempted / "metrics.jsonl"
  while not (metrics.exists() and metrics.read_text().count("\n") >= 2):  # training is under way.
    assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
    time.sleep(0.05)
  procs[1].send_signal(signal.SIGTERM)
  errs = finish(procs)
  saved = checkpoint_steps(preempted)
  assert len(saved) == 1 and 0 < saved[0] < STEPS, (saved, errs[0][-2000:])
  assert all(f"saved a checkpoint at step {saved[0]}" in e for e in errs), errs[0][-2000:]

  finish(start_two(preempted))  # the same command resumes and finishes.
  task = tasks.make_task(load_config("mnist_cnn", OVERRIDES))
  want = leaves_with_paths(restore_state(two_processes, task))
  got = leaves_with_paths(restore_state(preempted, task))
  assert int(got[".step"]) == STEPS
  assert [k for k in want if not np.array_equal(np.asarray(want[k]), np.asarray(got[k]))] == []
