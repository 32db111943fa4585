"""Sampling: reproducible for a seed, compiled once, KV-cache generation equal to full recomputation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.core import mesh as mesh_lib
from jaxai.core.errors import UserError
from jaxai.data.text import CharVocab
from jaxai.lm import sample
from jaxai.models import char_rnn, gpt

V, BLOCK = 11, 16
PROMPT = np.array([1, 2, 3], np.int32)


def make_gpt():
  model = gpt.GPT(vocab_size=V, block_size=BLOCK, num_layers=2, num_heads=2, embed_dim=16)
  return model, jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, BLOCK), jnp.int32))["params"]


def make_lstm():
  model = char_rnn.CharRNN(vocab_size=V, hidden=16, num_layers=2, embed_dim=8)
  return model, jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]


@pytest.mark.parametrize("make", [make_gpt, make_lstm], ids=["gpt", "lstm"])
def test_fixed_seed_is_reproducible_and_compiles_once(make):
  model, params = make()
  params = jax.device_put(params, mesh_lib.replicated(mesh_lib.make_mesh()))  # as the trainer holds them.
  sampler = sample.Sampler(model, top_k=5)
  # 30 characters > block_size: the GPT's cache fills and is rebuilt on the way.
  a, b, c = (sampler.generate(params, PROMPT, 30, temperature=1.0, seed=seed, num_samples=2) for seed in (0, 0, 1))
  assert a.shape == (2, 30) and a.dtype == np.int32 and ((0 <= a) & (a < V)).all()
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  assert not np.array_equal(a[0], a[1])  # the samples of a batch are independent draws.
  assert sampler.num_traces == 1  # one compiled step for prompt, generation, refills and new seeds.


def test_kv_cache_generation_equals_recomputing_the_whole_context():
  """Greedy decoding with the cache against the naive loop (full forward over everything so far)."""
  model, params = make_gpt()
  got = sample.Sampler(model).generate(params, PROMPT, BLOCK - len(PROMPT), temperature=0.0)[0]
  forward = jax.jit(lambda x: model.apply({"params": params}, x))
  context = list(PROMPT)
  for _ in range(BLOCK - len(PROMPT)):  # padded to BLOCK (one compilation); causal: padding is unseen.
    padded = np.zeros((1, BLOCK), np.int32)
    padded[0, :len(context)] = context
    context.append(int(jnp.argmax(forward(padded)[0, len(context) - 1])))
  np.testing.assert_array_equal(got, context[len(PROMPT):])


def test_top_k_restricts_draws_to_the_k_most_likely():
  logits = jnp.log(jnp.array([[0.05, 0.4, 0.05, 0.3, 0.2]]))
  keys = jax.random.split(jax.random.key(0), 400)
  draw = jax.jit(jax.vmap(lambda k, t, top: sample.pick(logits, k, t, top)[0], (0, None, None)),
                 static_argnums=2)
  assert set(np.asarray(draw(keys, 1.0, 2)).tolist()) == {1, 3}
  assert set(np.asarray(draw(keys, 1.0, 0)).tolist()) == {0, 1, 2, 3, 4}
  assert set(np.asarray(draw(keys, 0.0, 0)).tolist()) == {1}  # temperature 0: the most likely.


def test_empty_or_unknown_prompt_is_a_clear_error():
  vocab = CharVocab.from_text("abc \n")
  np.testing.assert_array_equal(sample.encode_prompt(vocab, "ab c"), [2, 3, 1, 4])
  with pytest.raises(UserError, match="empty"):
    sample.encode_prompt(vocab, "")
  with pytest.raises(UserError, match="'Z'.*'!'"):
    sample.encode_prompt(vocab, "aZb!")
