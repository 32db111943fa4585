"""Networks for reinforcement learning: torsos, an actor-critic and a (dueling) Q-network.

Initialization follows the common PPO/DQN practice (orthogonal weights, zero biases; gain sqrt(2)
in the torso, 0.01 on the policy logits, 1 on the value) as in Huang et al. 2022, "The 37
Implementation Details of Proximal Policy Optimization".
"""
from typing import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np


def _dense(features, gain=np.sqrt(2)):
  return nn.Dense(features, kernel_init=nn.initializers.orthogonal(gain),
                  bias_init=nn.initializers.zeros)


class MatmulConv(nn.Module):
  """A VALID, strided 2-D convolution as one matmul over its patches, with nn.Conv's parameters.

  The patches are k*k strided slices of the input, concatenated in (kh, kw, C) order, which is the
  row-major order of nn.Conv's (kh, kw, C, F) kernel: the same parameters give the same output (to
  float rounding), so checkpoints move freely between the two. Why: XLA:CPU runs convolution
  gradients inside `lax.scan` several times slower than outside, and its weight-gradient
  convolutions are slow; slices and one dot are fast everywhere.
  """
  features: int
  kernel_size: int
  stride: int
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x):  # (B, H, W, C) -> (B, Ho, Wo, F)
    k, s, channels = self.kernel_size, self.stride, x.shape[-1]
    kernel = self.param("kernel", self.kernel_init, (k, k, channels, self.features))
    bias = self.param("bias", self.bias_init, (self.features,))
    out_h, out_w = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    patches = jnp.concatenate(
        [x[:, i:i + s * (out_h - 1) + 1:s, j:j + s * (out_w - 1) + 1:s, :] for i in range(k) for j in range(k)],
        axis=-1)  # (B, Ho, Wo, k*k*C)
    return patches @ kernel.reshape(k * k * channels, self.features) + bias


class NatureCNN(nn.Module):
  """Mnih et al. 2015: 3 conv layers + 512 units. Input (B, stack, 84, 84) uint8, channels first.

  `conv_as_matmul` computes each convolution as MatmulConv (the same parameters and outputs):
  faster to train on CPU, where PPO's update is almost all convolution gradients.
  """
  conv_as_matmul: bool = False

  @nn.compact
  def __call__(self, obs):
    x = jnp.transpose(obs, (0, 2, 3, 1)).astype(jnp.float32) / 255.0  # (B, 84, 84, stack)
    init = dict(kernel_init=nn.initializers.orthogonal(np.sqrt(2)), bias_init=nn.initializers.zeros)

    def conv(index, features, k, s):
      if self.conv_as_matmul:
        return MatmulConv(features, k, s, name=f"Conv_{index}", **init)
      return nn.Conv(features, (k, k), (s, s), padding="VALID", name=f"Conv_{index}", **init)

    x = nn.relu(conv(0, 32, 8, 4)(x))   # (B, 20, 20, 32)
    x = nn.relu(conv(1, 64, 4, 2)(x))   # (B, 9, 9, 64)
    x = nn.relu(conv(2, 64, 3, 1)(x))   # (B, 7, 7, 64)
    return nn.relu(_dense(512)(x.reshape((x.shape[0], -1))))


class MLPTorso(nn.Module):
  """For vector observations (classic control)."""
  hidden: Sequence[int] = (64, 64)
  activation: str = "tanh"

  @nn.compact
  def __call__(self, obs):
    act = {"tanh": nn.tanh, "relu": nn.relu}[self.activation]
    x = obs.reshape((obs.shape[0], -1)).astype(jnp.float32)
    for width in self.hidden:
      x = act(_dense(width)(x))
    return x


def make_torso(name: str, hidden: Sequence[int] = (64, 64), activation: str = "tanh",
               conv_as_matmul: bool = False) -> nn.Module:
  if name == "cnn":
    return NatureCNN(conv_as_matmul)
  if name == "mlp":
    return MLPTorso(tuple(hidden), activation)
  raise ValueError(f"Unknown torso {name!r}; use 'cnn' (Atari) or 'mlp' (vector observations).")


class ActorCritic(nn.Module):
  """Policy logits and state value from separate heads on one torso (PPO)."""
  torso: nn.Module
  num_actions: int

  @nn.compact
  def __call__(self, obs):  # obs: (B, ...) -> logits (B, A), value (B,)
    h = self.torso(obs)
    return _dense(self.num_actions, 0.01)(h), _dense(1, 1.0)(h)[:, 0]


class ActorCriticSeparate(nn.Module):
  """Policy and value with separate torsos (the usual choice for classic control)."""
  policy_torso: nn.Module
  value_torso: nn.Module
  num_actions: int

  @nn.compact
  def __call__(self, obs):
    logits = _dense(self.num_actions, 0.01)(self.policy_torso(obs))
    return logits, _dense(1, 1.0)(self.value_torso(obs))[:, 0]


class QNetwork(nn.Module):
  """Action values; with `dueling`, Q = V + A - mean(A) (Wang et al. 2016)."""
  torso: nn.Module
  num_actions: int
  dueling: bool = False

  @nn.compact
  def __call__(self, obs):  # obs: (B, ...) -> Q (B, A)
    h = self.torso(obs)
    if not self.dueling:
      return _dense(self.num_actions, 1.0)(h)
    value = _dense(1, 1.0)(h)
    advantage = _dense(self.num_actions, 1.0)(h)
    return value + advantage - advantage.mean(-1, keepdims=True)
