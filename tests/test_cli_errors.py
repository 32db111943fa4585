"""Mistakes stop the CLI early with a message saying what to change, and nothing saved is touched."""
import re
import shutil
import time

import jax
import numpy as np
import pytest

from jaxai import tasks
from tests.helpers import (CONFIGS, check_ok, checkpoint_steps, error_lines, load_config, metrics_lines, restore_state,
                           run_cli, tree_digest)

MNIST = "mnist_cnn.py:tiny"


@pytest.mark.parametrize("override, mentions", [
    ({"batchsize": 3}, ["batch_size"]),                 # unknown key: suggests the right one.
    ({"batch_size": "abc"}, ["batch_size", "abc"]),     # wrong type.
    ({"optimizer.learning_rat": 0.1}, ["learning_rate"]),
], ids=["unknown-key", "wrong-type", "unknown-nested-key"])
def test_bad_override_is_refused_before_anything_runs(override, mentions, data_dir, tmp_path):
  workdir = tmp_path / "run"
  proc = run_cli(MNIST, workdir, override)
  assert proc.returncode != 0
  message = error_lines(proc)
  assert message and all(m in message for m in mentions), proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr
  assert not workdir.exists()


def test_missing_config_file_is_one_line_naming_it(tmp_path):
  proc = run_cli("no_such_file.py", tmp_path / "run")
  assert proc.returncode != 0 and "Traceback" not in proc.stderr
  assert error_lines(proc).splitlines() == [
      f"error: --config={CONFIGS / 'no_such_file.py'}: no such file. Configs live in configs/, e.g. "
      "--config=configs/mnist_cnn.py (add :tiny for a smoke run)."]


def test_a_finished_run_started_again_says_so(tmp_path):
  check_ok(run_cli("digits_quickstart.py:tiny", tmp_path, {"num_train_steps": 3}))
  again = check_ok(run_cli("digits_quickstart.py:tiny", tmp_path, {"num_train_steps": 3}))
  assert "already holds a finished run (step 3 of 3)" in again.stderr
  assert "Use a new --workdir to train again" in again.stderr
  assert checkpoint_steps(tmp_path) == [3]


def test_batch_not_divisible_by_devices_fails_fast(tmp_path):
  workdir, empty = tmp_path / "run", tmp_path / "no_data"
  empty.mkdir()
  # The data_dir holds nothing: reaching data loading would give a dataset error instead.
  proc = run_cli(MNIST, workdir, {"batch_size": 30}, devices=4, data_dir=empty)
  assert proc.returncode == 2, proc.stderr[-3000:]
  message = error_lines(proc)
  assert "batch_size=30" in message and "number of devices (4" in message
  assert "Dataset" not in proc.stderr and "Traceback" not in proc.stderr
  assert not workdir.exists()


@pytest.mark.parametrize("download", [False, True])
def test_missing_dataset_offline(download, tmp_path):
  workdir, empty = tmp_path / "run", tmp_path / "no_data"
  empty.mkdir()
  start = time.monotonic()
  proc = run_cli(MNIST, workdir, {"download": download}, data_dir=empty, timeout=60)
  assert time.monotonic() - start < 30, "a missing dataset must be reported at once, not hang"
  assert proc.returncode == 2, proc.stderr[-3000:]
  message = error_lines(proc)
  assert "'mnist:3.0.1'" in message and str(empty) in message
  assert "--config.data_dir" in message and "TFDS_DATA_DIR" in message  # how to provide it.
  assert "Traceback" not in proc.stderr
  assert list(empty.iterdir()) == [] and not workdir.exists()


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("trained")
  check_ok(run_cli(MNIST, workdir))
  return workdir


def test_checkpoint_of_another_model_is_refused_untouched(trained, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained, workdir)
  before = tree_digest(workdir)
  proc = run_cli(MNIST, workdir, {"model.dense": 64})
  assert proc.returncode == 2, proc.stderr[-3000:]
  message = error_lines(proc)
  assert "different model" in message
  assert re.search(r"Dense_0/kernel' is float32\[\d+, 32\] in the checkpoint but float32\[\d+, 64\]", message)
  assert "new --workdir" in message
  assert tree_digest(workdir) == before  # checkpoints, metrics.jsonl, config.json, events: unchanged.


def test_diverging_run_stops_and_keeps_a_finite_checkpoint(data_dir, tmp_path):
  overrides = {"optimizer.learning_rate": 1e30, "checkpoint_every_steps": 1}
  proc = run_cli(MNIST, tmp_path, overrides)
  assert proc.returncode == 2, proc.stderr[-3000:]
  message = error_lines(proc)
  failed = int(re.search(r"Non-finite training metrics at step (\d+)", message).group(1))
  steps = checkpoint_steps(tmp_path)
  assert steps and max(steps) == failed - 1
  assert f"last good checkpoint (step {failed - 1})" in message
  assert "Traceback" not in proc.stderr
  task = tasks.make_task(load_config("mnist_cnn", overrides))
  state = restore_state(tmp_path, task)
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state))
  assert all(r["step"] < failed for r in metrics_lines(tmp_path))
