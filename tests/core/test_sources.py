"""The core's dataset source: batches are a pure, per-process-sliced function of (seed, step): a fresh
permutation each epoch (without replacement), uniform draws with replacement, or Poisson sampling with
a per-row mask."""
import numpy as np
import pytest

from jaxai.core.sources import DatasetSource
from jaxai.errors import UserError
from tests.helpers import indexed


def test_shuffled_batches_are_deterministic_per_seed():
  arrays = indexed(100)
  a, b, c = (DatasetSource(arrays, 10, seed=s) for s in (3, 3, 4))
  steps = [25, 0, 7, 31, 7]  # random access, out of order, across epochs.
  for step in steps:
    np.testing.assert_array_equal(a.batch(step)["index"], b.batch(step)["index"])
  # Any access order gives the same batches.
  fresh = DatasetSource(arrays, 10, seed=3)
  for step in reversed(steps):
    np.testing.assert_array_equal(fresh.batch(step)["index"], a.batch(step)["index"])
  assert any(not np.array_equal(a.indices(s)[0], c.indices(s)[0]) for s in range(10))


@pytest.mark.parametrize("processes", [2, 4])
def test_process_rows_partition_the_global_batch(processes):
  arrays, batch = indexed(103), 12
  whole = DatasetSource(arrays, batch, seed=0, process_index=0, process_count=1)
  parts = [DatasetSource(arrays, batch, seed=0, process_index=p, process_count=processes)
           for p in range(processes)]
  for step in (0, 1, 8, 9, 20):
    rows = [p.batch(step) for p in parts]
    assert all(len(r["index"]) == batch // processes for r in rows)
    joined = np.concatenate([r["index"] for r in rows])
    assert sorted(joined) == sorted(whole.indices(step)[0])  # a partition of the global batch...
    np.testing.assert_array_equal(joined, whole.batch(step)["index"])  # ...same rows as one process.
    np.testing.assert_array_equal(np.concatenate([r["image"] for r in rows]), arrays["image"][joined])


@pytest.mark.parametrize("n, batch", [(100, 10), (103, 10)])
def test_each_epoch_is_a_permutation(n, batch):
  data = DatasetSource(indexed(n), batch, seed=1)
  assert data.steps_per_epoch == n // batch
  epochs = []
  for epoch in range(3):
    steps = range(epoch * data.steps_per_epoch, (epoch + 1) * data.steps_per_epoch)
    seen = np.concatenate([data.batch(s)["index"] for s in steps])
    assert len(seen) == len(set(seen)) == data.steps_per_epoch * batch  # no repeats within an epoch.
    assert set(seen) <= set(range(n))
    assert data.position(steps[0]) == {"step": steps[0], "epoch": epoch, "batch_in_epoch": 0, "seed": 1,
                                       "sampling": "shuffle", "global_batch_size": batch, "num_examples": n}
    assert data.position(steps[-1])["batch_in_epoch"] == data.steps_per_epoch - 1
    epochs.append(np.concatenate([data.indices(s)[0] for s in steps]))
  if n % batch == 0:
    assert all(sorted(e) == list(range(n)) for e in epochs)
  assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch.


def test_batch_larger_than_dataset_is_refused():
  with pytest.raises(UserError, match="exceeds"):
    DatasetSource(indexed(5), 8, seed=0).check()
  DatasetSource(indexed(5), 8, seed=0, sampling="replacement").check()  # with replacement it is fine.


def test_sampling_with_replacement_is_uniform_and_pure_in_the_step():
  data = DatasetSource(indexed(50), 16, seed=2, sampling="replacement")
  np.testing.assert_array_equal(data.batch(9)["index"], DatasetSource(indexed(50), 16, 2, sampling="replacement").batch(9)["index"])
  counts = np.bincount(np.concatenate([data.batch(s)["index"] for s in range(500)]), minlength=50)
  assert counts.min() > 0.6 * counts.mean() and counts.max() < 1.4 * counts.mean()  # 160 draws each on average.
  assert any(len(set(data.batch(s)["index"])) < 16 for s in range(50))  # repeats do happen.


def test_poisson_sampling_masks_padding_and_includes_each_example_with_rate_q():
  n, batch = 1000, 40
  data = DatasetSource(indexed(n), batch, seed=5, sampling="poisson")
  assert data.max_rows == batch + 26  # batch + ceil(4 sqrt(batch)).
  included, sizes = np.zeros(n), []
  for step in range(400):
    b = data.batch(step)
    assert b["index"].shape == b["mask"].shape == (data.max_rows,)
    real = b["index"][b["mask"]]
    assert len(set(real)) == len(real)  # without replacement within a step.
    assert not b["mask"][len(real):].any()  # real rows first, padding after.
    np.testing.assert_array_equal(b["image"][b["mask"]], indexed(n)["image"][real])
    included[real] += 1
    sizes.append(len(real))
  assert abs(np.mean(sizes) - batch) < 1.5  # E[rows] = q n = batch; std of the mean ~0.3.
  assert 0.8 * np.std(sizes) ** 2 < batch * (1 - batch / n) * 1.25  # binomial variance.
  rate = included / 400
  assert abs(rate.mean() - batch / n) < 0.002


def test_poisson_rows_beyond_max_rows_are_dropped_and_counted():
  data = DatasetSource(indexed(100), 50, seed=0, sampling="poisson", max_rows=8)
  b = data.batch(3)
  assert b["mask"].all() and b["index"].shape == (8,)
  assert data.dropped(3) > 0


@pytest.mark.parametrize("processes", [2, 4])
def test_poisson_rows_split_over_processes(processes):
  whole = DatasetSource(indexed(200), 24, seed=1, sampling="poisson", max_rows=40)
  parts = [DatasetSource(indexed(200), 24, seed=1, sampling="poisson", max_rows=40, process_index=p,
                         process_count=processes) for p in range(processes)]
  for step in (0, 7):
    for key in ("index", "mask"):
      np.testing.assert_array_equal(np.concatenate([p.batch(step)[key] for p in parts]), whole.batch(step)[key])


def test_lazy_arrays_are_loaded_on_first_use():
  loads = []
  data = DatasetSource(lambda: loads.append(1) or indexed(30), 10, seed=0)
  assert loads == []
  data.batch(0)
  data.batch(1)
  assert loads == [1]
