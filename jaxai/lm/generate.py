"""Text generation from a character model, the whole loop inside one compiled function.

`generate(model, params, prompt, key, temperature, num_chars=..., top_k=...)` is pure: the task's
eval-time samples call it inside the core's jit, `Sampler` compiles it for tools and notebooks.

One `lax.while_loop` feeds one character per iteration: the GPT writes it into its KV cache, the
LSTM updates its carried state. The prompt goes in first, character by character; after the newest
character the next one is drawn, with the key fold_in(key, n) for character n, so a key fixes the
text. The GPT's cache holds `block_size` positions (its learned positions end there): when it is
full, it is rebuilt from the last `block_size // 2` characters (fed again from position 0; entries
past the current position are masked, so the stale ones need no clearing) and generation goes on.
Only the last `block_size` characters of a longer prompt are read.
"""
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxai.errors import UserError
from jaxai.models import char_rnn, gpt


def encode_prompt(vocab, prompt: str, what: str = "--prompt") -> np.ndarray:
  """(len,) ids of a non-empty prompt whose characters are all in `vocab`; else a UserError."""
  if not prompt:
    raise UserError(f"{what} is empty: give at least one character to start from, e.g. {what}='ROMEO:' "
                    "(a newline works too).")
  missing = vocab.unknown(prompt)
  if missing:
    raise UserError(f"{what}={prompt!r} has characters outside the model's vocabulary: "
                    f"{', '.join(map(repr, missing))}. The vocabulary is {vocab.chars!r}.")
  return vocab.encode(prompt)


def pick(logits, rng, temperature, top_k: int):
  """(B, V) logits -> (B,) ids: the argmax when temperature == 0, else a draw from softmax(logits / T)
  restricted to the `top_k` most likely characters (all when 0)."""
  if top_k and top_k < logits.shape[-1]:
    kth = jax.lax.top_k(logits, top_k)[0][:, -1:]  # (B, 1) the k-th largest logit.
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  drawn = jax.random.categorical(rng, logits / jnp.maximum(temperature, 1e-6), axis=-1)
  return jnp.where(temperature > 0, drawn, jnp.argmax(logits, -1)).astype(jnp.int32)


def check_model(model) -> None:
  if not isinstance(model, (gpt.GPT, char_rnn.CharRNN)):
    raise TypeError(f"Cannot sample from {type(model).__name__}: only GPT and CharRNN models.")


def context_size(model) -> int | None:
  """Characters the model can attend to (the GPT's block_size); None: unbounded (the LSTM)."""
  return model.block_size if isinstance(model, gpt.GPT) else None


def _feed_one(model, params, carry, tokens, position):
  """(B,) tokens at `position` -> (new carry, (B, V) logits of the next character)."""
  if isinstance(model, char_rnn.CharRNN):
    logits, carry = model.apply({"params": params}, tokens[:, None], carry)
  else:
    logits, updated = model.apply({"params": params, "cache": carry}, tokens[:, None],
                                  decode_position=position, mutable=["cache"])
    carry = updated["cache"]
  return carry, logits[:, 0]


def generate(model, params, prompt, key, temperature, *, num_chars: int, top_k: int = 0,
             id_range: tuple[int, int] | None = None):
  """(B, P) int32 prompt ids, P >= 1 -> (B, num_chars) int32 continuation. Traceable: `key` (a typed
  PRNG key) and `temperature` may be traced; the shapes, `num_chars`, `top_k` and `id_range` are static.
  `id_range=(lo, hi)` draws only ids lo <= id < hi (e.g. the image codes of a text-to-image prior)."""
  check_model(model)
  prompt = jnp.asarray(prompt, jnp.int32)
  block = context_size(model)
  if block is not None:
    prompt = prompt[:, -block:]
  b, k = prompt.shape
  if num_chars == 0:
    return jnp.zeros((b, 0), jnp.int32)
  refill = max(1, (block or 0) // 2)  # characters a full cache is rebuilt from (1 for block_size 1).
  carry = model.zero_carry(b) if block is None else model.init_cache(b)
  # Everything fed or drawn: the (last block of the) prompt, then the drawn characters. (B, k + num_chars)
  history = jnp.concatenate([prompt, jnp.zeros((b, num_chars), jnp.int32)], axis=1)

  def body(loop):
    carry, history, position, source, n = loop  # feed history[:, source] at `position`; n characters drawn.
    tokens = jax.lax.dynamic_index_in_dim(history, source, axis=1, keepdims=False)  # (B,)
    carry, logits = _feed_one(model, params, carry, tokens, position)
    newest = source == k + n - 1  # the latest character is in: draw character n.
    if id_range is not None:
      ids = jnp.arange(logits.shape[-1])
      logits = jnp.where((ids >= id_range[0]) & (ids < id_range[1]), logits, -jnp.inf)
    drawn = pick(logits, jax.random.fold_in(key, n), temperature, top_k)
    slot = jax.lax.dynamic_index_in_dim(history, k + n, axis=1, keepdims=False)
    history = jax.lax.dynamic_update_index_in_dim(history, jnp.where(newest, drawn, slot), k + n, axis=1)
    n = n + newest.astype(jnp.int32)
    full = (newest & (position + 1 == block)) if block is not None else jnp.bool_(False)  # the cache.
    position = jnp.where(full, 0, position + 1)
    source = jnp.where(full, k + n - refill, source + 1)
    return carry, history, position, source, n

  zero = jnp.int32(0)
  loop = (carry, history, zero, zero, zero)
  _, history, *_ = jax.lax.while_loop(lambda loop: loop[-1] < num_chars, body, loop)
  return history[:, k:]


class Sampler:
  """`generate` compiled once per (prompt length, num_chars, num_samples); seeds and temperatures are
  inputs, so new ones reuse the compiled loop. `jit` compiles a function: jax.jit, or in tools
  jaxai.core.sharding.on_local_device (one device, even when the parameters span a mesh)."""

  def __init__(self, model, top_k: int = 0, jit: Callable = jax.jit):
    check_model(model)
    self.model, self.top_k, self._jit = model, top_k, jit
    self._compiled = {}  # num_chars -> compiled generate.
    self.num_traces = 0  # times the loop was traced; stays 1 over generations of the same shapes.

  def _generate(self, num_chars: int):
    if num_chars not in self._compiled:
      def fn(params, prompt, key, temperature):
        self.num_traces += 1
        return generate(self.model, params, prompt, key, temperature, num_chars=num_chars, top_k=self.top_k)
      self._compiled[num_chars] = self._jit(fn)
    return self._compiled[num_chars]

  def generate(self, params, prompt_ids, num_chars: int, temperature: float = 1.0, seed: int = 0,
               num_samples: int = 1) -> np.ndarray:
    """(num_samples, num_chars) int32 ids continuing the (P,) prompt, P >= 1."""
    prompt = np.broadcast_to(np.asarray(prompt_ids, np.int32), (num_samples, len(prompt_ids)))
    if num_chars == 0:
      return np.zeros((num_samples, 0), np.int32)
    ids = self._generate(num_chars)(params, prompt, jax.random.key(seed), np.float32(temperature))
    return np.asarray(jax.device_get(ids), np.int32)
