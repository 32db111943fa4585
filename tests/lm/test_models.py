"""GPT and char-rnn: causal masking, KV-cache decoding against the full forward pass, mixed precision."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.models import char_rnn, gpt

V, T, B = 13, 12, 2


def tiny_gpt(**kw):
  return gpt.GPT(vocab_size=V, block_size=T, num_layers=2, num_heads=2, embed_dim=16, **kw)


def tiny_lstm(**kw):
  return char_rnn.CharRNN(vocab_size=V, hidden=16, num_layers=2, embed_dim=8, **kw)


def tokens(seed=0):
  return jax.random.randint(jax.random.key(seed), (B, T), 0, V)


def init(model, x):
  return jax.jit(model.init)(jax.random.key(1), x)


def logits_fn(model):
  """Jitted variables, (B, T) -> (B, T, V) logits (eager Flax is slow: every test jits)."""
  def fn(variables, x):
    out = model.apply(variables, x)
    return out[0] if isinstance(model, char_rnn.CharRNN) else out
  return jax.jit(fn)


@pytest.mark.parametrize("make", [tiny_gpt, tiny_lstm], ids=["gpt", "lstm"])
def test_later_characters_never_change_earlier_logits(make):
  model, x = make(), tokens()
  variables, logits = init(model, x), logits_fn(model)
  base = logits(variables, x)
  for t in (0, 5, T - 1):
    changed = x.at[:, t].set((x[:, t] + 1) % V)
    new = logits(variables, changed)
    np.testing.assert_array_equal(new[:, :t], base[:, :t])  # bitwise: the mask is exact.
    assert not np.allclose(new[:, t:], base[:, t:])          # ...and later logits do depend on it.


def test_kv_cache_decoding_matches_the_full_forward_pass():
  model, x = tiny_gpt(), tokens()
  params = init(model, x)["params"]
  full = logits_fn(model)({"params": params}, x)  # (B, T, V)
  step = jax.jit(lambda cache, tok, pos: model.apply({"params": params, "cache": cache}, tok,
                                                     decode_position=pos, mutable=["cache"]))
  cache, outs = model.init_cache(B), []
  for t in range(T):  # one character per step, the position a traced value: one compilation.
    out, mutated = step(cache, x[:, t:t + 1], jnp.int32(t))
    cache = mutated["cache"]
    outs.append(out)
  np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)
  assert step._cache_size() == 1
  # Chunks of several characters at once (a prompt), then single ones: the same logits.
  out1, mutated = step(model.init_cache(B), x[:, :7], jnp.int32(0))
  out2, _ = step(mutated["cache"], x[:, 7:], jnp.int32(7))
  np.testing.assert_allclose(np.concatenate([out1, out2], 1), full, atol=1e-5)


def test_lstm_step_by_step_matches_the_whole_sequence():
  model, x = tiny_lstm(), tokens()
  variables = init(model, x)
  apply = jax.jit(model.apply)
  full, final = apply(variables, x)
  carry, outs = model.zero_carry(B), []
  for t in range(T):
    out, carry = apply(variables, x[:, t:t + 1], carry)
    outs.append(out)
  np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5), carry, final)


def test_gpt_weight_tying_and_no_biases():
  params = jax.eval_shape(tiny_gpt().init, jax.random.key(1), tokens())["params"]
  names = {jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]}
  assert not any("head" in n or "bias" in n for n in names), names  # output layer = wte transposed.
  assert params["wpe"].shape == (T, 16) and params["wte"]["embedding"].shape == (V, 16)


@pytest.mark.parametrize("make", [tiny_gpt, tiny_lstm], ids=["gpt", "lstm"])
def test_bfloat16_compute_keeps_float32_params_and_close_logits(make):
  x = tokens()
  f32, bf16 = make(), make(dtype=jnp.bfloat16)
  variables = init(f32, x)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(jax.eval_shape(bf16.init, jax.random.key(1), x)))
  want, got = logits_fn(f32)(variables, x), logits_fn(bf16)(variables, x)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, atol=0.05)
  assert not np.array_equal(got, want)  # it really computed in bfloat16.
