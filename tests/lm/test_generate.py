"""Generation: reproducible for a seed, compiled once, the in-JAX loop equal to one call per character,
KV-cache generation equal to full recomputation."""
import ast
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from jaxai.core import sharding
from jaxai.data.text import CharVocab
from jaxai.errors import UserError
from jaxai.lm import generate
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
  params = jax.device_put(params, NamedSharding(sharding.make_mesh(), PartitionSpec()))  # as the trainer holds them.
  sampler = generate.Sampler(model, top_k=5)
  # 30 characters > block_size: the GPT's cache fills and is rebuilt on the way.
  a, b, c = (sampler.generate(params, PROMPT, 30, temperature=1.0, seed=seed, num_samples=2) for seed in (0, 0, 1))
  assert a.shape == (2, 30) and a.dtype == np.int32 and ((0 <= a) & (a < V)).all()
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  assert not np.array_equal(a[0], a[1])  # the samples of a batch are independent draws.
  sampler.generate(params, PROMPT + 1, 30, temperature=0.5, seed=2, num_samples=2)
  assert sampler.num_traces == 1  # one compiled loop for prompts, refills, seeds and temperatures.


def one_call_per_character(model, params, prompt, num_chars, temperature, seed, top_k):
  """The reference: a jitted one-character step driven from Python (the sampler before the loop
  moved into JAX), the GPT's full cache rebuilt from the last block_size // 2 characters."""
  block = model.block_size if isinstance(model, gpt.GPT) else None

  @jax.jit
  def step(carry, tokens, position, rng):
    if block is None:
      logits, carry = model.apply({"params": params}, tokens[:, None], carry)
    else:
      logits, mutated = model.apply({"params": params, "cache": carry}, tokens[:, None],
                                    decode_position=position, mutable=["cache"])
      carry = mutated["cache"]
    return carry, generate.pick(logits[:, 0], rng, temperature, top_k)

  def feed(tokens, n):  # a fresh carry through (B, K) tokens; the key of character n draws the next.
    carry = model.zero_carry(len(tokens)) if block is None else model.init_cache(len(tokens))
    for i in range(tokens.shape[1]):
      carry, nxt = step(carry, tokens[:, i], i, jax.random.fold_in(jax.random.key(seed), n))
    return carry, nxt, tokens.shape[1]

  carry, nxt, position = feed(prompt if block is None else prompt[:, -block:], 0)
  out = [nxt]
  for n in range(1, num_chars):
    if position == block:
      carry, nxt, position = feed(np.concatenate([prompt, np.stack(out, 1)], 1)[:, -(block // 2):], n)
    else:
      carry, nxt = step(carry, nxt, position, jax.random.fold_in(jax.random.key(seed), n))
      position += 1
    out.append(nxt)
  return np.stack(out, 1)


@pytest.mark.parametrize("make, prompt_len", [(make_gpt, 20), (make_lstm, 3)], ids=["gpt", "lstm"])
def test_loop_in_jax_draws_exactly_what_one_call_per_character_draws(make, prompt_len):
  """Bitwise the same characters; the GPT's prompt is longer than its block (only the last block is
  read), its cache full at once and rebuilt every block_size // 2 characters."""
  model, params = make()
  params = jax.tree.map(lambda x: 3 * x, params)  # sharper distributions than a fresh init.
  prompt = np.tile((np.arange(prompt_len, dtype=np.int32) * 7) % V, (2, 1))
  got = generate.Sampler(model, top_k=5).generate(params, prompt[0], 40, temperature=0.8, seed=3, num_samples=2)
  np.testing.assert_array_equal(got, one_call_per_character(model, params, prompt, 40, 0.8, 3, 5))


def test_kv_cache_generation_equals_recomputing_the_whole_context():
  """Greedy decoding with the cache against the naive loop (full forward over everything so far)."""
  model, params = make_gpt()
  got = generate.Sampler(model).generate(params, PROMPT, BLOCK - len(PROMPT), temperature=0.0)[0]
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
  draw = jax.jit(jax.vmap(lambda k, t, top: generate.pick(logits, k, t, top)[0], (0, None, None)),
                 static_argnums=2)
  assert set(np.asarray(draw(keys, 1.0, 2)).tolist()) == {1, 3}
  assert set(np.asarray(draw(keys, 1.0, 0)).tolist()) == {0, 1, 2, 3, 4}
  assert set(np.asarray(draw(keys, 0.0, 0)).tolist()) == {1}  # temperature 0: the most likely.


def test_id_range_draws_only_ids_in_the_range():
  """A text-to-image prior continues a caption with image codes only: ids [lo, hi) of the vocabulary."""
  model, params = make_gpt()
  draw = jax.jit(lambda key, t: generate.generate(model, params, PROMPT[None].repeat(8, 0), key, t,
                                                  num_chars=12, id_range=(4, 7)))
  drawn = np.asarray(draw(jax.random.key(3), 1.0))
  assert drawn.min() >= 4 and drawn.max() < 7 and len(set(drawn.ravel().tolist())) == 3
  assert set(np.asarray(draw(jax.random.key(3), 0.0)).ravel().tolist()) <= {4, 5, 6}


def test_empty_or_unknown_prompt_is_a_clear_error():
  vocab = CharVocab.from_text("abc \n")
  np.testing.assert_array_equal(generate.encode_prompt(vocab, "ab c"), [2, 3, 1, 4])
  with pytest.raises(UserError, match="empty"):
    generate.encode_prompt(vocab, "")
  with pytest.raises(UserError, match="'Z'.*'!'"):
    generate.encode_prompt(vocab, "aZb!")


def test_generation_library_imports_no_task_and_no_core():
  """jaxai.lm.generate is used by the lm task and by the sampling CLI: it imports models, never them."""
  tree = ast.parse(pathlib.Path(generate.__file__).read_text())
  imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
  imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
  ours = {name for name in imported if name.startswith("jaxai")}
  assert ours <= {"jaxai.errors", "jaxai.models", "jaxai.ops"}, ours
