"""How good samples are, offline and reproducibly: the Frechet distance on the penultimate features of
the project's own classifier (a classification run on the same images, `config.quality.classifier_workdir`),
and that classifier's accuracy on conditionally generated images ("does a requested 7 come out as a 7?").

Summaries, at each evaluation:
  eval/frechet_distance        generated images vs the test set (num_samples of each).
  eval/frechet_distance_floor  the training set vs the test set under the same features: what a perfect
                               generator would score with this many samples (computed once).
  eval/class_accuracy          conditional models: the classifier's accuracy on the generated images
                               (classes drawn in turn), and per-class accuracy as a text table.
"""
import functools
import inspect
import math

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxai import tasks
from jaxai.core import runs, sharding
from jaxai.core.evaluators import HostEvaluator
from jaxai.core.summaries import Text
from jaxai.errors import UserError
from jaxai.models.classifiers import make_classifier
from jaxai.ops import frechet
from jaxai.ops import images as image_ops


class Classifier:
  """A trained classification run: features and predictions of float images in [0, 1], on this
  process's first device."""

  def __init__(self, workdir: str):
    config = runs.load_config(workdir, "classification")
    self.facts = runs.load_facts(workdir)
    if self.facts is None:
      raise UserError(f"{workdir} has no {runs.FACTS_FILE}: train the classifier again with this version.")
    state, self.step = runs.restore_latest_state(workdir, tasks.make_task(config, self.facts))
    self.variables = sharding.local_copy({"params": state.params, **state.model_state})
    self.image_shape = tuple(self.facts["image_shape"])
    model = make_classifier(config.model, self.facts["num_classes"])
    if "features" not in inspect.signature(type(model).__call__).parameters:
      raise UserError(f"The classifier in {workdir} is a {config.model.name!r}, which exposes no features; "
                      "train a 'cnn' or 'mlp' classifier (configs/mnist_cnn.py) for sample quality.")
    mean, std = (np.asarray(self.facts[k], np.float32) for k in ("mean", "std"))

    def features_and_logits(variables, images):  # (N, H, W, C) in [0, 1] -> (N, D), (N, K)
      x = image_ops.normalize(jnp.round(images * 255.0), mean, std)
      features = model.apply(variables, x, train=False, features=True)
      return features, model.apply(variables, x, train=False)
    self._run = sharding.on_local_device(features_and_logits)

  def __call__(self, images) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D) float64, predicted classes (N,))."""
    features, logits = jax.device_get(self._run(self.variables, images))
    return np.asarray(features, np.float64), np.argmax(logits, -1)

  def features_of(self, images_uint8: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([self(images_uint8[i:i + batch_size].astype(np.float32) / 255.0)[0]
                           for i in range(0, len(images_uint8), batch_size)])


class SampleQuality:
  """The HostEvaluator's function: reference statistics are computed at its first call."""

  def __init__(self, generator, quality_config, image_shape, load_train, load_test):
    self.generator, self.cfg, self.image_shape = generator, quality_config, tuple(image_shape)
    self._load_train, self._load_test = load_train, load_test
    self._sample = sharding.on_local_device(generator.sample)

  @functools.cached_property
  def classifier(self) -> Classifier:
    classifier = Classifier(self.cfg.classifier_workdir)
    if classifier.image_shape != self.image_shape:
      raise UserError(f"The classifier in {self.cfg.classifier_workdir} takes images {classifier.image_shape}, "
                      f"this model makes {self.image_shape}: train one on the same dataset.")
    return classifier

  @functools.cached_property
  def reference(self) -> tuple:
    """(test statistics, floor distance train vs test), on num_samples images of each."""
    n, bs = self.cfg.num_samples, self.cfg.batch_size
    test = self.classifier.features_of(self._load_test()["image"][:n], bs)
    train = self.classifier.features_of(self._load_train()["image"][:n], bs)
    if len(test) < n or len(train) < n:
      logging.warning("Sample quality: only %d test / %d train images for num_samples=%d.", len(test), len(train), n)
    stats = frechet.statistics(test)
    return stats, frechet.distance(*frechet.statistics(train), *stats)

  def __call__(self, state, step: int) -> dict:
    n, bs = self.cfg.num_samples, self.cfg.batch_size
    k = len(self.generator.class_names)
    key = jax.random.fold_in(jax.random.key(1), step)
    features, predicted, requested = [], [], []
    for i in range(math.ceil(n / bs)):
      labels = (np.arange(i * bs, (i + 1) * bs) % k).astype(np.int32)
      images = self._sample(state, jax.random.fold_in(key, i), self.generator.of_classes(labels))
      f, p = self.classifier(images)
      features.append(f), predicted.append(p), requested.append(labels)
    features, predicted, requested = (np.concatenate(x)[:n] for x in (features, predicted, requested))
    test_stats, floor = self.reference
    out = {"eval/frechet_distance": frechet.distance(*frechet.statistics(features), *test_stats),
           "eval/frechet_distance_floor": floor}
    if self.generator.conditioning != "none":
      correct = predicted == requested
      out["eval/class_accuracy"] = float(correct.mean())
      rows = [f"{name:>12s}  {correct[requested == c].mean():.3f}" for c, name in enumerate(self.generator.class_names)]
      out["class_accuracy"] = Text("class  accuracy of generated images\n" + "\n".join(rows))
    return out


def check(quality_config) -> None:
  """Bad settings are refused before anything compiles."""
  if not quality_config.classifier_workdir:
    return
  if quality_config.num_samples < 2 or quality_config.batch_size < 1:
    raise UserError("config.quality.num_samples must be >= 2 and config.quality.batch_size >= 1.")
  runs.load_config(quality_config.classifier_workdir, "classification")  # the run exists and classifies.


def evaluators(generator, config, facts, load_train, load_test) -> list:
  """[HostEvaluator] scoring samples when config.quality.classifier_workdir is set, else []."""
  check(config.quality)
  if not config.quality.classifier_workdir:
    return []
  fn = SampleQuality(generator, config.quality, facts["image_shape"], load_train, load_test)
  return [HostEvaluator(fn, every_steps=config.quality.every_steps)]
