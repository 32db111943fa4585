"""Batching: padded evaluation batches see every example once; shuffled training batches are a pure,
per-process-sliced function of (seed, step) with a fresh permutation each epoch."""
import numpy as np
import pytest

from jaxai.data.pipeline import ShuffledBatches, padded_batches


def indexed(n):
  """Arrays whose values are their own row index, so a batch tells which examples it holds."""
  return {"index": np.arange(n), "image": np.arange(n * 4).reshape(n, 2, 2)}


@pytest.mark.parametrize("n, batch", [(301, 100), (300, 100), (1, 8), (99, 100), (17, 4)])
def test_padded_batches_hold_every_example_once(n, batch):
  batches = list(padded_batches(indexed(n), batch, process_index=0, process_count=1))
  assert len(batches) == -(-n // batch)
  for b in batches:
    assert {k: v.shape[0] for k, v in b.items()} == {"index": batch, "image": batch, "mask": batch}
    assert b["mask"].dtype == bool
    np.testing.assert_array_equal(b["image"], indexed(n)["image"][b["index"]])  # rows stay aligned.
  real = np.concatenate([b["index"][b["mask"]] for b in batches])
  np.testing.assert_array_equal(real, np.arange(n))  # each once, in order.
  # Only the tail of the last batch is padding.
  masks = np.concatenate([b["mask"] for b in batches])
  np.testing.assert_array_equal(masks, np.arange(len(masks)) < n)


@pytest.mark.parametrize("processes", [2, 4])
def test_padded_batches_split_over_processes(processes):
  n, batch = 301, 100
  whole = list(padded_batches(indexed(n), batch, process_index=0, process_count=1))
  parts = [list(padded_batches(indexed(n), batch, process_index=p, process_count=processes))
           for p in range(processes)]
  assert all(len(p) == len(whole) for p in parts)  # every process runs the same number of eval steps.
  for i, full in enumerate(whole):
    for key in full:
      assert all(p[i][key].shape[0] == batch // processes for p in parts)
      np.testing.assert_array_equal(np.concatenate([p[i][key] for p in parts]), full[key])


def test_shuffled_batches_are_deterministic_per_seed():
  arrays = indexed(100)
  a, b, c = (ShuffledBatches(arrays, 10, seed=s) for s in (3, 3, 4))
  steps = [25, 0, 7, 31, 7]  # random access, out of order, across epochs.
  for step in steps:
    np.testing.assert_array_equal(a.batch(step)["index"], b.batch(step)["index"])
  # Any access order gives the same batches.
  fresh = ShuffledBatches(arrays, 10, seed=3)
  for step in reversed(steps):
    np.testing.assert_array_equal(fresh.batch(step)["index"], a.batch(step)["index"])
  assert any(not np.array_equal(a.indices(s), c.indices(s)) for s in range(10))


@pytest.mark.parametrize("processes", [2, 4])
def test_process_rows_partition_the_global_batch(processes):
  arrays, batch = indexed(103), 12
  whole = ShuffledBatches(arrays, batch, seed=0, process_index=0, process_count=1)
  parts = [ShuffledBatches(arrays, batch, seed=0, process_index=p, process_count=processes)
           for p in range(processes)]
  for step in (0, 1, 8, 9, 20):
    rows = [p.batch(step) for p in parts]
    assert all(len(r["index"]) == batch // processes for r in rows)
    joined = np.concatenate([r["index"] for r in rows])
    assert sorted(joined) == sorted(whole.indices(step))  # a partition of the global batch...
    np.testing.assert_array_equal(joined, whole.batch(step)["index"])  # ...same rows as one process.
    np.testing.assert_array_equal(np.concatenate([r["image"] for r in rows]), arrays["image"][joined])


@pytest.mark.parametrize("n, batch", [(100, 10), (103, 10)])
def test_each_epoch_is_a_permutation(n, batch):
  data = ShuffledBatches(indexed(n), batch, seed=1)
  assert data.steps_per_epoch == n // batch
  epochs = []
  for epoch in range(3):
    steps = range(epoch * data.steps_per_epoch, (epoch + 1) * data.steps_per_epoch)
    seen = np.concatenate([data.batch(s)["index"] for s in steps])
    assert len(seen) == len(set(seen)) == data.steps_per_epoch * batch  # no repeats within an epoch.
    assert set(seen) <= set(range(n))
    assert data.position(steps[0]) == {"epoch": epoch, "batch_in_epoch": 0, "seed": 1,
                                       "global_batch_size": batch, "num_examples": n}
    assert data.position(steps[-1])["batch_in_epoch"] == data.steps_per_epoch - 1
    epochs.append(np.concatenate([data.indices(s) for s in steps]))
  if n % batch == 0:
    assert all(sorted(e) == list(range(n)) for e in epochs)
  assert not np.array_equal(epochs[0], epochs[1])  # reshuffled each epoch.


def test_batch_larger_than_dataset_is_refused():
  with pytest.raises(ValueError, match="exceeds"):
    ShuffledBatches(indexed(5), 8, seed=0)
