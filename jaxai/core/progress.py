"""The console progress line: step, loss, steps/s and time remaining."""
import math
import time


class Progress:
  """Console progress: step, loss, steps/s and time remaining."""

  def __init__(self, start_step: int, total: int):
    self.total, self._t, self._step = total, time.perf_counter(), start_step

  def rate(self, step: int) -> float:
    now = time.perf_counter()
    rate = (step - self._step) / max(now - self._t, 1e-9)
    self._t, self._step = now, step
    return rate

  def line(self, step: int, scalars: dict, rate: float) -> str:
    remaining = (self.total - step) / rate if rate > 0 else float("inf")
    loss = scalars.get("train/loss", float("nan"))
    eta = time.strftime("%H:%M:%S", time.gmtime(remaining)) if math.isfinite(remaining) else "?"
    return f"step {step}/{self.total}  loss {loss:.4f}  {rate:.2f} steps/s  eta {eta}"
