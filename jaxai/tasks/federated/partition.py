"""How the training examples are split among simulated clients (pure numpy, seeded).

  'iid'        a random permutation cut into K near-equal parts.
  'shards'     McMahan et al. 2017's pathological non-IID split: examples sorted by label, cut into
               K * shards_per_client equal shards, each client gets shards_per_client random ones
               (with 2, most clients see two digits).
  'dirichlet'  per class, proportions over clients drawn from Dir(alpha) (Hsu et al. 2019): small
               alpha, few classes per client; redrawn until every client has an example.
"""
import zlib

import numpy as np

from jaxai.errors import UserError

PARTITIONS = ("iid", "shards", "dirichlet")


def check(kind: str, num_examples: int, num_clients: int, *, shards_per_client: int = 2,
          alpha: float = 0.5) -> None:
  if kind not in PARTITIONS:
    raise UserError(f"config.fl.partition={kind!r} is unknown; use one of {PARTITIONS}.")
  if not 1 <= num_clients <= num_examples:
    raise UserError(f"config.fl.num_clients={num_clients} must be between 1 and the {num_examples} "
                    "training examples (every client needs data); lower it or raise max_train_examples.")
  if kind == "shards":
    if shards_per_client < 1:
      raise UserError(f"config.fl.shards_per_client={shards_per_client} must be >= 1.")
    if num_clients * shards_per_client > num_examples:
      raise UserError(f"config.fl.partition='shards' needs {num_clients} x {shards_per_client} = "
                      f"{num_clients * shards_per_client} shards, more shards than the {num_examples} "
                      "examples: lower num_clients or shards_per_client.")
  if kind == "dirichlet" and not alpha > 0:
    raise UserError(f"config.fl.dirichlet_alpha={alpha} must be > 0 (small: skewed, large: near IID).")


def partition(labels: np.ndarray, num_clients: int, kind: str, seed: int, *, shards_per_client: int = 2,
              alpha: float = 0.5) -> list[np.ndarray]:
  """Sorted example indices of each of `num_clients` clients; disjoint, and covering the data
  (except the few examples 'shards' leaves over when they do not divide evenly)."""
  n = len(labels)
  check(kind, n, num_clients, shards_per_client=shards_per_client, alpha=alpha)
  rng = np.random.default_rng([seed, zlib.crc32(kind.encode())])
  if kind == "iid":
    parts = np.array_split(rng.permutation(n), num_clients)
  elif kind == "shards":
    order = rng.permutation(n)
    order = order[np.argsort(labels[order], kind="stable")]  # by label, random within a label.
    count = num_clients * shards_per_client
    size = n // count
    shards = order[:count * size].reshape(count, size)
    owner = rng.permutation(count).reshape(num_clients, shards_per_client)
    parts = [shards[o].reshape(-1) for o in owner]
  else:
    parts = _dirichlet(labels, num_clients, alpha, rng)
  return [np.sort(p) for p in parts]


def _dirichlet(labels, num_clients, alpha, rng, attempts: int = 100):
  for _ in range(attempts):
    parts = [[] for _ in range(num_clients)]
    for c in np.unique(labels):
      idx = rng.permutation(np.flatnonzero(labels == c))
      cuts = (np.cumsum(rng.dirichlet(np.full(num_clients, alpha))) * len(idx)).astype(int)[:-1]
      for k, piece in enumerate(np.split(idx, cuts)):
        parts[k].append(piece)
    parts = [np.concatenate(p) for p in parts]
    if min(len(p) for p in parts) > 0:
      return parts
  raise UserError(f"config.fl.dirichlet_alpha={alpha}: {attempts} draws left some of the {num_clients} "
                  "clients without data; raise dirichlet_alpha or lower num_clients.")


def fingerprint(parts: list[np.ndarray]) -> int:
  """A checksum of the partition, saved with checkpoints: a resume with another split is noticed."""
  crc = 0
  for p in parts:
    crc = zlib.crc32(np.asarray(p, np.int64).tobytes(), crc)
  return crc


def label_counts(labels: np.ndarray, parts: list[np.ndarray], num_classes: int) -> np.ndarray:
  """(clients, classes) example counts: how skewed the partition is."""
  return np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])
