"""A decoder-only Transformer (GPT-2 layout): learned position embeddings, pre-LayerNorm blocks of causal
self-attention and an MLP, a final LayerNorm, and an output layer tied to the token embedding.

Two ways to call it:
  * training / scoring: `apply(variables, tokens)` -> logits for every position, causal mask inside;
  * decoding with a KV cache: `apply(variables, tokens, decode_position=p, mutable=['cache'])` with
    `tokens` (B, C) the characters at positions p..p+C-1: their keys and values are written into the
    'cache' collection (capacity `block_size`) and each query attends to the cached positions <= its
    own. With C=1 a new character costs one step. `init_cache` makes an empty cache.

Parameters are float32; `dtype` is the compute dtype (bfloat16 for mixed precision). Initialization
follows GPT-2: N(0, 0.02) weights, residual output projections scaled by 1/sqrt(2 * num_layers).
"""
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any
DTYPES = ("auto", "float32", "bfloat16")


def compute_dtype(name: str, key: str = "config.model.dtype"):
  """The compute dtype a config names: 'auto' = bfloat16 on accelerators, float32 on CPU."""
  if name not in DTYPES:
    from jaxai.errors import UserError
    raise UserError(f"{key}={name!r} is unknown; use one of {DTYPES}.")
  if name == "auto":
    return jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
  return jnp.dtype(name)


class SelfAttention(nn.Module):
  """Multi-head self-attention; causal (each position sees itself and the past) unless `causal=False`
  (an encoder's: every position sees every other). `key_mask` (B, T) bool hides padded positions."""
  num_heads: int
  block_size: int
  dropout_rate: float = 0.0
  use_bias: bool = False
  residual_init_scale: float = 1.0
  dtype: Dtype = jnp.float32
  causal: bool = True

  @nn.compact
  def __call__(self, x, train: bool = False, decode_position=None, key_mask=None):  # x: (B, T, D) -> (B, T, D)
    b, t, d = x.shape
    h = self.num_heads
    init = nn.initializers.normal(0.02)
    qkv = nn.Dense(3 * d, use_bias=self.use_bias, kernel_init=init, dtype=self.dtype, name="qkv")(x)
    q, k, v = jnp.split(qkv.reshape(b, t, 3 * h, d // h), 3, axis=2)  # each (B, T, H, D/H)

    if decode_position is None:  # keys are this input's positions.
      query_pos = key_pos = jnp.arange(t)
    else:  # write this chunk's keys/values into the cache, attend over the whole cache.
      shape = (b, self.block_size, h, d // h)
      cached_k = self.variable("cache", "key", jnp.zeros, shape, k.dtype)
      cached_v = self.variable("cache", "value", jnp.zeros, shape, v.dtype)
      start = (0, decode_position, 0, 0)
      cached_k.value = jax.lax.dynamic_update_slice(cached_k.value, k.astype(cached_k.value.dtype), start)
      cached_v.value = jax.lax.dynamic_update_slice(cached_v.value, v.astype(cached_v.value.dtype), start)
      k, v = cached_k.value.astype(self.dtype), cached_v.value.astype(self.dtype)
      query_pos, key_pos = decode_position + jnp.arange(t), jnp.arange(self.block_size)

    mask = jnp.ones((1, 1, t, k.shape[1]), bool)  # (B or 1, 1, T, S): which keys each query sees.
    if self.causal:
      mask = mask & (key_pos[None, :] <= query_pos[:, None])[None, None]  # itself and the past only.
    if key_mask is not None:
      mask = mask & key_mask[:, None, None, :]
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d // h)  # (B, H, T, S)
    scores = jnp.where(mask, scores.astype(jnp.float32), jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(scores, axis=-1).astype(self.dtype)
    weights = nn.Dropout(self.dropout_rate, deterministic=not train)(weights)
    y = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, d)  # heads side by side again.
    y = nn.Dense(d, use_bias=self.use_bias, dtype=self.dtype, name="proj",
                 kernel_init=nn.initializers.normal(0.02 * self.residual_init_scale))(y)
    return nn.Dropout(self.dropout_rate, deterministic=not train)(y)


CausalSelfAttention = SelfAttention  # the decoder's (causal=True, the default).


class Block(nn.Module):
  num_heads: int
  block_size: int
  dropout_rate: float = 0.0
  use_bias: bool = False
  residual_init_scale: float = 1.0
  dtype: Dtype = jnp.float32
  exact_gelu: bool = False  # erf GELU (PyTorch's nn.GELU default) instead of the tanh approximation.
  causal: bool = True       # False: an encoder block (bidirectional attention).

  @nn.compact
  def __call__(self, x, train: bool = False, decode_position=None, key_mask=None):  # (B, T, D) -> (B, T, D)
    d = x.shape[-1]
    norm = lambda name: nn.LayerNorm(epsilon=1e-5, use_bias=self.use_bias, dtype=self.dtype, name=name)
    x = x + SelfAttention(self.num_heads, self.block_size, self.dropout_rate, self.use_bias,
                          self.residual_init_scale, self.dtype, self.causal, name="attn")(
                              norm("ln_1")(x), train, decode_position, key_mask)
    init = nn.initializers.normal(0.02)
    y = nn.Dense(4 * d, use_bias=self.use_bias, kernel_init=init, dtype=self.dtype, name="fc")(norm("ln_2")(x))
    y = nn.gelu(y, approximate=not self.exact_gelu)
    y = nn.Dense(d, use_bias=self.use_bias, dtype=self.dtype, name="fc_proj",
                 kernel_init=nn.initializers.normal(0.02 * self.residual_init_scale))(y)
    return x + nn.Dropout(self.dropout_rate, deterministic=not train)(y)


class GPT(nn.Module):
  vocab_size: int
  block_size: int = 256       # context length: learned positions, and the KV cache's capacity.
  num_layers: int = 6
  num_heads: int = 6
  embed_dim: int = 384        # must be a multiple of num_heads.
  dropout_rate: float = 0.0   # on embeddings, attention weights and residual branches.
  use_bias: bool = False      # biases in Dense and LayerNorm layers (nanoGPT: False is a bit better and faster).
  exact_gelu: bool = False    # the MLP's GELU with erf (nanoGPT's nn.GELU) rather than tanh (GPT-2's).
  dtype: Dtype = jnp.float32  # compute dtype; parameters stay float32.

  @nn.compact
  def __call__(self, tokens, train: bool = False, decode_position=None):  # (B, T) int -> (B, T, V) float32
    b, t = tokens.shape
    if self.embed_dim % self.num_heads:
      raise ValueError(f"embed_dim={self.embed_dim} is not a multiple of num_heads={self.num_heads}.")
    if decode_position is None and t > self.block_size:
      raise ValueError(f"{t} positions exceed block_size={self.block_size}.")
    init = nn.initializers.normal(0.02)
    wte = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=init, name="wte")
    wpe = self.param("wpe", init, (self.block_size, self.embed_dim))  # (block_size, D)
    start = 0 if decode_position is None else decode_position
    pos = jax.lax.dynamic_slice_in_dim(wpe, start, t)  # (T, D)
    x = (wte(tokens) + pos[None]).astype(self.dtype)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    for i in range(self.num_layers):
      x = Block(self.num_heads, self.block_size, self.dropout_rate, self.use_bias,
                1 / math.sqrt(2 * self.num_layers), self.dtype, self.exact_gelu,
                name=f"block_{i}")(x, train, decode_position)
    x = nn.LayerNorm(epsilon=1e-5, use_bias=self.use_bias, dtype=self.dtype, name="ln_f")(x)
    # Weight tying: the output layer is the token embedding transposed.
    logits = jnp.einsum("btd,vd->btv", x, wte.embedding.astype(self.dtype))
    return logits.astype(jnp.float32)

  def init_cache(self, batch_size: int) -> dict:
    """An empty KV cache for `batch_size` sequences: {'block_i': {'attn': {'key', 'value'}}} of zeros."""
    shapes = jax.eval_shape(lambda: self.init(jax.random.key(0), jnp.zeros((batch_size, 1), jnp.int32),
                                              decode_position=0)["cache"])
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def matmul_params(params) -> int:
  """Parameters used in a matrix multiply per token: all but the position embeddings (the tied
  token embedding counts once, as the output layer). 6x this per token is the usual training FLOPs."""
  return sum(x.size for x in jax.tree.leaves(params)) - params["wpe"].size


def flops_per_token(params, num_layers: int, block_size: int, embed_dim: int) -> float:
  """Training FLOPs per token (forward + backward): 6 per matmul parameter plus attention's scores and
  weighted sum, 12 * layers * T * D (the PaLM appendix estimate; nanoGPT's `estimate_mfu` too)."""
  return 6.0 * matmul_params(params) + 12.0 * num_layers * block_size * embed_dim
