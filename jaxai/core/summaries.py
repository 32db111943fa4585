"""Typed evaluation results: numbers are scalars; `Text` and `Image` say what else a value is.

The metrics writer puts scalars in metrics.jsonl and TensorBoard, texts in TensorBoard and
`<workdir>/<tag>/step_<N>.txt`, images in TensorBoard and `<workdir>/<tag>/step_<N>.png`.
"""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Text:
  text: str


@dataclasses.dataclass(frozen=True)
class Image:
  """One image (H, W, C) or a batch (N, H, W, C), tiled into a grid of `columns`. Pixels are uint8,
  or floats in [0, 1]; C is 1 (grey) or 3 (RGB)."""
  pixels: np.ndarray
  columns: int = 8

  def grid(self) -> np.ndarray:
    """(H', W', C) uint8: the batch tiled row by row with a 1-pixel gap, unused cells black."""
    x = np.asarray(self.pixels)
    if x.dtype != np.uint8:
      x = (np.clip(x.astype(np.float32), 0.0, 1.0) * 255).round().astype(np.uint8)
    if x.ndim == 2:
      x = x[..., None]
    if x.ndim == 3:
      return x
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
      raise ValueError(f"Image pixels must be (H, W, C) or (N, H, W, C) with C in (1, 3), got {x.shape}.")
    n, h, w, c = x.shape
    cols = max(1, min(self.columns, n))
    rows = -(-n // cols)
    out = np.zeros((rows * (h + 1) - 1, cols * (w + 1) - 1, c), np.uint8)
    for i in range(n):
      r, q = divmod(i, cols)
      out[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = x[i]
    return out


def is_scalar(value) -> bool:
  return not isinstance(value, (Text, Image, str))


def scalars(summaries: dict) -> dict:
  return {k: float(v) for k, v in summaries.items() if is_scalar(v)}
