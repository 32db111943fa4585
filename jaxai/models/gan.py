"""DCGAN networks for 28x28 images: a transposed-convolution generator and a convolutional
discriminator, both optionally class-conditional.

Conditioning: the generator concatenates a learned label embedding to the noise; the discriminator
is a projection discriminator (Miyato & Koyama 2018): logit = w . h + <embed(y), h>, h its pooled
features. The generator upsamples by stride-2 transposed convolutions, by default computed in their
sub-pixel form (`upsample='subpixel'`: a 3x3 convolution at the input resolution making the 4 output
phases, then depth-to-space; Shi et al. 2016), the same function class as a 6x6 stride-2 transposed
convolution and ~10x faster to differentiate on XLA:CPU than nn.ConvTranspose ('transpose', 4x4).
Neither network keeps mutable state (LayerNorm over channels, no BatchNorm), so the
generator's EMA weights are all a sampler needs.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp


UPSAMPLES = ("subpixel", "transpose")


class Upsample2x(nn.Module):
  """(N, H, W, Cin) -> (N, 2H, 2W, features): a stride-2 transposed convolution."""
  features: int
  kind: str = "subpixel"

  @nn.compact
  def __call__(self, x):
    if self.kind == "transpose":
      return nn.ConvTranspose(self.features, (4, 4), strides=(2, 2), padding="SAME")(x)
    n, h, w, _ = x.shape
    y = nn.Conv(4 * self.features, (3, 3), padding="SAME")(x)                   # (N, H, W, 4F): 2x2 phases
    y = y.reshape(n, h, w, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)      # (N, H, 2, W, 2, F)
    return y.reshape(n, 2 * h, 2 * w, self.features)


class Generator(nn.Module):
  """(N, latent_dim) noise [+ (N,) labels] -> (N, H, W, C) images in [-1, 1] (tanh)."""
  image_shape: tuple[int, int, int] = (28, 28, 1)
  features: int = 64          # channels at the 14x14 stage; 2x at 7x7.
  num_classes: int = 0        # 0 = unconditional.
  embed_dim: int = 32
  upsample: str = "subpixel"  # one of UPSAMPLES.

  @nn.compact
  def __call__(self, z, labels=None):
    h_out, w_out, c_out = self.image_shape
    if h_out % 4 or w_out % 4:
      raise ValueError(f"Generator makes images whose sides are multiples of 4, not {self.image_shape}.")
    if self.num_classes:
      z = jnp.concatenate([z, nn.Embed(self.num_classes, self.embed_dim, name="label_embed")(labels)], -1)
    h, w = h_out // 4, w_out // 4
    x = nn.Dense(h * w * 2 * self.features)(z).reshape(z.shape[0], h, w, 2 * self.features)  # (N, 7, 7, 2F)
    x = nn.leaky_relu(nn.LayerNorm()(x), 0.2)
    x = Upsample2x(self.features, self.upsample)(x)                                           # (N, 14, 14, F)
    x = nn.leaky_relu(nn.LayerNorm()(x), 0.2)
    x = Upsample2x(c_out, self.upsample)(x)                                                   # (N, 28, 28, C)
    return jnp.tanh(x)


class Discriminator(nn.Module):
  """(N, H, W, C) images in [-1, 1] [+ (N,) labels] -> (N,) logits of 'real'."""
  features: int = 64          # channels at 14x14; 2x at 7x7.
  num_classes: int = 0

  @nn.compact
  def __call__(self, x, labels=None):
    x = nn.Conv(self.features, (4, 4), strides=(2, 2), padding="SAME")(x)       # (N, 14, 14, F)
    x = nn.leaky_relu(x, 0.2)
    x = nn.Conv(2 * self.features, (4, 4), strides=(2, 2), padding="SAME")(x)   # (N, 7, 7, 2F)
    x = nn.leaky_relu(nn.LayerNorm()(x), 0.2)
    h = x.reshape(x.shape[0], -1)                                               # (N, 49*2F)
    h = nn.leaky_relu(nn.Dense(4 * self.features)(h), 0.2)                      # (N, 4F)
    logit = nn.Dense(1)(h)[:, 0]
    if self.num_classes:
      projection = nn.Embed(self.num_classes, h.shape[-1], name="label_projection",
                            embedding_init=nn.initializers.normal(0.02))(labels)  # (N, 4F)
      logit = logit + jnp.sum(projection * h, -1)
    return logit


def make_networks(model_config, image_shape, num_classes: int) -> tuple[Generator, Discriminator]:
  """(G, D) from config.model (g_features, d_features, embed_dim, upsample); num_classes 0 = unconditional."""
  return (Generator(tuple(image_shape), model_config.g_features, num_classes, model_config.embed_dim,
                    model_config.upsample),
          Discriminator(model_config.d_features, num_classes))


def count_params(params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))
