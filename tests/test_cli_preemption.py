"""SIGTERM (what SLURM and preemptible VMs send) makes a CLI run save a checkpoint at the next step
boundary and exit cleanly; the same command then resumes and ends bitwise equal to an uninterrupted run."""
import signal
import subprocess
import time

import numpy as np

from jaxai import tasks
from jaxai.core import trainer
from tests.helpers import (REPO_ROOT, check_ok, checkpoint_steps, cli_command, cli_env, leaves_with_paths,
                           load_config, restore_state, run_cli)

# Checkpoints only at the end, so the one a SIGTERM leaves behind can only come from the signal.
OVERRIDES = {"num_train_steps": 200, "checkpoint_every_steps": 0, "log_every_steps": 5}


def test_sigterm_saves_at_a_step_boundary_and_resume_is_bitwise_equal(data_dir, tmp_path):
  uninterrupted, preempted = tmp_path / "uninterrupted", tmp_path / "preempted"
  config = load_config("mnist_cnn", OVERRIDES)  # the reference runs in-process: same code.
  trainer.train_and_evaluate(config, str(uninterrupted), tasks.make_task(config))

  proc = subprocess.Popen(cli_command("mnist_cnn.py:tiny", preempted, OVERRIDES), env=cli_env(),
                          cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 120
  metrics = preempted / "metrics.jsonl"
  while not (metrics.exists() and metrics.read_text().count("\n") >= 2):  # training is under way.
    assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-3000:]
    time.sleep(0.01)
  proc.send_signal(signal.SIGTERM)
  _, stderr = proc.communicate(timeout=120)
  assert proc.returncode == 0, stderr[-3000:]
  saved = checkpoint_steps(preempted)
  assert len(saved) == 1 and 0 < saved[0] < OVERRIDES["num_train_steps"], (saved, stderr[-2000:])
  assert "SIGTERM received" in stderr

  resumed = check_ok(run_cli("mnist_cnn.py:tiny", preempted, OVERRIDES))
  assert f"Resumed from step {saved[0]}" in resumed.stderr
  task = tasks.make_task(load_config("mnist_cnn", OVERRIDES))
  want = leaves_with_paths(restore_state(uninterrupted, task))
  got = leaves_with_paths(restore_state(preempted, task))
  assert int(got[".step"]) == OVERRIDES["num_train_steps"]
  assert [k for k in want if not np.array_equal(np.asarray(want[k]), np.asarray(got[k]))] == []
