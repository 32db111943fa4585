"""Saliency heatmaps drawn over their images: a small colormap and an alpha blend, in jax.numpy (works on
numpy inputs too, inside or outside jit)."""
import jax
import jax.numpy as jnp

# A dark-blue -> purple -> red -> orange -> pale-yellow ramp: brightness rises monotonically with the
# value, so it also reads in greyscale. (position in [0, 1], R, G, B)
_ANCHORS = ((0.00, 0.05, 0.03, 0.35),
            (0.30, 0.45, 0.07, 0.58),
            (0.55, 0.85, 0.20, 0.30),
            (0.80, 1.00, 0.60, 0.05),
            (1.00, 1.00, 1.00, 0.70))


def colormap(values) -> jax.Array:
  """(...,) values in [0, 1] (clipped) -> (..., 3) RGB in [0, 1]."""
  v = jnp.clip(jnp.asarray(values, jnp.float32), 0.0, 1.0)
  anchors = jnp.asarray(_ANCHORS, jnp.float32)  # (A, 4)
  channels = [jnp.interp(v.ravel(), anchors[:, 0], anchors[:, c]).reshape(v.shape) for c in (1, 2, 3)]
  return jnp.stack(channels, axis=-1)


def to_rgb(images) -> jax.Array:
  """(B, H, W, C) uint8 or float [0, 1], C in (1, 3) -> (B, H, W, 3) float [0, 1]."""
  x = jnp.asarray(images)
  x = x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)
  return jnp.broadcast_to(x, x.shape[:-1] + (3,)) if x.shape[-1] == 1 else x


def overlay(images, heatmaps, alpha: float = 0.75, dim: float = 0.6) -> jax.Array:
  """(B, H, W, 3) RGB in [0, 1]: the image in grey (scaled by `dim` so colours stand out) blended with
  colormap(heatmap), each pixel's weight alpha * heatmap: unsalient pixels show the image.

  images (B, H, W, C) uint8 or float [0, 1], C in (1, 3); heatmaps (B, H, W) in [0, 1] (`saliency.heatmap`).
  """
  rgb = to_rgb(images)
  grey = dim * jnp.mean(rgb, axis=-1, keepdims=True)  # (B, H, W, 1)
  h = jnp.clip(jnp.asarray(heatmaps, jnp.float32), 0.0, 1.0)[..., None]  # (B, H, W, 1)
  weight = alpha * h
  return jnp.clip((1.0 - weight) * grey + weight * colormap(h[..., 0]), 0.0, 1.0)
