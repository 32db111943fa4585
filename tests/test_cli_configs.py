"""Every classification config runs end to end in its tiny variant: the quick start through the real
command line (the README's first command), the others in-process through the same trainer."""
import json
import math

import pytest

from jaxai import tasks
from jaxai.core import trainer

from tests.helpers import CONFIGS, check_ok, checkpoint_steps, load_config, metrics_lines, run_cli

ALL_CONFIGS = sorted(p.stem for p in CONFIGS.glob("*.py"))
# Classification configs; the RL ones run in tests/tasks/test_rl_cli.py.
CONFIG_NAMES = [n for n in ALL_CONFIGS if load_config(n, set_data_dir=False).task == "classification"]


def test_every_config_is_covered():
  assert set(CONFIG_NAMES) >= {"digits_quickstart", "mnist_cnn", "fashion_mnist_cnn", "cifar10_resnet"}


# Second datasets of a recipe whose first runs by default: the same code on other data, with -m extended.
EXTENDED = {"fashion_mnist_adversarial", "cifar10_adversarial", "fashion_mnist_dpsgd", "fashion_mnist_cnn"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.extended) if n in EXTENDED else n
                                  for n in CONFIG_NAMES])
def test_tiny_variant_runs_end_to_end(name, data_dir, tmp_path):
  config = load_config(name)
  if name == "digits_quickstart":
    check_ok(run_cli(f"{name}.py:tiny", tmp_path))
  else:
    trainer.train_and_evaluate(config, str(tmp_path), tasks.make_task(config))

  saved = json.loads((tmp_path / "config.json").read_text())
  assert saved == json.loads(config.to_json_best_effort())  # the resolved config, overrides included.

  records = metrics_lines(tmp_path)
  train = [r for r in records if "train/loss" in r]
  evals = [r for r in records if "eval/accuracy" in r]
  assert train and evals
  assert all(math.isfinite(r["train/loss"]) for r in train)
  assert 0.0 <= evals[-1]["eval/accuracy"] <= 1.0

  steps = config.num_train_steps
  assert train[-1]["step"] == evals[-1]["step"] == steps
  assert checkpoint_steps(tmp_path)[-1] == steps
  assert list(tmp_path.glob("events.out.tfevents.*")), "no TensorBoard event file"
