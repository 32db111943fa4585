"""Small CNNs of published federated and private-training experiments, layer for layer, so their
figures can be compared with the papers'.

FedAvgCNN   McMahan et al. 2017 ("CNN"): conv5x5 32 -> pool 2 -> conv5x5 64 -> pool 2 -> dense 512
            -> classes; 1,663,370 parameters on MNIST.
DPConvNet   Opacus' MNIST example (SampleConvNet): conv8x8/2 16 (pad 3) -> pool 2/1 -> conv4x4/2 32
            -> pool 2/1 -> dense 32 -> classes; 26,010 parameters. `group_norm` > 0 adds GroupNorm
            with that many groups after each convolution (a normalization without batch statistics,
            so per-example gradients stay per example).
"""
import flax.linen as nn


class FedAvgCNN(nn.Module):
  num_classes: int = 10
  features: tuple = (32, 64)
  dense: int = 512

  @nn.compact
  def __call__(self, x, train: bool = False, features: bool = False):
    # x: (B, 28, 28, C) -> logits (B, num_classes).
    for width in self.features:
      x = nn.relu(nn.Conv(width, (5, 5))(x))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = nn.relu(nn.Dense(self.dense)(x.reshape((x.shape[0], -1))))
    return x if features else nn.Dense(self.num_classes)(x)


class DPConvNet(nn.Module):
  num_classes: int = 10
  group_norm: int = 0

  def _norm(self, x):
    return nn.GroupNorm(num_groups=self.group_norm)(x) if self.group_norm else x

  @nn.compact
  def __call__(self, x, train: bool = False, features: bool = False):
    # x: (B, 28, 28, C) -> (B, 14, 14, 16) -> (B, 13, 13, 16) -> (B, 5, 5, 32) -> (B, 4, 4, 32) -> logits.
    x = nn.relu(self._norm(nn.Conv(16, (8, 8), strides=(2, 2), padding=((3, 3), (3, 3)))(x)))
    x = nn.max_pool(x, (2, 2), strides=(1, 1))
    x = nn.relu(self._norm(nn.Conv(32, (4, 4), strides=(2, 2), padding="VALID")(x)))
    x = nn.max_pool(x, (2, 2), strides=(1, 1))
    x = nn.relu(nn.Dense(32)(x.reshape((x.shape[0], -1))))
    return x if features else nn.Dense(self.num_classes)(x)
