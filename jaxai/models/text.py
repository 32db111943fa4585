"""Encoders over token sequences for sentence classification and tagging.

Shapes: B sentences, T positions (padded; `lengths` (B,) real tokens, a left-aligned prefix), D width.
  TransformerEncoder  ids (B, T) -> (B, T, D): learned positions and the GPT's pre-LayerNorm blocks with
                      bidirectional attention (jaxai.models.gpt.Block(causal=False)), padding hidden
                      from every query.
  SentenceClassifier  ids (B, T) -> logits (B, C): a TransformerEncoder, the mean over real tokens, Dense.
"""
import math
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxai.models import gpt

Dtype = Any


def length_mask(lengths, num_positions: int):
  """(B,) lengths -> (B, T) bool, True at the first `length` positions."""
  return jnp.arange(num_positions)[None, :] < lengths[:, None]


class TransformerEncoder(nn.Module):
  max_len: int                # learned positions.
  num_layers: int = 2
  num_heads: int = 4
  embed_dim: int = 128
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x, key_mask, train: bool = False):  # x: (B, T, D) embedded tokens -> (B, T, D)
    t = x.shape[1]
    if self.embed_dim % self.num_heads:
      raise ValueError(f"embed_dim={self.embed_dim} is not a multiple of num_heads={self.num_heads}.")
    if t > self.max_len:
      raise ValueError(f"{t} positions exceed max_len={self.max_len}.")
    pos = self.param("pos", nn.initializers.normal(0.02), (self.max_len, self.embed_dim))
    x = (x + pos[None, :t]).astype(self.dtype)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    for i in range(self.num_layers):
      x = gpt.Block(self.num_heads, self.max_len, self.dropout_rate, use_bias=True,
                    residual_init_scale=1 / math.sqrt(2 * self.num_layers), dtype=self.dtype,
                    causal=False, name=f"block_{i}")(x, train, key_mask=key_mask)
    return nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, name="ln_f")(x)


class SentenceClassifier(nn.Module):
  vocab_size: int
  num_classes: int
  max_len: int
  num_layers: int = 2
  num_heads: int = 4
  embed_dim: int = 128
  dropout_rate: float = 0.1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, ids, lengths, train: bool = False):  # (B, T) int, (B,) -> (B, C) float32
    mask = length_mask(lengths, ids.shape[1])
    x = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=nn.initializers.normal(0.02),
                 name="embed")(ids)
    x = TransformerEncoder(self.max_len, self.num_layers, self.num_heads, self.embed_dim,
                           self.dropout_rate, self.dtype, name="encoder")(x, mask, train)
    weights = mask.astype(x.dtype)[..., None]
    pooled = (x * weights).sum(1) / jnp.maximum(weights.sum(1), 1.0)  # (B, D): mean of real tokens.
    pooled = nn.Dropout(self.dropout_rate, deterministic=not train)(pooled)
    return nn.Dense(self.num_classes, dtype=self.dtype, name="head")(pooled).astype(jnp.float32)
