"""A JAX profiler trace of a window of train steps (`config.profile_steps`)."""
import os

import jax
from absl import logging


class Profiler:
  """Records a JAX profiler trace (for TensorBoard's profile plugin or Perfetto) of a window of steps."""

  def __init__(self, config, start: int, workdir: str):
    n = config.get("profile_steps", 0)
    self.first = start + config.get("profile_after_steps", 0) if n else None
    self.end = self.first + n if n else None
    self.directory = os.path.join(workdir, "profile")
    self.active = False

  def edge(self, step: int) -> bool:
    """Whether the window starts or ends after `step` steps (a multi-step call must end there)."""
    return self.first is not None and step in (self.first, self.end)

  def before(self, step: int):
    if step == self.first:
      jax.profiler.start_trace(self.directory)
      self.active = True

  def after(self, done: int, state, final: bool):
    if self.active and (done == self.end or final):
      jax.block_until_ready(state)
      jax.profiler.stop_trace()
      self.active = False
      logging.info("Profiler trace of steps %d-%d written to %s", self.first + 1, done, self.directory)

  def close(self):
    """Ends a trace cut short (a stop request or an error): what was recorded is kept."""
    if self.active:
      jax.profiler.stop_trace()
      self.active = False
