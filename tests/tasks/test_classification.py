"""The classification task trained in-process on real MNIST: training lowers the loss, and evaluation
over a split whose size is not a multiple of the eval batch counts every example exactly once."""
import jax
import numpy as np
import optax
import pytest

from jaxai import tasks
from jaxai.core import trainer
from jaxai.core.errors import UserError
from jaxai.core.metrics import read_metrics
from jaxai.data import sources
from jaxai.models.classifiers import make_classifier
from jaxai.tasks import classification
from tests.helpers import load_config

EVAL_EXAMPLES, EVAL_BATCH = 301, 100  # 3 full batches and one with a single real example.


@pytest.fixture(scope="module")
def run(data_dir, tmp_path_factory):
  config = load_config("mnist_cnn", {"num_train_steps": 30, "log_every_steps": 5,
                                     "max_eval_examples": EVAL_EXAMPLES, "eval_batch_size": EVAL_BATCH})
  task = tasks.make_task(config)
  workdir = tmp_path_factory.mktemp("classification")
  state, results = trainer.train_and_evaluate(config, str(workdir), task)
  return config, task, state, results, workdir


@pytest.fixture(scope="module")
def direct_eval(run):
  """state -> (mean loss, correct count) over the first EVAL_EXAMPLES test images, computed here in one batch."""
  config, task, *_ = run
  test = sources.load_split(config.dataset, config.eval_split, config.data_dir, False, EVAL_EXAMPLES)
  assert len(test["label"]) == EVAL_EXAMPLES
  train_images = task.source.arrays["image"]
  pixels = train_images.reshape(-1, train_images.shape[-1]).astype(np.float64)
  mean, std = pixels.mean(0), np.maximum(pixels.std(0), 1e-3)
  x = ((test["image"] - mean) / std).astype(np.float32)
  model = make_classifier(config.model, num_classes=10)
  apply = jax.jit(lambda variables: model.apply(variables, x, train=False))

  def evaluate(state):
    logits = np.asarray(apply({"params": state.params, **state.model_state}), np.float64)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, test["label"])
    return float(np.mean(loss)), int(np.sum(np.argmax(logits, -1) == test["label"]))
  return evaluate


def test_training_lowers_the_loss(run, direct_eval):
  config, task, state, results, workdir = run
  initial = jax.jit(task.init)(jax.random.key(config.seed))
  loss_before, _ = direct_eval(initial)
  loss_after, _ = direct_eval(state)
  assert loss_after < loss_before
  assert results["eval/loss"] < loss_before
  train_losses = [r["train/loss"] for r in read_metrics(workdir) if "train/loss" in r]
  assert len(train_losses) == config.num_train_steps // config.log_every_steps
  assert train_losses[-1] < train_losses[0]
  assert int(state.step) == config.num_train_steps == results["step"]


def test_eval_counts_each_example_once(run, direct_eval):
  config, task, state, results, _ = run
  assert results["eval/examples"] == EVAL_EXAMPLES
  loss, correct = direct_eval(state)
  # Padding repeats example 0: counting it would shift both numbers.
  assert results["eval/accuracy"] == pytest.approx(correct / EVAL_EXAMPLES, abs=1e-9)
  assert results["eval/loss"] == pytest.approx(loss, rel=1e-5)


def test_model_config_mistakes_are_user_errors():
  with pytest.raises(UserError, match="model.name"):
    make_classifier(load_config("mnist_cnn", {"model.name": "vit"}).model, 10)
  config = load_config("mnist_cnn")
  config.model.depth = 3
  with pytest.raises(UserError, match="depth"):
    make_classifier(config.model, 10)
  config = load_config("mnist_cnn")
  config.task = "translation"
  with pytest.raises(UserError, match="translation"):
    tasks.make_task(config)


def test_saved_facts_rebuild_the_task_without_reading_data(run, monkeypatch):
  """A tool restores a run from config.json + facts.json: same state layout, no dataset read."""
  from jaxai.core import runs
  config, task, state, _, workdir = run
  facts = runs.load_facts(str(workdir))
  assert facts == task.facts and facts["num_classes"] == 10
  monkeypatch.setattr(sources, "load_split", lambda *a, **k: pytest.fail("the dataset was read"))
  rebuilt = classification.make_task(runs.load_config(str(workdir), "classification"), facts)
  restored, step = runs.restore_latest_state(str(workdir), rebuilt)
  assert step == config.num_train_steps
  np.testing.assert_array_equal(jax.tree.leaves(restored.params)[0], jax.tree.leaves(state.params)[0])
