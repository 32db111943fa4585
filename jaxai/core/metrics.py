"""Metrics: running means between log steps, written as JSON lines and TensorBoard events.

Only process 0 writes; other processes get a writer that does nothing. `metrics.jsonl` holds one
object per logging event: {"step": int, "train/loss": float, ...}. A resumed run appends, so steps
after the restored checkpoint may appear twice; `read_metrics` keeps the last. The values agree when
checkpoint_every_steps is a multiple of log_every_steps (otherwise the first mean after a resume
covers fewer steps).
"""
import json
import math
import os
from typing import Any, Iterable, Mapping

import flax.struct
import jax
import numpy as np

from jaxai.core import summaries

METRICS_FILE = "metrics.jsonl"


@flax.struct.dataclass
class Ratio:
  """A metric averaged over events rather than steps, e.g. the return of episodes that finished:
  accumulate `total` and `count` per step; the logged value is sum(total) / sum(count)."""
  total: jax.Array
  count: jax.Array


class RunningMean:
  """Host-side means of scalar metrics since the last `result()`; `Ratio`s are pooled."""

  def __init__(self):
    self._sums, self._counts = {}, {}

  def add(self, metrics: Mapping[str, Any]):
    for k, v in metrics.items():
      total, count = (float(v.total), float(v.count)) if isinstance(v, Ratio) else (float(v), 1.0)
      self._sums[k] = self._sums.get(k, 0.0) + total
      self._counts[k] = self._counts.get(k, 0.0) + count

  def result(self) -> dict:
    out = {k: self._sums[k] / self._counts[k] for k in self._sums if self._counts[k] > 0}
    self._sums, self._counts = {}, {}
    return out


class MetricsWriter:
  """Writes scalars to `<workdir>/metrics.jsonl` and TensorBoard event files (process 0 only)."""

  def __init__(self, workdir: str, enabled: bool | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self.workdir = workdir
    self._tb = None
    self._file = None
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      self._file = open(os.path.join(workdir, METRICS_FILE), "a")
      from tensorboardX import SummaryWriter  # Writes event files without TensorFlow.
      self._tb = SummaryWriter(logdir=workdir, flush_secs=30)

  def write(self, step: int, scalars: Mapping[str, float]):
    if not self.enabled:
      return
    record = {"step": int(step)}
    record.update({k: _to_json(v) for k, v in sorted(scalars.items())})
    self._file.write(json.dumps(record) + "\n")
    self._file.flush()
    for k, v in scalars.items():
      self._tb.add_scalar(k, float(v), int(step))

  def write_text(self, step: int, tag: str, text: str):
    if self.enabled:
      self._tb.add_text(tag, text, int(step))

  def write_summaries(self, step: int, values: Mapping[str, Any]):
    """Scalars as `write` does; each `Text` and `Image` to TensorBoard and to a file under
    `<workdir>/<tag>/` (step_<step>.txt or step_<step>.png)."""
    self.write(step, summaries.scalars(values))
    if not self.enabled:
      return
    for tag, value in values.items():
      if summaries.is_scalar(value):
        continue
      directory = os.path.join(self.workdir, tag)
      os.makedirs(directory, exist_ok=True)
      name = os.path.join(directory, f"step_{int(step)}")
      if isinstance(value, summaries.Image):
        pixels = value.grid()
        from PIL import Image as PILImage
        PILImage.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(name + ".png")
        self._tb.add_image(tag, pixels, int(step), dataformats="HWC")
      else:
        text = value.text if isinstance(value, summaries.Text) else str(value)
        self.write_text(step, tag, text)
        with open(name + ".txt", "w") as f:
          f.write(text)

  def flush(self):
    if self.enabled:
      self._file.flush()
      self._tb.flush()

  def close(self):
    if self.enabled:
      self._file.close()
      self._tb.close()
      self.enabled = False


def _to_json(v):
  v = float(np.asarray(v))
  return v if math.isfinite(v) else str(v)  # JSON has no NaN/inf; keep them readable.


def read_metrics(workdir: str) -> list[dict]:
  """Records of `metrics.jsonl` in step order; for a step logged twice (resume), the later record wins."""
  by_key = {}
  with open(os.path.join(workdir, METRICS_FILE)) as f:
    for line in f:
      if line.strip():
        r = json.loads(line)
        by_key[(r["step"], tuple(sorted(r)))] = r
  return [by_key[k] for k in sorted(by_key, key=lambda k: k[0])]


def latest(records: Iterable[dict], key: str):
  """The last value logged for `key` (e.g. 'eval/accuracy'), or None."""
  values = [r[key] for r in records if key in r]
  return values[-1] if values else None
