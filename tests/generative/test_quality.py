"""Sample quality: the Frechet distance (against its closed form for Gaussians) and the evaluator
that scores a generator with the features and predictions of a trained classification run."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxai import tasks
from jaxai.core import trainer
from jaxai.errors import UserError
from jaxai.ops import frechet
from jaxai.tasks.generative import common, quality
from tests.helpers import load_config


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(3000, 8))
  assert frechet.distance_between(x, x) == pytest.approx(0.0, abs=1e-8)
  shifted = [frechet.distance_between(x, x + s) for s in (0.1, 0.5, 1.0)]
  assert shifted == sorted(shifted) and shifted[0] > 0
  # A shift by s in every one of 8 dimensions moves the means by 8 s^2 and nothing else.
  assert shifted[-1] == pytest.approx(8.0, rel=1e-6)


def test_frechet_distance_matches_the_closed_form_for_diagonal_gaussians():
  """For diagonal covariances d^2 = |mu1 - mu2|^2 + sum (s1 - s2)^2 (s: standard deviations)."""
  mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
  s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([2.0, 2.0, 1.5])
  expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
  assert frechet.distance(mu1, np.diag(s1 ** 2), mu2, np.diag(s2 ** 2)) == pytest.approx(expected, rel=1e-9)
  with pytest.raises(ValueError, match="differ in shape"):
    frechet.distance(mu1, np.diag(s1), mu2[:2], np.diag(s2[:2]))


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory, data_dir):
  workdir = tmp_path_factory.mktemp("classifier")
  config = load_config("mnist_cnn")
  trainer.train_and_evaluate(config, str(workdir), tasks.make_task(config))
  return str(workdir)


def lookup_generator(images: np.ndarray, labels: np.ndarray, num_classes: int) -> common.Generator:
  """A 'generator' that returns real images of the requested class (drawn with the rng)."""
  by_class = [jnp.asarray(images[labels == c].astype(np.float32) / 255.0) for c in range(num_classes)]
  pool = min(len(b) for b in by_class)
  table = jnp.stack([b[:pool] for b in by_class])  # (K, pool, H, W, C)

  def sample(state, rng, condition):
    return table[condition, jax.random.randint(rng, condition.shape, 0, pool)]
  names = common.class_names("mnist", num_classes)
  return common.Generator(sample, "class", names, lambda labels: labels, common.parse_class(names))


def quality_config(workdir, num_samples=300):
  return ml_collections.ConfigDict(dict(classifier_workdir=workdir, num_samples=num_samples, batch_size=100,
                                        every_steps=0))


def test_sample_quality_scores_real_images_near_the_floor_and_noise_far_above(classifier_run):
  config = load_config("mnist_cnn", {"max_train_examples": 600, "max_eval_examples": 300})
  train, test = common.load_split(config, "train"), common.load_split(config, "test")
  real = lookup_generator(train["image"], train["label"], 10)
  score = quality.SampleQuality(real, quality_config(classifier_run), (28, 28, 1), lambda: train, lambda: test)
  result = score(None, step=0)
  floor = result["eval/frechet_distance_floor"]
  assert floor > 0 and result["eval/frechet_distance"] < 2 * floor + 1.0

  # The class accuracy is the classifier's own accuracy on the images it was given, per requested class.
  features, predicted = score.classifier(np.asarray(jax.jit(real.sample)(None, jax.random.key(7),
                                                                         jnp.arange(300) % 10)))
  assert features.shape == (300, 32)  # configs/mnist_cnn.py:tiny has a 32-wide dense layer.
  assert 0.0 <= result["eval/class_accuracy"] <= 1.0 and "class_accuracy" in result

  noise = common.Generator(lambda state, rng, c: jax.random.uniform(rng, c.shape + (28, 28, 1)), "none",
                           real.class_names, lambda labels: labels, common.unconditional_parse)
  noisy = quality.SampleQuality(noise, quality_config(classifier_run), (28, 28, 1), lambda: train, lambda: test)
  assert noisy(None, step=0)["eval/frechet_distance"] > 5 * result["eval/frechet_distance"]
  assert "eval/class_accuracy" not in noisy(None, step=0)


def test_quality_settings_are_checked_before_anything_compiles(tmp_path, classifier_run):
  with pytest.raises(UserError, match="config.json does not exist"):
    quality.check(quality_config(str(tmp_path)))
  with pytest.raises(UserError, match="num_samples"):
    quality.check(quality_config(classifier_run, num_samples=1))
  real = common.Generator(lambda s, r, c: jnp.zeros(c.shape + (32, 32, 3)), "none", ("a",), lambda x: x,
                          common.unconditional_parse)
  score = quality.SampleQuality(real, quality_config(classifier_run), (32, 32, 3), None, None)
  with pytest.raises(UserError, match="takes images"):
    score.classifier


def test_class_names_and_parsing():
  names = common.class_names("fashion_mnist:3.0.1", 10)
  assert names[9] == "ankle boot"
  parse = common.parse_class(names)
  assert parse("9") == parse("Ankle Boot") == 9
  with pytest.raises(UserError, match="Unknown class 'boot'"):
    parse("boot")
  with pytest.raises(UserError, match="unconditional"):
    common.unconditional_parse("seven")
  assert common.class_names("synthetic:8x8x1:3", 3) == ("class 0", "class 1", "class 2")
