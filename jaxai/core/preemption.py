"""Stopping at a step boundary on SIGTERM (preemption, time limits) or Ctrl-C."""
import signal
import threading

import jax
from jax.experimental import multihost_utils


class StopRequest:
  """Turns SIGTERM (what SLURM and preemptible TPU VMs send) and, in one process, Ctrl-C into a
  checkpoint at a step boundary followed by a clean return.

  With several processes, all must stop at the same step, whichever of them got the signal: JAX's
  preemption service (started by `jax.distributed.initialize`) catches SIGTERM, spreads the notice
  to every process and agrees on a step; `requested` polls it without blocking the device.
  """

  def __init__(self):
    self.signal = None
    self._multiprocess = jax.process_count() > 1

  def install(self):
    """Installs the handlers; returns a function that puts the previous ones back."""
    if self._multiprocess or threading.current_thread() is not threading.main_thread():
      return lambda: None

    def handler(signum, frame):
      self.signal = signal.Signals(signum).name

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(s, h) for s, h in previous.items()]

  def requested(self, step: int) -> str | None:
    """The signal's name if the run should save and stop after `step`; call at every step."""
    if self._multiprocess and multihost_utils.reached_preemption_sync_point(step):
      self.signal = "SIGTERM"
    return self.signal
