"""The rows of each train step of a federated run: one local step of every client of the round.

Step t is round r = t // L, local step s = t % L of that round, epoch e = s // S and batch j = s % S
of it (S = ceil(n_max / B) batches per local epoch, L = E * S). The clients of round r are drawn
from rng([seed, r]) (m = round(C * K) without replacement, or each client with probability C under
DP-FedAvg, padded to `num_slots`); client k's order in epoch e from rng([seed, r, k, e]). Everything is
a function of (seed, step), so a resumed run sees exactly the rows of an uninterrupted one. A client
with fewer than n_max examples runs out of rows early in each epoch: its rows are masked and it
skips those local steps, so every client makes E * ceil(n_k / B) updates per round.

Batch (leading axis: client slots, split over the devices):
  image (slots, B, H, W, C) uint8, label (slots, B), mask (slots, B) bool,
  weight (slots,) float: n_k, the client's example count (0 for an empty slot).
"""
import math

import numpy as np

from jaxai.data.pipeline import process_rows
from jaxai.errors import UserError
from jaxai.tasks.federated.partition import fingerprint


class ClientSource:
  batch_axes = 0

  def __init__(self, arrays, split, sizes, *, local_batch_size: int, local_epochs: int,
               client_fraction: float, seed: int, poisson: bool, num_slots: int, partition: str):
    """arrays / split: functions returning the examples and the clients' index arrays (on first use);
    sizes: the clients' example counts (known without the data for a restored run)."""
    self._arrays, self._split, self._parts, self._fingerprint, self.seed = arrays, split, None, None, seed
    self.sizes = np.asarray(sizes)
    self.num_clients, self.fraction, self.poisson = len(sizes), client_fraction, poisson
    n_max = int(self.sizes.max())
    self.rows_per_step = local_batch_size or n_max  # B = 0: the whole client (FedSGD).
    self.batches_per_epoch = math.ceil(n_max / self.rows_per_step)
    self.local_steps = local_epochs * self.batches_per_epoch  # L: train steps per round.
    self.num_slots, self.partition = num_slots, partition
    self._placement, self._round, self._round_clients = None, None, None

  @property
  def parts(self) -> list[np.ndarray]:
    if self._parts is None:
      self._parts = self._split()
      if [len(p) for p in self._parts] != list(self.sizes):
        raise UserError("The clients' example counts differ from this run's facts.json: the data or "
                        "config.fl's partition settings changed; use a new --workdir.")
    return self._parts

  @property
  def partition_crc32(self) -> int:
    if self._fingerprint is None:
      self._fingerprint = fingerprint(self.parts)
    return self._fingerprint

  @property
  def arrays(self) -> dict:
    if callable(self._arrays):
      self._arrays = dict(self._arrays())
    return self._arrays

  def clients(self, round_index: int) -> np.ndarray:
    """The client ids of a round (sorted; at most num_slots: Poisson overflow is dropped)."""
    rng = np.random.default_rng([self.seed, round_index])
    if self.poisson:
      return np.flatnonzero(rng.random(self.num_clients) < self.fraction)[:self.num_slots]
    m = max(1, round(self.fraction * self.num_clients))
    return np.sort(rng.choice(self.num_clients, m, replace=False))

  def open(self, placement, rng=None) -> None:
    if self.num_slots % placement.mesh.size:
      raise UserError(f"{self.num_slots} client slots do not split over {placement.mesh.size} devices.")
    self._placement = placement

  def batch(self, step: int) -> dict:
    """This process's client slots of the step's rows (numpy)."""
    r, s = divmod(step, self.local_steps)
    epoch, j = divmod(s, self.batches_per_epoch)
    if self._round != r:
      self._round, self._round_clients = r, self.clients(r)
    chosen, b = self._round_clients, self.rows_per_step
    image = self.arrays["image"]
    out = {"image": np.zeros((self.num_slots, b) + image.shape[1:], image.dtype),
           "label": np.zeros((self.num_slots, b), np.int32), "mask": np.zeros((self.num_slots, b), bool),
           "weight": np.zeros((self.num_slots,), np.float32)}
    for slot, k in enumerate(chosen):
      order = np.random.default_rng([self.seed, r, int(k), epoch]).permutation(self.sizes[k])
      rows = self.parts[k][order[j * b:(j + 1) * b]]
      out["image"][slot, :len(rows)] = image[rows]
      out["label"][slot, :len(rows)] = self.arrays["label"][rows]
      out["mask"][slot, :len(rows)] = True
      out["weight"][slot] = self.sizes[k]
    mine = process_rows(self.num_slots)
    return {k: v[mine] for k, v in out.items()}

  def rows(self, step: int, state=None):
    return self._placement.global_batch(self.batch(step), self.batch_axes), {}

  def position(self, step: int) -> dict:
    r, s = divmod(step, self.local_steps)
    return {"step": step, "round": r, "local_step": s, "seed": self.seed, "partition": self.partition,
            "partition_crc32": self.partition_crc32, "num_clients": self.num_clients}
