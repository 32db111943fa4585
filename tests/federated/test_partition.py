"""Client partitions: disjoint, covering the data, with the skew each kind promises; bad settings
are UserErrors."""
import numpy as np
import pytest

from jaxai.errors import UserError
from jaxai.tasks.federated import partition as P


def labels(n=2000, classes=10, seed=0):
  return np.random.default_rng(seed).integers(0, classes, n)


@pytest.mark.parametrize("kind", P.PARTITIONS)
def test_partitions_are_disjoint_cover_the_data_and_are_seeded(kind):
  y = labels()
  parts = P.partition(y, 20, kind, seed=1, alpha=0.3)
  everything = np.concatenate(parts)
  assert len(everything) == len(set(everything.tolist()))  # disjoint.
  assert set(everything.tolist()) == set(range(len(y)))  # 2000 = 20 x 2 x 50: shards cover it too.
  assert all(len(p) > 0 for p in parts)
  again = P.partition(y, 20, kind, seed=1, alpha=0.3)
  assert all(np.array_equal(a, b) for a, b in zip(parts, again))
  assert P.fingerprint(parts) == P.fingerprint(again) != P.fingerprint(P.partition(y, 20, kind, seed=2, alpha=0.3))


def test_each_kind_has_its_skew():
  y = labels()
  distinct = lambda kind, **kw: (P.label_counts(y, P.partition(y, 20, kind, seed=0, **kw), 10) > 0).sum(1)
  iid = P.label_counts(y, P.partition(y, 20, "iid", seed=0), 10)
  assert (iid > 0).all() and np.ptp([len(p) for p in P.partition(y, 20, "iid", seed=0)]) <= 1
  assert (iid.max(1) / iid.sum(1)).max() < 0.25  # no label dominates an IID client (1/10 expected).
  shards = distinct("shards")  # McMahan's split: 2 sorted shards, each of one label but at a boundary.
  assert shards.max() <= 4 and shards.mean() < 3 and (shards <= 2).mean() >= 0.5
  skewed, mild = distinct("dirichlet", alpha=0.1).mean(), distinct("dirichlet", alpha=100.0).mean()
  assert skewed < 6 < mild  # smaller alpha, fewer labels per client.


@pytest.mark.parametrize("kwargs, match", [
    (dict(kind="shards", num_clients=600), "more shards than the 1000 examples"),
    (dict(kind="iid", num_clients=0), "num_clients=0"),
    (dict(kind="iid", num_clients=1001), "num_clients=1001"),
    (dict(kind="dirichlet", num_clients=10, alpha=0.0), "dirichlet_alpha=0.0"),
    (dict(kind="bogus", num_clients=10), "unknown"),
])
def test_bad_partition_settings_are_user_errors(kwargs, match):
  kind, k = kwargs.pop("kind"), kwargs.pop("num_clients")
  with pytest.raises(UserError, match=match):
    P.partition(labels(1000), k, kind, seed=0, **kwargs)
