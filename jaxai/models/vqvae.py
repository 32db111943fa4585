"""A VQ-VAE image tokenizer (van den Oord et al. 2017): images -> a grid of discrete codes -> images.

  encoder: [0, 1] images (B, H, W, C) -> two stride-2 convolutions -> residual blocks -> z_e (B, H/4, W/4, D)
  quantize: each z_e vector -> the index of its nearest codebook vector (squared distance)
  decoder: codebook vectors (B, H/4, W/4, D) -> residual blocks -> two stride-2 transposed convolutions
           -> pixel logits (B, H, W, C) (Bernoulli intensities: sigmoid gives [0, 1])

28x28 images become 7x7 = 49 codes. The codebook is not a parameter: it lives in the 'codebook' collection
(`embedding` (K, D) and its EMA statistics `cluster_size` (K,), `embed_sum` (K, D)) and is updated by
`ema_update` (exponential moving averages of the encoder outputs assigned to each code), so the training
loss needs no codebook term. `__call__` passes gradients straight through the quantization
(z_e + stop_gradient(z_q - z_e)).
"""
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class ResBlock(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x):  # (B, h, w, F) -> (B, h, w, F)
    y = nn.Conv(self.features, (3, 3))(nn.relu(x))
    y = nn.Conv(self.features, (1, 1))(nn.relu(y))
    return x + y


class Encoder(nn.Module):
  features: Sequence[int]  # channels after the first and the second downsampling.
  code_dim: int
  num_res_blocks: int = 1

  @nn.compact
  def __call__(self, x):  # (B, H, W, C) in [0, 1] -> (B, H/4, W/4, code_dim)
    x = 2.0 * x - 1.0
    x = nn.relu(nn.Conv(self.features[0], (4, 4), strides=(2, 2))(x))
    x = nn.Conv(self.features[1], (4, 4), strides=(2, 2))(x)
    for _ in range(self.num_res_blocks):
      x = ResBlock(self.features[1])(x)
    return nn.Conv(self.code_dim, (1, 1))(nn.relu(x))


class Decoder(nn.Module):
  features: Sequence[int]
  out_channels: int
  num_res_blocks: int = 1

  @nn.compact
  def __call__(self, z):  # (B, h, w, D) -> (B, 4h, 4w, out_channels) logits
    x = nn.Conv(self.features[1], (3, 3))(z)
    for _ in range(self.num_res_blocks):
      x = ResBlock(self.features[1])(x)
    x = nn.relu(nn.ConvTranspose(self.features[0], (4, 4), strides=(2, 2))(nn.relu(x)))
    x = nn.relu(nn.ConvTranspose(self.features[0], (4, 4), strides=(2, 2))(x))
    return nn.Conv(self.out_channels, (3, 3))(x)


def quantize(z, codebook):
  """(..., D) vectors, (K, D) codebook -> ((..., D) nearest codebook vectors, (...) int32 their indices)."""
  flat = z.reshape(-1, z.shape[-1])
  distances = (jnp.sum(flat ** 2, -1, keepdims=True) - 2.0 * flat @ codebook.T
               + jnp.sum(codebook ** 2, -1)[None])  # (N, K)
  codes = jnp.argmin(distances, -1).astype(jnp.int32).reshape(z.shape[:-1])
  return codebook[codes], codes


def ema_update(codebook_vars: dict, z, codes, decay: float, eps: float = 1e-5) -> dict:
  """The codebook after one EMA step on encoder outputs z (..., D) assigned to `codes` (...).

  cluster_size <- decay * cluster_size + (1 - decay) * counts, embed_sum likewise with the assigned
  vectors' sums; embedding = embed_sum / cluster_size (Laplace-smoothed so no size is zero)."""
  k = codebook_vars["embedding"].shape[0]
  flat, flat_codes = z.reshape(-1, z.shape[-1]), codes.reshape(-1)
  onehot = jax.nn.one_hot(flat_codes, k, dtype=flat.dtype)  # (N, K)
  size = decay * codebook_vars["cluster_size"] + (1 - decay) * onehot.sum(0)
  embed_sum = decay * codebook_vars["embed_sum"] + (1 - decay) * onehot.T @ flat
  total = size.sum()
  smoothed = (size + eps) / (total + k * eps) * total
  return {"embedding": embed_sum / smoothed[:, None], "cluster_size": size, "embed_sum": embed_sum}


def restart_dead_codes(codebook_vars: dict, z, rng, threshold: float) -> dict:
  """Codes whose EMA cluster size (assigned vectors per batch) fell below `threshold` < 1 take a random
  encoder output of this batch as their vector, with a cluster size of 1, so that an unused code has
  log(threshold) / log(decay) steps to attract vectors before it is restarted again."""
  flat = z.reshape(-1, z.shape[-1])
  k = codebook_vars["embedding"].shape[0]
  dead = codebook_vars["cluster_size"] < threshold  # (K,)
  picks = flat[jax.random.randint(rng, (k,), 0, flat.shape[0])]  # (K, D) a candidate for each code.
  size = jnp.where(dead, 1.0, codebook_vars["cluster_size"])
  embedding = jnp.where(dead[:, None], picks, codebook_vars["embedding"])
  return {"embedding": embedding, "cluster_size": size, "embed_sum": embedding * size[:, None]}


def perplexity(codes, num_codes: int, weights=None):
  """exp(entropy) of the codes' histogram: the number of codes in effective use (1 .. num_codes)."""
  onehot = jax.nn.one_hot(codes.reshape(codes.shape[0], -1), num_codes)  # (B, T, K)
  if weights is not None:
    onehot = onehot * weights[:, None, None]
  p = onehot.sum((0, 1)) / jnp.maximum(onehot.sum(), 1.0)
  return jnp.exp(-jnp.sum(p * jnp.log(p + 1e-10)))


class VQVAE(nn.Module):
  num_codes: int = 256
  code_dim: int = 32
  features: Sequence[int] = (32, 64)
  num_res_blocks: int = 1
  out_channels: int = 1

  def setup(self):
    if len(self.features) != 2:
      raise ValueError(f"features={self.features} must give 2 widths (one per downsampling).")
    self.encoder = Encoder(self.features, self.code_dim, self.num_res_blocks)
    self.decoder = Decoder(self.features, self.out_channels, self.num_res_blocks)
    init = lambda: jax.random.normal(self.make_rng("params"), (self.num_codes, self.code_dim))
    self.embedding = self.variable("codebook", "embedding", init)
    # Zero statistics: the first EMA step sets each used code to the mean of its vectors, and every
    # unused one is restarted from the data (restart_dead_codes).
    self.cluster_size = self.variable("codebook", "cluster_size", jnp.zeros, (self.num_codes,))
    self.embed_sum = self.variable("codebook", "embed_sum", jnp.zeros, (self.num_codes, self.code_dim))

  def encode(self, x):  # (B, H, W, C) [0, 1] -> z_e (B, h, w, D)
    return self.encoder(x)

  def codes(self, x):  # (B, H, W, C) [0, 1] -> (B, h, w) int32
    return quantize(self.encoder(x), self.embedding.value)[1]

  def decode(self, codes):  # (B, h, w) int32 -> pixel logits (B, H, W, C)
    return self.decoder(self.embedding.value[codes])

  def __call__(self, x):
    """Images -> {'logits' (B, H, W, C), 'z_e', 'z_q' (B, h, w, D), 'codes' (B, h, w)}; the decoder reads
    z_q with straight-through gradients to the encoder."""
    z_e = self.encoder(x)
    z_q, codes = quantize(z_e, self.embedding.value)
    logits = self.decoder(z_e + jax.lax.stop_gradient(z_q - z_e))
    return {"logits": logits, "z_e": z_e, "z_q": z_q, "codes": codes}
