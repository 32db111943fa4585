"""char-rnn: a character embedding, a stack of LSTM layers, and a linear layer to the next character.

`apply(variables, tokens, carry)` runs the stack over (B, T) characters from `carry` (the LSTM states
of every layer; `zero_carry(batch)` to start) and returns (logits (B, T, V), new carry), so the same
call with T=1 and the carried state generates one character at a time.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any


class LSTMStack(nn.Module):
  """One time step through every layer: carry is a tuple of (c, h) per layer, each (B, hidden)."""
  hidden: int
  num_layers: int
  dropout_rate: float = 0.0
  deterministic: bool = True
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, carry, x):  # x: (B, E) -> new carry, (B, hidden)
    new_carry = []
    for i in range(self.num_layers):
      x = nn.Dropout(self.dropout_rate, deterministic=self.deterministic)(x)  # between layers, as char-rnn.
      layer_carry, x = nn.OptimizedLSTMCell(self.hidden, dtype=self.dtype, name=f"lstm_{i}")(carry[i], x)
      new_carry.append(tuple(s.astype(jnp.float32) for s in layer_carry))  # states stay float32.
    return tuple(new_carry), x


class CharRNN(nn.Module):
  vocab_size: int
  hidden: int = 256
  num_layers: int = 2
  embed_dim: int = 64
  dropout_rate: float = 0.0   # on the input of every LSTM layer and on the last layer's output.
  dtype: Dtype = jnp.float32  # compute dtype; parameters and LSTM states stay float32.

  @nn.compact
  def __call__(self, tokens, carry=None, train: bool = False):  # (B, T) int -> (B, T, V), carry
    if carry is None:
      carry = self.zero_carry(tokens.shape[0])
    x = nn.Embed(self.vocab_size, self.embed_dim, name="embed")(tokens).astype(self.dtype)  # (B, T, E)
    scan = nn.scan(LSTMStack, variable_broadcast="params", split_rngs={"params": False, "dropout": True},
                   in_axes=1, out_axes=1)
    carry, y = scan(self.hidden, self.num_layers, self.dropout_rate, not train, self.dtype, name="rnn")(carry, x)
    y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)  # (B, T, hidden)
    logits = nn.Dense(self.vocab_size, dtype=self.dtype, name="head")(y)
    return logits.astype(jnp.float32), carry

  def zero_carry(self, batch_size: int) -> tuple:
    zeros = jnp.zeros((batch_size, self.hidden), jnp.float32)
    return tuple((zeros, zeros) for _ in range(self.num_layers))


def flops_per_token(params) -> float:
  """Training FLOPs per token: 6 per parameter used in a matmul (everything but the embedding table)."""
  return 6.0 * (sum(x.size for x in jax.tree.leaves(params)) - params["embed"]["embedding"].size)
