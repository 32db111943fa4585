"""A small convolutional classifier for 28x28 (or smaller) images.

Blocks of [conv3x3 -> BatchNorm -> relu] x convs_per_block (2) -> max-pool, then a dense head with dropout. With
`batch_norm=False` it has no mutable state. `features=True` returns the penultimate layer (the
features of the Frechet distance, jaxai.ops.frechet).
"""
from typing import Sequence

import flax.linen as nn


class CNN(nn.Module):
  features: Sequence[int] = (32, 64)  # channels of each block; each block halves H and W.
  dense: int = 256
  num_classes: int = 10
  dropout_rate: float = 0.0
  batch_norm: bool = True
  convs_per_block: int = 2

  @nn.compact
  def __call__(self, x, train: bool = False, features: bool = False):
    # x: (B, H, W, C) -> logits (B, num_classes), or with `features` the penultimate layer (B, dense).
    for width in self.features:
      for _ in range(self.convs_per_block):
        x = nn.Conv(width, (3, 3), use_bias=not self.batch_norm)(x)
        if self.batch_norm:
          x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.relu(x)
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = nn.relu(nn.Dense(self.dense)(x))
    if features:
      return x
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)
