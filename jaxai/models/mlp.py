"""A multilayer perceptron classifier."""
from typing import Sequence

import flax.linen as nn


class MLP(nn.Module):
  hidden: Sequence[int] = (512, 512)
  num_classes: int = 10
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False, features: bool = False):
    # x: (B, ...) -> logits (B, num_classes), or with `features` the last hidden layer (B, hidden[-1]).
    x = x.reshape((x.shape[0], -1))
    for width in self.hidden:
      x = nn.relu(nn.Dense(width)(x))
      if features and width is self.hidden[-1]:
        return x
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes)(x)
