"""Image preprocessing and augmentation, on device, inside the jitted step."""
import jax
import jax.numpy as jnp


def normalize(images, mean, std):
  """uint8 (B, H, W, C) -> float32, per-channel standardized with the training set's statistics."""
  return (images.astype(jnp.float32) - mean) / std


def random_crop(rng, images, padding: int):
  """Zero-pads each side by `padding` and crops back to the original size at a random offset per image."""
  if padding <= 0:
    return images
  b, h, w, _ = images.shape
  padded = jnp.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  offsets = jax.random.randint(rng, (b, 2), 0, 2 * padding + 1)
  crop = lambda img, off: jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, img.shape[-1]))
  return jax.vmap(crop)(padded, offsets)


def random_flip(rng, images):
  """Flips each image left-right with probability 1/2."""
  flip = jax.random.bernoulli(rng, 0.5, (images.shape[0], 1, 1, 1))
  return jnp.where(flip, images[:, :, ::-1, :], images)
