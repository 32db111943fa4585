"""CIFAR-style ResNet (He et al. 2016): 3x3 stem, no initial pooling, stages of basic blocks.

`stage_sizes=(2, 2, 2, 2), width=64` is the ResNet-18 widely used for CIFAR-10 (~11M parameters).
BatchNorm statistics live in the 'batch_stats' collection of the train state. Under `jax.jit` over
a data-sharded batch, the batch mean/variance are computed over the *global* batch, so the
statistics are averaged across devices without any explicit collective.
"""
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class BasicBlock(nn.Module):
  features: int
  strides: int = 1

  @nn.compact
  def __call__(self, x, train: bool):
    norm = lambda **kw: nn.BatchNorm(use_running_average=not train, momentum=0.9, **kw)
    y = nn.Conv(self.features, (3, 3), (self.strides, self.strides), use_bias=False)(x)
    y = nn.relu(norm()(y))
    y = nn.Conv(self.features, (3, 3), use_bias=False)(y)
    y = norm(scale_init=nn.initializers.zeros)(y)  # each block starts as the identity.
    if x.shape != y.shape:  # projection shortcut when the shape changes.
      x = nn.Conv(self.features, (1, 1), (self.strides, self.strides), use_bias=False)(x)
      x = norm()(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  width: int = 64          # channels of the first stage; doubles at every later stage.
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, train: bool = False):  # x: (B, 32, 32, 3) -> logits (B, num_classes)
    x = nn.Conv(self.width, (3, 3), use_bias=False)(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
    for stage, blocks in enumerate(self.stage_sizes):
      for block in range(blocks):
        strides = 2 if stage > 0 and block == 0 else 1
        x = BasicBlock(self.width * 2**stage, strides)(x, train)
    x = jnp.mean(x, axis=(1, 2))  # global average pool: (B, channels)
    return nn.Dense(self.num_classes)(x)
