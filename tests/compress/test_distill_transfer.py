"""Distillation and transfer in the classification domain, in-process on tiny MNIST runs: the loss
equals a direct computation, the teacher rides in the state bitwise unchanged, class subsets are
kept and relabelled, a linear probe trains only the head, and mismatched checkpoints are refused."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai import tasks
from jaxai.compress.distill import distillation_loss
from jaxai.core import init_from, trainer
from jaxai.data import sources
from jaxai.errors import UserError
from jaxai.models.classifiers import make_classifier
from jaxai.tasks.classification import task as classification
from tests.helpers import load_config, metrics_lines

ONE_SAVE = {"checkpoint_every_steps": 0}  # the final checkpoint only: saves are most of a tiny run.


def _log_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_distillation_loss_equals_a_direct_computation():
  rng = np.random.default_rng(0)
  s, t = rng.normal(0, 3, (6, 5)), rng.normal(0, 3, (6, 5))
  labels = rng.integers(0, 5, 6)
  temperature, alpha, smoothing = 3.0, 0.7, 0.1
  p_t = np.exp(_log_softmax(t / temperature))
  kl = np.sum(p_t * (np.log(p_t) - _log_softmax(s / temperature)), -1)
  targets = np.eye(5)[labels] * (1 - smoothing) + smoothing / 5
  ce = -np.sum(targets * _log_softmax(s), -1)
  loss, parts = distillation_loss(jnp.asarray(s, jnp.float32), jnp.asarray(t, jnp.float32), labels,
                                  temperature, alpha, smoothing)
  np.testing.assert_allclose(parts["distill_kl"], kl, rtol=1e-5)
  np.testing.assert_allclose(parts["label_loss"], ce, rtol=1e-5)
  np.testing.assert_allclose(loss, alpha * temperature ** 2 * kl + (1 - alpha) * ce, rtol=1e-5)
  grad_t = jax.grad(lambda t: distillation_loss(s, t, labels, temperature, alpha)[0].sum())(jnp.asarray(t))
  assert not np.any(grad_t)  # the teacher gets no gradient.


@pytest.fixture(scope="module")
def teacher(data_dir, tmp_path_factory):
  config = load_config("mnist_distill", ONE_SAVE, variant="tiny")
  workdir = tmp_path_factory.mktemp("teacher")
  state, _ = trainer.train_and_evaluate(config, str(workdir), tasks.make_task(config))
  return str(workdir), state


def test_distilled_student_trains_against_a_frozen_teacher(teacher, tmp_path):
  teacher_dir, teacher_state = teacher
  config = load_config("mnist_distill", {"init_from.path": teacher_dir, **ONE_SAVE}, variant="tiny_distill")
  task = tasks.make_task(config)
  fresh = jax.jit(task.init)(jax.random.key(config.seed))
  state, _ = trainer.train_and_evaluate(config, str(tmp_path), task)
  for got, want in zip(jax.tree.leaves(state.extra["teacher"]["params"]), jax.tree.leaves(teacher_state.params)):
    np.testing.assert_array_equal(got, want)  # loaded from the teacher run, then bitwise unchanged.
  assert all(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(fresh.params)))
  logged = [r for r in metrics_lines(tmp_path) if "train/loss" in r]
  assert logged and all("train/distill_kl" in r and "train/label_loss" in r for r in logged)


def test_student_loss_at_alpha_one_is_the_kl_to_the_teacher(teacher):
  _, teacher_state = teacher
  config = load_config("mnist_distill", {"init_from.path": teacher[0], "distill.alpha": 1.0},
                       variant="tiny_distill")
  task = tasks.make_task(config)
  state = jax.jit(task.init)(jax.random.key(0))
  state = state.replace(extra={"teacher": {"params": teacher_state.params, "model_state": {}}})
  batch = {k: v[:32] for k, v in task.source.arrays.items()}
  _, metrics = jax.jit(task.train_step)(state, batch, jax.random.key(1))

  x = ((batch["image"] - np.asarray(task.facts["mean"])) / np.asarray(task.facts["std"])).astype(np.float32)
  student = make_classifier(config.model, 10).apply({"params": state.params}, x)
  teacher_logits = make_classifier(config.distill.teacher_model, 10).apply({"params": teacher_state.params}, x)
  temperature = config.distill.temperature
  p_t = np.exp(_log_softmax(np.asarray(teacher_logits, np.float64) / temperature))
  kl = np.sum(p_t * (np.log(p_t) - _log_softmax(np.asarray(student, np.float64) / temperature)), -1)
  np.testing.assert_allclose(metrics["loss"], temperature ** 2 * kl.mean(), rtol=1e-4)
  np.testing.assert_allclose(metrics["distill_kl"], kl.mean(), rtol=1e-4)


@pytest.mark.parametrize("overrides, mentions", [
    ({}, "config.init_from.path is empty"),
    ({"init_from.path": "/nonexistent", "init_from.map": ""}, "extra/teacher"),
    ({"init_from.path": "/nonexistent", "init_from.fresh": "extra/.*"}, "extra/teacher"),
    ({"distill.temperature": 0.0}, "temperature"),
])
def test_a_teacher_that_would_not_be_loaded_is_refused_before_compiling(data_dir, overrides, mentions):
  config = load_config("mnist_distill", overrides, variant="tiny_distill")
  with pytest.raises(UserError, match=mentions):
    tasks.make_task(config)


def test_parse_classes():
  assert classification.parse_classes("") is None
  assert classification.parse_classes("0-4") == [0, 1, 2, 3, 4]
  assert classification.parse_classes("5,6,7,8,9") == [5, 6, 7, 8, 9]
  assert classification.parse_classes(" 7, 3, 0-1") == [7, 3, 0, 1]
  for bad in ("a", "4-2", "1,1", "3", "-1", "0-4,2", "1,,2"):
    with pytest.raises(UserError, match="config.classes"):
      classification.parse_classes(bad)


def test_class_filter_relabels_and_counts_examples_after_filtering():
  config = load_config("digits_quickstart", {"classes": "7,3", "max_train_examples": 80})
  task = tasks.make_task(config)
  everything = sources.load_split("digits", "train")
  keep = np.isin(everything["label"], [7, 3])
  want_labels = np.where(everything["label"][keep] == 7, 0, 1)[:80]
  np.testing.assert_array_equal(task.source.arrays["label"], want_labels)
  np.testing.assert_array_equal(task.source.arrays["image"], everything["image"][keep][:80])
  assert task.facts["classes"] == [7, 3] and task.facts["num_classes"] == 2
  assert task.facts["num_train_examples"] == 80
  with pytest.raises(UserError, match=r"keeps \[12\]"):
    tasks.make_task(load_config("digits_quickstart", {"classes": "8,12"}))


@pytest.fixture(scope="module")
def pretrained(data_dir, tmp_path_factory):
  config = load_config("mnist_transfer", ONE_SAVE, variant="tiny")  # digits 0-4
  workdir = tmp_path_factory.mktemp("pretrain")
  state, _ = trainer.train_and_evaluate(config, str(workdir), tasks.make_task(config))
  return str(workdir), state


def _equal(a, b) -> bool:
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_linear_probe_trains_only_the_new_head(pretrained, tmp_path):
  source_dir, source = pretrained
  config = load_config("mnist_transfer", {"init_from.path": source_dir, **ONE_SAVE}, variant="tiny_probe")
  task = tasks.make_task(config)
  assert task.facts["classes"] == [5, 6, 7, 8, 9]
  fresh = jax.jit(task.init)(jax.random.key(config.seed))
  state, _ = trainer.train_and_evaluate(config, str(tmp_path), task)
  for layer in ("Conv_0", "Conv_1", "Dense_0"):
    assert _equal(state.params[layer], source.params[layer]), layer
  head = state.params["Dense_1"]
  assert not np.array_equal(head["kernel"], source.params["Dense_1"]["kernel"])
  assert not np.array_equal(head["kernel"], fresh.params["Dense_1"]["kernel"])


def test_a_checkpoint_with_other_shapes_is_refused_naming_the_leaves(pretrained):
  config = load_config("mnist_transfer", {"init_from.path": pretrained[0], "model.dense": 24},
                       variant="tiny_full")  # a wider Dense_0, and no init_from.fresh for it.
  abstract = jax.eval_shape(tasks.make_task(config).init, jax.random.key(0))  # the check needs shapes only.
  with pytest.raises(UserError, match=r"'params/Dense_0/kernel' is float32\[.*24\] here"):
    init_from.load_into(abstract, config.init_from)
