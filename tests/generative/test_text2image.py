"""Text to image: the quantizer and codebook updates, the captions and prompts, a prior that conditions on
its prompt, and one tiny training run whose checkpoint samples from a typed prompt on its own."""
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxai.core import runs, trainer
from jaxai.errors import UserError
from jaxai.models import vqvae
from jaxai.tasks.generative import captions, text2image

from tests.helpers import load_config, metrics_lines


def test_quantize_picks_the_nearest_code_and_codes_round_trip():
  rng = np.random.default_rng(0)
  codebook = rng.normal(size=(16, 4)).astype(np.float32)
  z = rng.normal(size=(3, 5, 5, 4)).astype(np.float32)
  z_q, codes = jax.device_get(vqvae.quantize(jnp.asarray(z), jnp.asarray(codebook)))
  brute = np.argmin(((z[..., None, :] - codebook) ** 2).sum(-1), -1)  # (3, 5, 5)
  np.testing.assert_array_equal(codes, brute)
  np.testing.assert_allclose(z_q, codebook[brute], rtol=1e-6)
  # Vectors near their code (closer than half the smallest distance between codes) re-encode to it.
  gaps = np.sqrt(((codebook[:, None] - codebook[None]) ** 2).sum(-1)) + np.eye(16) * 1e9
  targets = rng.integers(0, 16, (3, 7, 7))
  noise = rng.normal(size=(3, 7, 7, 4)) * gaps.min() / 8 / 4
  _, again = vqvae.quantize(jnp.asarray(codebook[targets] + noise, jnp.float32), jnp.asarray(codebook))
  np.testing.assert_array_equal(np.asarray(again), targets)


def test_ema_codebook_starts_at_the_means_and_dead_codes_restart_from_the_batch():
  k, d = 4, 2
  stats = {"embedding": jnp.full((k, d), 9.0), "cluster_size": jnp.zeros(k), "embed_sum": jnp.zeros((k, d))}
  z = jnp.array([[0.0, 0.0], [2.0, 2.0], [5.0, 1.0]])
  codes = jnp.array([0, 0, 1])
  updated = vqvae.ema_update(stats, z, codes, decay=0.99, eps=0.0)
  np.testing.assert_allclose(updated["embedding"][:2], [[1.0, 1.0], [5.0, 1.0]], rtol=1e-5)
  np.testing.assert_allclose(updated["cluster_size"], [0.02, 0.01, 0.0, 0.0], rtol=1e-5)
  restarted = vqvae.restart_dead_codes(updated, z, jax.random.key(0), threshold=0.015)
  dead = np.array([False, True, True, True])  # code 1's 0.01 vectors per batch are below 0.015 too.
  emb = np.asarray(restarted["embedding"])
  np.testing.assert_allclose(emb[0], [1.0, 1.0], rtol=1e-5)  # the live code keeps its vector.
  assert all(any(np.allclose(e, v) for v in np.asarray(z)) for e in emb[dead])  # the dead take batch vectors.
  np.testing.assert_allclose(restarted["cluster_size"], np.where(dead, 1.0, 0.02), rtol=1e-5)


def test_vqvae_shapes_and_perplexity():
  model = vqvae.VQVAE(num_codes=8, code_dim=4, features=(4, 8))
  x = jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)
  variables = jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only: nothing compiles.
  assert set(variables) == {"params", "codebook"} and variables["codebook"]["embedding"].shape == (8, 4)
  out = jax.eval_shape(model.apply, variables, x)
  assert out["logits"].shape == (2, 28, 28, 1) and out["z_e"].shape == out["z_q"].shape == (2, 7, 7, 4)
  assert out["codes"].shape == (2, 7, 7) and out["codes"].dtype == jnp.int32
  decode = lambda v, c: model.apply(v, c, method="decode")
  assert jax.eval_shape(decode, variables, out["codes"]).shape == x.shape
  assert float(vqvae.perplexity(jnp.zeros((2, 7, 7), jnp.int32), 8)) == pytest.approx(1.0)
  assert float(vqvae.perplexity(jnp.arange(8).reshape(1, 8), 8)) == pytest.approx(8.0, rel=1e-4)
  half = vqvae.perplexity(jnp.arange(8).reshape(2, 4), 8, weights=jnp.array([1.0, 0.0]))  # row 2 masked out.
  assert float(half) == pytest.approx(4.0, rel=1e-4)


def test_captions_and_prompts():
  mnist, fashion = captions.Captions("mnist:3.0.1"), captions.Captions("fashion_mnist")
  assert mnist.text(7) == "a handwritten seven" and mnist.text(8, 2) == "a drawing of an eight"
  assert mnist.text(1, 2) == "a drawing of a one" and fashion.text(9, 1) == "an ankle boot"
  row = mnist.caption_tokens(7, 0)
  assert row.shape == (captions.CAPTION_LENGTH,) and row[0] == captions.BOS and row[-1] == captions.PAD
  np.testing.assert_array_equal(mnist.encode_prompt("  A Handwritten SEVEN "), row)
  assert fashion.decode(fashion.encode_prompt("a photo of an ankle boot")) == "a photo of an ankle boot"
  table = fashion.table()
  assert table.shape == (10, fashion.num_templates, captions.CAPTION_LENGTH)
  assert len({tuple(r) for r in table.reshape(-1, table.shape[-1])}) == table.shape[0] * table.shape[1]
  with pytest.raises(UserError, match=r"'purple', 'cat'.*vocabulary is: .*handwritten.*seven"):
    mnist.encode_prompt("a purple seven cat")
  with pytest.raises(UserError, match="empty"):
    mnist.encode_prompt("   ")
  with pytest.raises(UserError, match="at most"):
    mnist.encode_prompt("a " * captions.CAPTION_LENGTH)
  with pytest.raises(UserError, match="mnist or fashion_mnist"):
    captions.Captions("cifar10")


def test_config_variants():
  for variant in ("", "tiny", "fashion", "fashion_tiny"):
    config = load_config("mnist_text2image", variant=variant)
    assert config.task == "text2image" and ("fashion" in config.dataset) == variant.startswith("fashion")
  with pytest.raises(ValueError, match="fashion_tiny"):
    load_config("mnist_text2image", variant="huge")
  with pytest.raises(UserError, match="prior_start_step"):
    text2image.make_task(load_config("mnist_text2image", {"prior_start_step": 8}), FACTS)


FACTS = {"image_shape": [28, 28, 1], "num_classes": 10, "class_names": list(captions.CLASS_NAMES["mnist"]),
         "num_train_examples": 256, "num_eval_examples": 200, "vocabulary": list(captions.VOCABULARY),
         "caption_length": captions.CAPTION_LENGTH}


def fit_prior(m, prompts, codes, steps=80):
  """The prior alone, fit to one code grid per prompt: (params, losses (steps,))."""
  params = m.prior.init(jax.random.key(0), m.sequence(prompts, codes)[:, :-1])["params"]
  tx = optax.adam(1e-2)

  @jax.jit
  def fit(params):
    def step(carry, _):
      params, opt = carry
      loss, grads = jax.value_and_grad(lambda p: m.prior_loss(p, prompts, codes).mean())(params)
      updates, opt = tx.update(grads, opt, params)
      return (optax.apply_updates(params, updates), opt), loss
    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    return params, losses
  return fit(params)


def test_tiny_run_samples_from_its_checkpoint_and_conditions_on_the_prompt(data_dir, tmp_path):
  config = load_config("mnist_text2image")
  config.async_checkpointing = False
  trainer.train_and_evaluate(config, str(tmp_path), text2image.make_task(config))
  assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_8.png"]
  assert (tmp_path / "reconstructions" / "step_8.png").is_file()
  records = metrics_lines(tmp_path)
  last = records[-1]
  for key in ("eval/tokenizer/recon_loss", "eval/tokenizer/perplexity", "eval/prior/loss"):
    assert math.isfinite(last[key]), key
  assert 1.0 <= last["eval/tokenizer/perplexity"] <= config.tokenizer.num_codes
  assert 0 < last["eval/prior/loss"] < 2 * math.log(config.tokenizer.num_codes)
  train = [r for r in records if "train/prior/loss" in r]
  assert train and all(math.isfinite(r["train/loss"]) for r in train)
  # The prior's rate is zero for prior_start_step=2 steps and its 2-step warmup starts after them: steps
  # 0-3 average 1/8 of the peak (started at once, ~0.6 of it).
  assert config.prior_start_step == 2 and config.prior.optimizer.warmup_steps == 2
  assert train[0]["train/prior/learning_rate"] == pytest.approx(config.prior.optimizer.learning_rate / 8)

  # The run alone (config.json, facts.json, a checkpoint) rebuilds the generator, as jaxai.generate does.
  saved = runs.load_config(str(tmp_path), "text2image", text2image.default_config())
  facts = json.loads((tmp_path / runs.FACTS_FILE).read_text())
  state, step = runs.restore_latest_state(str(tmp_path), text2image.make_task(saved, facts))
  generator = text2image.make_generator(saved, facts)
  with pytest.raises(UserError, match="'seventeen'"):
    generator.parse("a handwritten seventeen")

  # Conditioning: a prior overfit on two captions with different code grids (it cannot get below
  # ~log 2 nats per code without reading the caption) draws each prompt's own grid.
  m = text2image.Models(saved, facts)
  texts = ("a handwritten three", "a handwritten eight")
  prompts = jnp.asarray(np.stack([generator.parse(t) for t in texts]))
  codes = jnp.asarray(np.random.default_rng(0).integers(0, m.num_codes, (2,) + m.grid), jnp.int32)
  params, losses = fit_prior(m, prompts, codes)
  assert float(losses[-1]) < 0.05 < float(losses[0])
  state = state.replace(params={**state.params, "prior": params})
  condition = np.repeat(np.asarray(prompts), 2, axis=0)  # (4, L): two samples of each prompt.
  images = np.asarray(jax.jit(generator.sample)(state, jax.random.key(1), condition))
  assert step == 8 and images.shape == (4, 28, 28, 1) and images.min() >= 0.0 and images.max() <= 1.0
  same, other = np.abs(images[0] - images[1]).mean(), np.abs(images[0] - images[2]).mean()
  assert other > 3 * same and other > 1e-3, (same, other)
