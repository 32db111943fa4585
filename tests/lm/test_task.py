"""The lm task: training windows, gradient accumulation, FLOPs per step, overfitting a short text,
building from facts without data, training and sampling the LSTM, resuming bitwise."""
import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxai import sample, tasks
from jaxai.core import trainer
from jaxai.data import text
from jaxai.data.text import CharVocab
from jaxai.errors import UserError
from jaxai.lm import generate
from jaxai.models import gpt
from jaxai.tasks import lm
from tests.helpers import leaves_with_paths, load_config, metrics_lines, restore_state


def test_training_windows_depend_only_on_seed_and_step():
  tokens = {"tokens": np.arange(1000, dtype=np.int32)}
  a = lm.window_source(tokens, block_size=16, batch_size=8, seed=3)
  b = lm.window_source(tokens, block_size=16, batch_size=8, seed=3)
  for step in (7, 0, 7):  # any order: nothing depends on what was read before.
    np.testing.assert_array_equal(a.batch(step)["inputs"], b.batch(step)["inputs"])
  assert not np.array_equal(a.batch(0)["inputs"], a.batch(1)["inputs"])
  batch = a.batch(5)
  assert batch["inputs"].shape == batch["targets"].shape == (8, 16)
  np.testing.assert_array_equal(batch["targets"][:, :-1], batch["inputs"][:, 1:])  # shifted by one.
  np.testing.assert_array_equal(batch["inputs"][:, 0] + 1, batch["targets"][:, 0])
  # nanoGPT's draw (and this project's before the core drew them): the figures and resumes hold.
  starts = np.random.default_rng([3, 5]).integers(0, 1000 - 16, 8)
  np.testing.assert_array_equal(batch["inputs"][:, 0], starts)
  # Two processes supply the two halves of the same global batch.
  halves = [lm.window_source(tokens, 16, 8, 3, process_index=i, process_count=2).batch(5)["inputs"]
            for i in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves), batch["inputs"])
  with pytest.raises(UserError, match="too few for windows of block_size=16"):
    text.num_train_windows(17, block_size=16)


def test_gradient_accumulation_equals_one_big_batch():
  config = load_config("shakespeare_char_gpt", {"model.dropout_rate": 0.0})
  one = tasks.make_task(config)
  config.grad_accum_steps = 4
  four = tasks.make_task(config)
  state = jax.jit(one.init)(jax.random.key(0))
  batch = one.source.batch(0)
  (s1, m1), (s4, m4) = (jax.jit(t.train_step)(state, batch, jax.random.key(1)) for t in (one, four))
  np.testing.assert_allclose(m4["loss"], m1["loss"], rtol=1e-5)
  np.testing.assert_allclose(m4["grad_norm"], m1["grad_norm"], rtol=1e-4)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), s4.params, s1.params)
  assert int(s4.step) == 1  # one optimizer update per train step, however many microbatches.


def test_batch_must_split_into_microbatches():
  with pytest.raises(UserError, match="grad_accum_steps=3"):
    tasks.make_task(load_config("shakespeare_char_gpt", {"grad_accum_steps": 3}))


def test_flops_per_step_is_nanogpt_estimate():
  """6 FLOPs per matmul weight per token + 12 * layers * T * D for attention (nanoGPT's estimate_mfu)."""
  config = load_config("shakespeare_char_gpt", variant="nanogpt_cpu")
  task = tasks.make_task(config)
  d, layers, t, v = 128, 4, 64, 65
  weights = layers * (12 * d * d + 2 * d) + d + v * d  # blocks (qkv, proj, mlp, 2 norms), ln_f, tied wte.
  assert task.units_per_step == {"tokens": 12 * 64, "model_flops": (6 * weights + 12 * layers * t * d) * t * 12}


def test_tiny_gpt_overfits_a_short_text():
  text = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
  vocab = CharVocab.from_text(text)
  ids = vocab.encode(text)
  block = 32
  model = gpt.GPT(vocab_size=vocab.size, block_size=block, num_layers=2, num_heads=2, embed_dim=64)
  starts = np.arange(len(ids) - block)
  x = jnp.asarray(ids[starts[:, None] + np.arange(block)])      # (N, block) every window.
  y = jnp.asarray(ids[starts[:, None] + np.arange(block) + 1])
  params = jax.jit(model.init)(jax.random.key(0), x[:1])["params"]
  tx = optax.adam(5e-3)

  @jax.jit
  def train(params):
    def step(carry, _):
      params, opt = carry
      loss_fn = lambda p: optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, x), y).mean()
      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt = tx.update(grads, opt, params)
      return (optax.apply_updates(params, updates), opt), loss
    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, length=150)
    return params, losses

  params, losses = train(params)
  assert losses[0] > 2.5 and losses[-1] < 0.1, (losses[0], losses[-1])
  # Greedy generation from the first characters now recites the text.
  prompt = text[:8]
  out = generate.Sampler(model).generate(params, vocab.encode(prompt), block - 8, temperature=0.0)
  assert prompt + vocab.decode(out[0]) == text[:block]


def test_task_from_facts_reads_no_text(monkeypatch):
  """A saved run's facts rebuild the same state layout; the text is read only when training asks."""
  config = load_config("shakespeare_char_gpt")
  from_data = tasks.make_task(config)
  assert from_data.facts == {"vocab": CharVocab.from_text(text.load_text(
      "tiny_shakespeare", "train", config.data_dir, download=False)).chars}

  def unreachable(*args, **kwargs):
    raise AssertionError("the text was read")
  monkeypatch.setattr(text, "load_text", unreachable)
  from_facts = lm.make_task(config, from_data.facts)
  shapes = lambda task: jax.tree.map(lambda x: (x.shape, x.dtype), jax.eval_shape(task.init, jax.random.key(0)))
  assert shapes(from_facts) == shapes(from_data)
  assert from_facts.units_per_step == from_data.units_per_step
  with pytest.raises(AssertionError, match="the text was read"):
    from_facts.source.batch(0)
  with pytest.raises(UserError, match="no 'vocab'"):
    lm.make_task(config, {})


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory):
  """The tiny char-rnn trained in-process, evaluated (and sampled) after its last step only."""
  config = load_config("shakespeare_char_lstm", {"eval_every_steps": 0})
  workdir = tmp_path_factory.mktemp("lstm")
  task = tasks.make_task(config)
  _, results = trainer.train_and_evaluate(config, str(workdir), task)
  return config, task, workdir, results


def test_tiny_lstm_trains_and_samples(lstm_run):
  _, _, workdir, _ = lstm_run
  evals = [r for r in metrics_lines(workdir) if "eval/loss" in r]
  assert [r["step"] for r in evals] == [20] and math.isfinite(evals[0]["eval/loss"])
  assert (workdir / "samples" / "step_20.txt").exists()
  texts = sample.sample(str(workdir), "JULIET:", num_chars=30, num_samples=2)
  assert len(texts) == 2 and all(t.startswith("JULIET:") and len(t) == 7 + 30 for t in texts)


def test_resume_after_interruption_is_bitwise(lstm_run, tmp_path):
  """A run stopped by an exception after its step-10 checkpoint, then restarted, ends as an uninterrupted run."""
  config, task, uninterrupted_dir, uninterrupted = lstm_run

  class Interrupted(Exception):
    pass

  @dataclasses.dataclass
  class FailsAt:
    source: object
    step: int

    def open(self, placement, rng):
      self.source.open(placement, rng)

    def rows(self, step, state):
      if step == self.step:
        raise Interrupted
      return self.source.rows(step, state)

    def position(self, step):
      return self.source.position(step)

  with pytest.raises(Interrupted):
    trainer.train_and_evaluate(config, str(tmp_path / "resumed"),
                               dataclasses.replace(task, source=FailsAt(task.source, 14)))
  _, resumed = trainer.train_and_evaluate(config, str(tmp_path / "resumed"), task)
  # It resumed from step 10: steps 5 and 10 were logged once, by the interrupted run.
  assert [r["step"] for r in metrics_lines(tmp_path / "resumed") if "train/loss" in r] == [5, 10, 15, 20]
  assert resumed["eval/loss"] == uninterrupted["eval/loss"]
  want = leaves_with_paths(restore_state(uninterrupted_dir, task))
  got = leaves_with_paths(restore_state(tmp_path / "resumed", task))
  assert int(got[".step"]) == config.num_train_steps
  assert all(np.array_equal(want[k], got[k]) for k in want)
  assert (tmp_path / "resumed" / "samples" / "step_20.txt").read_text() == \
      (uninterrupted_dir / "samples" / "step_20.txt").read_text()


@pytest.mark.parametrize("variant, millions", [("nanogpt_cpu", 0.80), ("nanogpt_gpu", 10.65)])
def test_nanogpt_variants_have_nanogpts_parameter_counts(variant, millions):
  """nanoGPT prints 'number of parameters' without the position embeddings: 0.80M and 10.65M."""
  config = load_config("shakespeare_char_gpt", variant=variant)
  model = lm.make_model(config, vocab_size=65)
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, config.block_size), jnp.int32))["params"]
  count = sum(x.size for x in jax.tree.leaves(params)) - params["wpe"].size
  assert round(count / 1e6, 2) == millions


@pytest.mark.parametrize("name, variants", [("shakespeare_char_gpt", ["", "nanogpt_cpu", "nanogpt_gpu", "tiny"]),
                                            ("shakespeare_char_lstm", ["", "tiny"])])
def test_every_variant_passes_the_config_checks(name, variants):
  for variant in variants:
    config = load_config(name, variant=variant)
    lm.check_config(config)
    trainer.check_config(config)
