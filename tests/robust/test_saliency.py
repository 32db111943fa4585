"""Saliency maps and their sanity checks on the shared MNIST CNN (tests/robust/conftest.py)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxai.core import summaries
from jaxai.core.state import TrainState
from jaxai.errors import UserError
from jaxai.interpret import checks, overlay, saliency
from jaxai.models.mlp import MLP
from jaxai.tasks.classification import saliency as task_saliency


def _batch(mnist_model, n=8):
  return jnp.asarray(mnist_model.images[:n]), jnp.asarray(mnist_model.labels[:n])


# Compiled once for the module (apply is static): the tests share the programs of each batch shape.
_gradient = jax.jit(saliency.vanilla_gradient, static_argnums=0)


def test_integrated_gradients_completeness(mnist_model):
  x, y = _batch(mnist_model)
  apply = mnist_model.apply

  @jax.jit
  def errors(v):  # (4 steps, 128 steps, 4 steps in chunks of 3: a lax.scan over vmapped chunks)
    ig = lambda steps, chunk=None: saliency.integrated_gradients(apply, v, x, y, steps, steps_per_batch=chunk)
    coarse, chunked = ig(4), ig(4, 3)
    error = lambda a: saliency.completeness_error(apply, v, x, y, a)
    return error(coarse), error(ig(128)), jnp.max(jnp.abs(chunked - coarse)), jnp.max(jnp.abs(coarse))
  coarse, fine, chunked_difference, scale = map(np.asarray, errors(mnist_model.variables))
  assert fine.max() < 0.01, fine  # sum of attributions = F(x) - F(black) within 1%.
  assert coarse.mean() > 3 * fine.mean() and coarse.max() > 0.01, (coarse, fine)  # too few steps: worse.
  assert chunked_difference < 1e-5 * scale  # chunking the steps changes nothing.


def test_vanilla_gradient_is_the_directional_derivative(mnist_model):
  x, y = _batch(mnist_model)
  # Jittered pixels: on exact MNIST images the black background makes max-pool ties, where the function
  # has no gradient (one-sided derivatives differ). float64: central differences good to ~1e-8.
  x = x + 0.01 * jax.random.uniform(jax.random.key(1), x.shape)
  direction = np.random.default_rng(0).normal(size=x.shape)
  direction /= np.linalg.norm(direction.reshape(8, -1), axis=1)[:, None, None, None]

  @jax.jit
  def both(v, x, direction):
    eps = 1e-5
    f = lambda x: saliency.target_logits(mnist_model.apply, v, x, y)
    finite = (f(x + eps * direction) - f(x - eps * direction)) / (2 * eps)  # (B,)
    analytic = (saliency.vanilla_gradient(mnist_model.apply, v, x, y) * direction).reshape(8, -1).sum(1)
    return analytic, finite

  with jax.enable_x64(True):
    v64 = jax.tree.map(lambda a: np.asarray(a, np.float64), mnist_model.variables)
    analytic, finite = both(v64, np.asarray(x, np.float64), direction.astype(np.float64))
  np.testing.assert_allclose(analytic, finite, rtol=1e-4, atol=1e-7)
  assert np.all(np.abs(analytic) > 1e-3)  # not a trivially passing 0 == 0.


def test_smoothgrad_without_noise_is_the_gradient(mnist_model):
  x, y = _batch(mnist_model)
  v = mnist_model.variables
  grad = _gradient(mnist_model.apply, v, x, y)
  smooth = jax.jit(lambda v, x, t, noise: saliency.smoothgrad(
      mnist_model.apply, v, x, t, jax.random.key(0), 3, noise))
  np.testing.assert_allclose(smooth(v, x, y, 0.0), grad, rtol=1e-5, atol=1e-7)
  assert not np.allclose(smooth(v, x, y, 0.2), grad, atol=1e-3)


class _Features(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.relu(nn.Conv(4, (3, 3))(x))


class _GapNet(nn.Module):
  """Conv features -> global average pool -> dense: Grad-CAM equals CAM (Zhou et al. 2016) exactly."""
  @nn.compact
  def __call__(self, x):
    return nn.Dense(3)(_Features()(x).mean(axis=(1, 2)))


def test_grad_cam_equals_cam_on_a_global_average_pooling_net():
  model = _GapNet()
  x = jax.random.uniform(jax.random.key(1), (2, 6, 6, 1))
  variables = model.init(jax.random.key(0), x)
  target = jnp.array([0, 2])
  # The default layer is the last module to return a map: the parent `_Features_0`, not its Conv_0.
  path, shape, _ = saliency.resolve_layer(model.apply, variables, x)
  assert path == ("_Features_0",) and shape == (2, 6, 6, 4)
  cam = jax.jit(lambda v, x, t: saliency.grad_cam(model.apply, v, x, t, upsample=False))(variables, x, target)
  features = _Features().apply({"params": variables["params"]["_Features_0"]}, x)  # (2, 6, 6, 4)
  kernel = variables["params"]["Dense_0"]["kernel"]  # (4, 3): d logit_k / d A[h, w, c] = kernel[c, k] / 36
  expected = jax.nn.relu(jnp.einsum("bhwc,cb->bhw", features, kernel[:, target]) / 36)
  np.testing.assert_allclose(cam, expected, rtol=1e-5, atol=1e-7)
  assert float(expected.max()) > 0


def test_grad_cam_on_the_cnn(mnist_model):
  x, y = _batch(mnist_model)
  v = mnist_model.variables
  assert [name for name, _ in saliency.feature_maps(mnist_model.apply, v, x)] == [
      "Conv_0", "Conv_1", "Conv_2", "Conv_3"]
  assert saliency.resolve_layer(mnist_model.apply, v, x)[:2] == (("Conv_3",), (8, 14, 14, 16))
  cam = jax.jit(lambda v, x, t: saliency.grad_cam(mnist_model.apply, v, x, t))(v, x, y)
  assert cam.shape == (8, 28, 28) and float(cam.min()) >= 0 and np.all(np.asarray(cam).max((1, 2)) > 0)
  shape = lambda layer: jax.eval_shape(lambda v, x, t: saliency.grad_cam(
      mnist_model.apply, v, x, t, layer, upsample=False), v, x, y).shape
  assert shape("Conv_1") == (8, 28, 28) and shape(("Conv_2",)) == (8, 14, 14)
  with pytest.raises(UserError, match="'Conv_9' is not a submodule.*Conv_3"):
    saliency.grad_cam(mnist_model.apply, v, x, y, "Conv_9")
  with pytest.raises(UserError, match="'Dense_0' outputs shape"):
    saliency.grad_cam(mnist_model.apply, v, x, y, "Dense_0")
  mlp = MLP(hidden=(16,))
  mlp_variables = mlp.init(jax.random.key(0), x)
  with pytest.raises(UserError, match="has none.*MLP"):
    saliency.grad_cam(mlp.apply, mlp_variables, x, y)


def test_rank_correlation_heatmap_and_overlay():
  a = np.array([[1.0, 2.0, 2.0, 3.0], [4.0, 3.0, 2.0, 1.0]])
  b = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
  ranks_a = np.array([0.0, 1.5, 1.5, 3.0]) - 1.5  # ties share the mean rank.
  ranks_b = np.array([0.0, 1.0, 2.0, 3.0]) - 1.5
  expected = ranks_a @ ranks_b / np.sqrt((ranks_a**2).sum() * (ranks_b**2).sum())
  attribution = np.random.default_rng(0).normal(size=(2, 5, 5, 3))
  attribution[1] = 0.0

  @jax.jit
  def compute(a, b, attribution):
    heat = saliency.heatmap(attribution)
    return (checks.rank_correlation(a, b), checks.rank_correlation(b, b ** 3), heat,
            overlay.overlay(jnp.full((2, 5, 5, 1), 0.5), heat), overlay.colormap(jnp.linspace(0, 1, 11)))
  ab, monotone, heat, rgb, colors = map(np.asarray, compute(a, b, attribution))
  np.testing.assert_allclose(ab, [expected, -1.0], rtol=1e-6)
  np.testing.assert_allclose(monotone, [1.0, 1.0], rtol=1e-6)  # a monotone transform: correlation 1.
  assert heat.shape == (2, 5, 5) and heat.min() >= 0 and heat[0].max() == 1.0
  assert np.abs(heat[1]).max() == 0.0  # an all-zero map stays zero (no division by 0).
  assert rgb.shape == (2, 5, 5, 3) and rgb.min() >= 0 and rgb.max() <= 1
  np.testing.assert_allclose(rgb[1], 0.3)  # no saliency: the dimmed grey image only.
  assert np.all(np.diff(colors.mean(-1)) > 0)  # the colormap brightens monotonically.


def test_randomization_check(mnist_model):
  x, y = _batch(mnist_model)
  v, random_v = mnist_model.variables, mnist_model.reinit(jax.random.key(1))
  apply = mnist_model.apply
  gradient = lambda v, x, t: _gradient(apply, v, x, t)
  cam = jax.jit(lambda v, x, t: saliency.grad_cam(apply, v, x, t))
  smooth = jax.jit(lambda rng: saliency.magnitude(saliency.smoothgrad(apply, v, x, y, rng, 8, 0.15)))
  check = lambda map_fn: float(checks.randomization_check(map_fn, v, random_v, x, y))
  # The contrast: the trained model's own maps under another SmoothGrad noise draw agree well, while the
  # gradient and Grad-CAM maps of a re-initialised model do not: the two methods pass the check.
  same_model = float(checks.rank_correlation(smooth(jax.random.key(0)), smooth(jax.random.key(1))).mean())
  gradient_corr, cam_corr = check(gradient), check(cam)
  assert gradient_corr < 0.3 < 0.6 < same_model and cam_corr < 0.3, (gradient_corr, cam_corr, same_model)
  # The check can fail: gradient x input stays tied to the (mostly black) input whatever the weights,
  # the failure Adebayo et al. report; the image itself as a "map" is perfectly correlated.
  assert check(lambda v, x, t: gradient(v, x, t) * x) > 0.8 and check(lambda v, x, t: x) > 0.99
  # Cascading from the top (Dropout has no variables: 6 steps): more randomized layers, lower correlation.
  layers = checks.top_level_modules(apply, v, x)
  assert layers == ["Conv_0", "Conv_1", "Conv_2", "Conv_3", "Dense_0", "Dropout_0", "Dense_1"]
  cascade = np.asarray(checks.cascading_randomization(gradient, v, random_v, x, y, layers))
  assert cascade.shape == (6,) and cascade[0] > cascade[-1] + 0.3 and cascade[-1] < 0.3, cascade
  assert np.all(np.diff(cascade) < 0.05), cascade


def test_deletion_curve(mnist_model):
  x, y = _batch(mnist_model, 64)
  v, apply = mnist_model.variables, mnist_model.apply
  maps = _gradient(apply, v, x, y)
  fractions = (0.0, 0.05, 0.1, 0.2)
  curve = jax.jit(lambda maps, rng: checks.deletion_curve(apply, v, x, y, maps, fractions, rng))
  salient, random = map(np.asarray, curve(maps, jax.random.key(0)))
  accuracy = float(np.mean(np.argmax(apply(v, x), -1) == np.asarray(y)))
  np.testing.assert_allclose([salient[0], random[0]], accuracy)  # nothing deleted yet.
  assert salient[-1] < random[-1] - 0.3 and np.all(salient[1:] < random[1:]), (salient, random)
  auc = lambda accuracy: float(checks.area_under_curve(fractions, accuracy))
  assert auc(salient) < auc(random)
  # Maps that carry no information delete like random pixels: the gap above comes from the gradient.
  noise, _ = map(np.asarray, curve(jax.random.uniform(jax.random.key(2), x.shape), jax.random.key(0)))
  assert np.all(np.abs(noise - random) < 0.1), (noise, random)
  np.testing.assert_allclose(checks.area_under_curve((0.0, 0.5, 1.0), (1.0, 0.5, 0.0)), 0.5)


def _config(**overrides):
  cfg = task_saliency.default_config()
  cfg.update(dict(num_images=3, smoothgrad_samples=2, ig_steps=4, deletion_examples=32,
                  deletion_fractions=(0.0, 0.1, 0.3), random_models=1), **overrides)
  return cfg


def _uint8(mnist_model):
  return (np.asarray(mnist_model.images) * 255).round().astype(np.uint8)


def test_evaluator_end_to_end(mnist_model):
  images = _uint8(mnist_model)
  make = lambda **kw: task_saliency.make_evaluator(_config(**kw), mnist_model.apply, mnist_model.reinit,
                                                   images, mnist_model.labels)
  state = TrainState.create(mnist_model.variables["params"], optax.sgd(0.1), model_state={})
  run = lambda evaluator: jax.jit(lambda state, rng: evaluator.fn(evaluator.view(state), rng))
  # Every method traces (shapes only: compiling all four costs ~10 s of CPU here).
  every = make(deletion_method="integrated_gradients")
  shapes = jax.eval_shape(run(every), state, jax.random.key(0))
  for method in task_saliency.METHODS:
    assert shapes[f"overlay/{method}"].shape == shapes[f"heat/{method}"].shape == (3, 28, 28, 3), method
  assert shapes["deletion_salient"].shape == shapes["deletion_random"].shape == (3,)
  # Two methods compile, run and finish.
  methods = ("gradient", "grad_cam")
  evaluator = make(methods=methods)
  result = evaluator.finish(jax.device_get(run(evaluator)(state, jax.random.key(0))), 0)
  for method in methods:  # rows: images, overlay, map (+ the re-initialised model's gradient), 2x larger.
    image = result[f"saliency/{method}"]
    rows = 4 if method == "gradient" else 3
    assert isinstance(image, summaries.Image) and image.pixels.shape == (rows * 3, 56, 56, 3), method
    assert image.grid().shape == (rows * 57 - 1, 3 * 57 - 1, 3)
  assert result["saliency/overlays"].pixels.shape == (3 * 3, 56, 56, 3)
  np.testing.assert_allclose(result["saliency/overlays"].pixels[:3, ::2, ::2, 0], images[:3, ..., 0] / 255.0,
                             atol=1e-6)  # the first row shows the images themselves.
  scalars = summaries.scalars(result)
  assert set(scalars) == {"eval/saliency_randomization_rank_corr", "eval/deletion_auc_salient",
                          "eval/deletion_auc_random"}
  assert all(np.isfinite(value) for value in scalars.values()), scalars
  assert scalars["eval/deletion_auc_salient"] < scalars["eval/deletion_auc_random"]
  assert "random" in result["saliency/deletion_curve"].text
  assert make(num_images=0) is None


def test_evaluator_config_errors(mnist_model):
  images, labels = _uint8(mnist_model), mnist_model.labels
  make = lambda apply=mnist_model.apply, reinit=mnist_model.reinit, **kw: task_saliency.make_evaluator(
      _config(**kw), apply, reinit, images, labels)
  with pytest.raises(UserError, match="'saliency_mapz'.*unknown"):
    make(methods=("gradient", "saliency_mapz"))
  with pytest.raises(UserError, match="num_images=300 is more than the 256"):
    make(num_images=300)
  with pytest.raises(UserError, match="deletion_fractions"):
    make(deletion_fractions=(0.5, 0.1))
  with pytest.raises(UserError, match="gradcam_layer='Conv_7'.*Conv_3"):
    make(gradcam_layer="Conv_7")
  mlp = MLP(hidden=(16,))
  with pytest.raises(UserError, match="grad_cam.*has none"):
    make(apply=mlp.apply, reinit=lambda rng: mlp.init(rng, jnp.zeros((1, 28, 28, 1))))
  assert make(methods=("grad_cam",), gradcam_layer="Conv_2") is not None
