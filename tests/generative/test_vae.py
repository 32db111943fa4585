"""VAE / IWAE / conditional VAE: the bounds against a direct computation, their order, the chunked NLL,
config errors, and one tiny trainer run with its pictures."""
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image as PILImage

from jaxai.core import trainer
from jaxai.errors import UserError
from jaxai.models.vae import VAE
from jaxai.tasks.generative import vae
from tests.helpers import load_config, metrics_lines

D, L = 6, 3  # pixels, latents of the tiny model.


@pytest.fixture(scope="module")
def tiny():
  model = VAE(num_pixels=D, hidden=(5,), latents=L)
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, D)))["params"]
  x = (np.random.default_rng(0).random((4, D)) < 0.5).astype(np.float32)  # (B, D) binary
  return model, params, x


def test_shapes():
  model = VAE(num_pixels=D, hidden=(7, 5), latents=L, num_classes=3)
  y = jnp.array([0, 2])
  params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((2, D)), y)["params"]

  @jax.jit
  def outputs(params):
    encode = lambda x, y: model.apply({"params": params}, x, y, method=VAE.encode)
    decode = lambda z, y: model.apply({"params": params}, z, y, method=VAE.decode)
    log_w = vae.log_weights(model, params, jnp.ones((2, D)), y, jnp.zeros((5, 2, L)))
    return (encode(jnp.zeros((2, D)), y), decode(jnp.zeros((4, 2, L)), y), log_w, vae.elbo(log_w),
            vae.iwae_bound(log_w), encode(jnp.zeros((2, D)), jnp.array([1, 1]))[0],
            decode(jnp.zeros((2, L)), jnp.array([1, 1])), decode(jnp.zeros((2, L)), y))

  (mean, log_std), logits, log_w, elbo, iwae, other_mean, other_logits, same_z_logits = outputs(params)
  assert mean.shape == log_std.shape == (2, L)
  assert logits.shape == (4, 2, D) and log_w.shape == (5, 2) and elbo.shape == iwae.shape == (2,)
  # The label matters: encoder and decoder both see it.
  assert not np.allclose(mean, other_mean) and not np.allclose(other_logits, same_z_logits)


def _numpy_mlp(layers, x):
  for i, layer in enumerate(layers):
    x = x @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)
    if i < len(layers) - 1:
      x = np.tanh(x)
  return x


def test_elbo_equals_a_direct_monte_carlo_computation(tiny):
  model, params, x = tiny
  eps = np.random.default_rng(1).normal(size=(3, len(x), L))
  enc = [params["encoder"][f"Dense_{i}"] for i in range(2)]
  dec = [params["decoder"][f"Dense_{i}"] for i in range(2)]
  h = _numpy_mlp(enc, x.astype(np.float64))
  mean, log_std = h[:, :L], h[:, L:]
  z = mean + np.exp(log_std) * eps                                   # (K, B, L)
  logits = _numpy_mlp(dec, z)                                        # (K, B, D)
  p = 1 / (1 + np.exp(-logits))
  log_px = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), -1)       # log p(x|z)
  log_pz = np.sum(-0.5 * z ** 2 - 0.5 * math.log(2 * math.pi), -1)   # log N(z; 0, I)
  log_qz = np.sum(-0.5 * ((z - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi), -1)
  direct = log_px + log_pz - log_qz
  log_w = jax.jit(vae.log_weights, static_argnums=0)(model, params, jnp.asarray(x), None,
                                                     jnp.asarray(eps, jnp.float32))
  np.testing.assert_allclose(log_w, direct, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(vae.elbo(log_w), direct.mean(0), rtol=1e-5, atol=1e-4)
  # Stable for large logits, where log(sigmoid) in floats would give -inf.
  big = jnp.array([[60.0, -60.0]])
  np.testing.assert_allclose(vae.bernoulli_log_prob(big, jnp.array([[0.0, 1.0]])), [-120.0], rtol=1e-6)


def test_iwae_bound_is_above_the_elbo_and_rises_with_k(tiny):
  model, params, x = tiny
  draws = 400
  eps = jax.random.normal(jax.random.key(2), (draws, 50, len(x), L))

  @jax.jit
  def bounds(eps):
    log_w = jax.vmap(lambda e: vae.log_weights(model, params, jnp.asarray(x), None, e))(eps)  # (draws, 50, B)
    iwae = [jnp.mean(jax.vmap(vae.iwae_bound)(log_w[:, :k])) for k in (1, 5, 50)]
    return vae.iwae_bound(log_w[0, :1]), vae.elbo(log_w[0, :1]), iwae, jnp.mean(jax.vmap(vae.elbo)(log_w))

  iwae_k1, elbo_k1, iwae, elbo = bounds(eps)
  # k = 1: the same number as the ELBO with the same noise.
  np.testing.assert_allclose(iwae_k1, elbo_k1, rtol=1e-6)
  means, elbo = dict(zip((1, 5, 50), map(float, iwae))), float(elbo)
  assert means[1] == pytest.approx(elbo, abs=0.05)  # both estimate the ELBO.
  assert elbo < means[5] - 0.01 < means[50] - 0.02, (elbo, means)


def test_chunked_importance_nll_equals_one_logsumexp(tiny):
  model, params, x = tiny
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(3), i))(jnp.arange(len(x)))
  k, chunk = 10, 4  # three chunks, the last one half-used.

  @jax.jit
  def both(keys):
    nll = vae.importance_nll(model, params, jnp.asarray(x), None, keys, k, chunk)
    draw = lambda c: jax.vmap(lambda key: jax.random.normal(jax.random.fold_in(key, c), (chunk, L)))(keys)
    eps = jnp.concatenate([draw(c) for c in range(3)], 1)[:, :k]     # (B, K, L): the same draws.
    return nll, vae.log_weights(model, params, jnp.asarray(x), None, jnp.swapaxes(eps, 0, 1))

  nll, log_w = both(keys)
  np.testing.assert_allclose(nll, -vae.iwae_bound(log_w), rtol=1e-5)
  assert np.all(np.asarray(nll) <= -np.asarray(vae.elbo(log_w)) + 1e-4)  # Jensen on the same draws.


def test_static_binarization_is_fixed_and_unbiased(data_dir):
  pixels = np.full((200, 28, 28, 1), 64, np.uint8)
  a, b = vae.binarize_static(pixels, [0, 1]), vae.binarize_static(pixels, [0, 1])
  np.testing.assert_array_equal(a, b)
  assert set(np.unique(a)) == {0, 1}
  assert a.mean() == pytest.approx(64 / 255, abs=0.01)
  assert not np.array_equal(a, vae.binarize_static(pixels, [0, 0]))
  # The task's training images: grey by default (binarized in the step), {0, 255} once when static.
  config = load_config("mnist_vae")
  dynamic = vae.make_task(config).source.arrays["image"]
  config.vae.binarization = "static"
  static = [vae.make_task(config).source.arrays["image"] for _ in range(2)]
  assert len(np.unique(dynamic)) > 2 and set(np.unique(static[0])) == {0, 255}
  np.testing.assert_array_equal(*static)
  assert static[0].mean() / 255 == pytest.approx(dynamic.mean() / 255, abs=0.01)


@pytest.mark.parametrize("key, value, words", [
    ("vae.objective", "kl", "objective"), ("vae.num_samples", 0, "num_samples"),
    ("vae.binarization", "otsu", "binarization"), ("vae.eval_importance_samples", 0, "eval_importance"),
    ("model.activation", "gelu6", "activation"), ("vae.nll_every_steps", -2, "nll_every_steps")])
def test_bad_config_is_a_user_error(key, value, words):
  config = load_config("mnist_vae", {key: value})
  config.data_dir = "/nonexistent"  # refused before any data is read.
  with pytest.raises(UserError, match=words):
    vae.make_task(config)


def test_tiny_run_writes_pictures_and_a_finite_nll(tmp_path, data_dir):
  config = load_config("mnist_iwae", {"num_train_steps": 6, "checkpoint_every_steps": 0})
  config.async_checkpointing = False
  task = vae.make_task(config)
  assert "binarized dynamically" in task.summary and "IWAE k=5" in task.summary
  _, results = trainer.train_and_evaluate(config, str(tmp_path), task)
  assert np.isfinite(results["eval/nll"]) and results["eval/nll_importance_samples"] == 16
  assert results["eval/nll_examples"] == results["eval/examples"] == 200
  # -ELBO bounds the NLL from above (in expectation; the 16-sample estimate is well below it here).
  assert results["eval/neg_elbo"] > results["eval/nll"] > 0
  parts = results["eval/reconstruction"] + results["eval/kl"]
  assert results["eval/neg_elbo"] == pytest.approx(parts, rel=1e-5)
  assert any("train/loss" in r for r in metrics_lines(tmp_path))
  sizes = {}
  for tag in ("samples", "reconstructions", "interpolations"):
    with PILImage.open(Path(tmp_path) / tag / "step_6.png") as png:
      sizes[tag] = png.size
  assert sizes["samples"] == (8 * 29 - 1, 2 * 29 - 1)                  # rows=2 x 8 columns.
  assert sizes["reconstructions"] == (8 * 29 - 1, 4 * 29 - 1)          # 16 inputs + 16 reconstructions.
  assert sizes["interpolations"] == ((4 + 2) * 29 - 1, 2 * 29 - 1)     # 2 pairs, 4 steps + both ends.
  # Rebuilt from its facts (what jaxai.generate does): the same state layout.
  again = vae.make_task(config, task.facts)
  assert jax.tree.structure(jax.eval_shape(again.init, jax.random.key(0))) == \
      jax.tree.structure(jax.eval_shape(task.init, jax.random.key(0)))


def test_conditional_generator_from_facts():
  config = load_config("mnist_vae", variant="conditional_tiny")
  facts = {"image_shape": [28, 28, 1], "num_classes": 10, "class_names": [str(i) for i in range(10)],
           "num_train_examples": 512, "num_eval_examples": 200}
  config.data_dir = "/nonexistent"  # facts: no data is read.
  task = vae.make_task(config, facts)
  generator = vae.make_generator(config, facts)
  assert generator.conditioning == "class" and int(generator.parse("7")) == 7
  state = jax.jit(task.init)(jax.random.key(0))
  images = jax.jit(generator.sample)(state, jax.random.key(1), generator.of_classes(np.array([3, 3, 5])))
  assert images.shape == (3, 28, 28, 1) and 0 <= float(images.min()) <= float(images.max()) <= 1
  # A train step of the cVAE reads the labels: other labels, another loss.
  batch = {"image": np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1)).astype(np.uint8),
           "label": np.array([0, 1, 2, 3], np.int32)}
  step = jax.jit(task.train_step)
  _, metrics = step(state, batch, jax.random.key(2))
  _, other = step(state, {**batch, "label": np.array([9, 9, 9, 9], np.int32)}, jax.random.key(2))
  assert np.isfinite(metrics["loss"]) and metrics["loss"] != other["loss"]
  unconditional = vae.make_generator(load_config("mnist_vae"), facts)
  assert unconditional.conditioning == "none"
  with pytest.raises(UserError):
    unconditional.parse("7")
