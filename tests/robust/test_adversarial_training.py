"""Adversarial training (Madry PGD, TRADES) and the robust-accuracy evaluator of the classification
domain: PGD examples raise the training loss over clean ones, TRADES' step trains, adversarial
training resumes bitwise, robust figures are bounded by clean ones, and bad settings fail before any
compile."""
import jax
import numpy as np
import optax
import pytest

from jaxai import tasks
from jaxai.core.errors import UserError
from jaxai.models.classifiers import make_classifier
from jaxai.tasks.classification.task import pixel_classifier
from tests.helpers import assert_resume_is_bitwise, load_config


def first_batch(task):
  arrays = task.source.arrays
  return {"image": arrays["image"][:16], "label": arrays["label"][:16]}


def step_metrics(config):
  """The metrics of one train step from init, and the clean cross-entropy of its batch at init."""
  task = tasks.make_task(config)
  state = task.init(jax.random.key(0))
  batch = first_batch(task)
  _, metrics = jax.jit(task.train_step)(state, batch, jax.random.key(1))
  model = make_classifier(config.model, task.facts["num_classes"])
  apply = pixel_classifier(model, *(np.asarray(task.facts[k], np.float32) for k in ("mean", "std")))
  logits = apply({"params": state.params, **state.model_state}, batch["image"] / 255.0)
  clean = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
  return {k: float(v) for k, v in metrics.items()} | {"clean_loss": float(clean)}


def test_madry_trains_on_examples_that_raise_the_loss_and_trades_adds_its_kl():
  # The tiny model has no dropout or batch norm, so its train-mode loss on clean images is clean_loss.
  overrides = {"adversarial.eps_warmup_steps": 0, "num_train_steps": 1, "optimizer.warmup_steps": 0,
               "robust_eval.attacks": (), "interpret.num_images": 0}
  madry = step_metrics(load_config("mnist_adversarial", overrides))
  trades_config = load_config("mnist_adversarial", overrides | {"adversarial.method": "trades",
                                                                "adversarial.eps_warmup_steps": 4})
  trades = step_metrics(trades_config)
  assert madry["loss"] > madry["clean_loss"] + 0.01, madry
  assert madry["eps"] == pytest.approx(0.3)
  assert trades["eps"] == pytest.approx(0.3 / 4)  # eps ramps up over the warmup steps.
  # TRADES: the same clean cross-entropy plus beta * KL >= 0 (its clean half sees what 'none' sees).
  assert trades["loss"] > trades["clean_loss"] - 1e-6 and np.isfinite(trades["grad_norm"])


def test_adversarial_training_resumes_bitwise(tmp_path):
  config = load_config("mnist_adversarial", {"interpret.num_images": 0, "robust_eval.attacks": ()})
  assert_resume_is_bitwise(config, tasks.make_task, tmp_path)


def test_robust_accuracy_is_bounded_by_clean_accuracy_on_the_same_images():
  config = load_config("mnist_adversarial", {"interpret.num_images": 0, "robust_eval.max_examples": 24})
  task = tasks.make_task(config)
  robust = task.evaluators[1]
  state = task.init(jax.random.key(0))
  totals = None
  for batch in robust.batches():
    sums = jax.jit(robust.step)(state, batch)
    totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
  totals = {k: float(v) for k, v in totals.items()}
  assert totals["count"] == 24
  for name in ("fgsm", "pgd", "apgd"):
    assert totals["robust_accuracy_worst"] <= totals[f"robust_accuracy_{name}"] <= totals["robust_subset_accuracy"]


@pytest.mark.parametrize("overrides, message", [
    ({"adversarial.method": "free"}, "adversarial.method"),
    ({"adversarial.eps": -0.1}, ">= 0"),
    ({"adversarial.eps": 3.0}, "above the pixel range"),
    ({"robust_eval.attacks": ("fgsm", "cw")}, "unknown"),
    ({"robust_eval.norm": "l1"}, "norm"),
])
def test_bad_settings_fail_before_any_compile(overrides, message):
  config = load_config("mnist_adversarial", overrides)
  with pytest.raises(UserError, match=message):
    tasks.make_task(config)
