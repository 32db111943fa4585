"""The AlphaZero network for board games (Silver et al. 2017, 2018): a residual tower with a policy
head and a value head.

Input: feature planes (B, size, size, planes) from the side to move's perspective. Output: policy
logits over `num_actions` (every point, then pass) and a value in [-1, 1], the expected outcome for
the side to move. Normalization is LayerNorm over channels rather than AlphaZero's BatchNorm: it has
no running statistics, so self-play, search and training use the same function of the parameters.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp


class ResidualBlock(nn.Module):
  """Pre-activation residual block: x + conv(relu(norm(conv(relu(norm(x))))))."""
  channels: int

  @nn.compact
  def __call__(self, x):
    y = nn.Conv(self.channels, (3, 3))(nn.relu(nn.LayerNorm()(x)))
    y = nn.Conv(self.channels, (3, 3), kernel_init=nn.initializers.zeros)(nn.relu(nn.LayerNorm()(y)))
    return x + y  # zero-initialized last conv: each block starts as the identity.


class GoNet(nn.Module):
  num_actions: int          # size*size + 1 (pass).
  blocks: int = 6           # residual blocks in the tower.
  channels: int = 64        # channels of every tower convolution.
  value_hidden: int = 64    # units of the value head's hidden layer.

  @nn.compact
  def __call__(self, planes):  # planes (B, size, size, C) -> logits (B, num_actions), value (B,)
    x = nn.Conv(self.channels, (3, 3))(planes.astype(jnp.float32))  # (B, size, size, channels)
    for _ in range(self.blocks):
      x = ResidualBlock(self.channels)(x)
    x = nn.relu(nn.LayerNorm()(x))
    flat = lambda h: h.reshape((h.shape[0], -1))
    # The 1x1 head convolutions are linear: a ReLU on their one or two channels, without
    # AlphaZero's BatchNorm before it, can go negative everywhere and stop the head from learning.
    p = nn.Conv(2, (1, 1))(x)                                          # (B, size, size, 2)
    logits = nn.Dense(self.num_actions, kernel_init=nn.initializers.zeros)(flat(p))
    v = nn.Conv(2, (1, 1))(x)                                          # (B, size, size, 2)
    v = nn.relu(nn.Dense(self.value_hidden)(flat(v)))
    value = jnp.tanh(nn.Dense(1)(v))[:, 0]
    return logits, value


def masked_logits(logits: jax.Array, legal: jax.Array) -> jax.Array:
  """Illegal actions get the lowest finite logit, so softmax gives them 0 (and never NaN)."""
  return jnp.where(legal, logits, jnp.finfo(logits.dtype).min)
