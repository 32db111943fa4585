"""Data parallelism changes nothing but speed: 1 device and 4 fake CPU devices, same config and seed,
give the same per-step training losses and the same evaluation (up to float reduction order)."""
import jax
import numpy as np
import pytest

from jaxai import tasks
from jaxai.core import trainer
from jaxai.core.metrics import read_metrics
from tests.helpers import check_ok, leaves_with_paths, load_config, restore_state, run_cli

# 12 steps, each logged; eval over 301 examples in batches of 100 (25 rows per device, last batch padded).
# SGD, not the config's AdamW: Adam divides each update by the root of its own running squared gradient, so a
# gradient component that is zero up to float noise (a BatchNorm bias) takes a step of the learning rate's size
# and either sign; a CI run saw 1e-5 of summation-order noise grow to 1.8e-4 in 12 steps. Under SGD it stays
# float-sized (here: every leaf within a third of the tolerance below).
OVERRIDES = {"log_every_steps": 1, "max_eval_examples": 301, "eval_batch_size": 100,
             "optimizer.name": "sgd", "optimizer.learning_rate": 0.1, "optimizer.momentum": 0.9,
             "optimizer.weight_decay": 0.0}


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory):
  workdirs = {devices: tmp_path_factory.mktemp(f"devices{devices}") for devices in (1, 4)}
  assert jax.device_count() == 1  # the test process: the 1-device run in-process, 4 devices in a CLI run.
  config = load_config("mnist_cnn", OVERRIDES)
  trainer.train_and_evaluate(config, str(workdirs[1]), tasks.make_task(config))
  proc = check_ok(run_cli("mnist_cnn.py:tiny", workdirs[4], OVERRIDES, devices=4))
  assert "| 4 devices, 1 processes |" in proc.stderr
  return workdirs


def series(workdir, key):
  records = [r for r in read_metrics(workdir) if key in r]
  return [r["step"] for r in records], np.array([r[key] for r in records])


def test_same_train_losses(runs):
  steps1, loss1 = series(runs[1], "train/loss")
  steps4, loss4 = series(runs[4], "train/loss")
  assert steps1 == steps4 == list(range(1, 13))
  # Only float reduction order differs; differences would grow over many steps, so the run is short.
  np.testing.assert_allclose(loss4, loss1, rtol=1e-5)


def test_same_evaluation(runs):
  (_, acc1), (_, acc4) = series(runs[1], "eval/accuracy"), series(runs[4], "eval/accuracy")
  (_, loss1), (_, loss4) = series(runs[1], "eval/loss"), series(runs[4], "eval/loss")
  assert series(runs[1], "eval/examples")[1].tolist() == series(runs[4], "eval/examples")[1].tolist() == [301]
  np.testing.assert_allclose(loss4, loss1, rtol=1e-5)
  # Predictions can flip only for a near-tie between two logits: at most one example of 301.
  np.testing.assert_allclose(acc4, acc1, atol=1.01 / 301)


def test_checkpoint_of_4_devices_restores_on_1(runs):
  task = tasks.make_task(load_config("mnist_cnn", OVERRIDES))
  state1, state4 = leaves_with_paths(restore_state(runs[1], task)), leaves_with_paths(restore_state(runs[4], task))
  assert state1.keys() == state4.keys()
  for key in state1:
    np.testing.assert_allclose(np.asarray(state4[key]), np.asarray(state1[key]), rtol=1e-4, atol=2e-6,
                               err_msg=key)
