"""A variational autoencoder with one stochastic layer: a Gaussian encoder q(z|x) and a Bernoulli
decoder p(x|z), both MLPs (the IWAE paper's one-stochastic-layer model: 2x200 tanh, 50 latents).

With `num_classes` > 0 the model is conditional: a one-hot label is concatenated to the encoder's
input and to the decoder's latent code. The objectives (ELBO, importance-weighted bound) live in the
task (jaxai.tasks.generative.vae); this module only maps arrays.
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = {"tanh": jnp.tanh, "relu": nn.relu, "elu": nn.elu, "softplus": nn.softplus}


class MLP(nn.Module):
  hidden: Sequence[int]
  out: int
  activation: str = "tanh"

  @nn.compact
  def __call__(self, x):
    act = ACTIVATIONS[self.activation]
    for width in self.hidden:
      x = act(nn.Dense(width)(x))
    return nn.Dense(self.out)(x)


class VAE(nn.Module):
  """encode(x, y) -> (mean, log_std) of q(z|x, y); decode(z, y) -> Bernoulli logits of p(x|z, y).

  x: (..., D) pixels in [0, 1], flattened; z: (..., latents); y: (...,) int class ids or None.
  """
  num_pixels: int
  hidden: Sequence[int] = (200, 200)
  latents: int = 50
  activation: str = "tanh"
  num_classes: int = 0           # > 0: conditional on the label.

  def setup(self):
    self.encoder = MLP(self.hidden, 2 * self.latents, self.activation)
    self.decoder = MLP(tuple(reversed(self.hidden)), self.num_pixels, self.activation)

  def _with_label(self, h, y):
    if not self.num_classes:
      return h
    onehot = jax.nn.one_hot(y, self.num_classes, dtype=h.dtype)
    onehot = jnp.broadcast_to(onehot, h.shape[:-1] + (self.num_classes,))
    return jnp.concatenate([h, onehot], -1)

  def encode(self, x, y=None):
    mean, log_std = jnp.split(self.encoder(self._with_label(x, y)), 2, axis=-1)
    return mean, log_std

  def decode(self, z, y=None):
    return self.decoder(self._with_label(z, y))

  def __call__(self, x, y=None):
    """Logits of the reconstruction from the posterior mean (used for init)."""
    mean, _ = self.encode(x, y)
    return self.decode(mean, y)
