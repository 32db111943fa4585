"""Evaluation batching: padded batches see every example once, split over processes."""
import numpy as np
import pytest

from jaxai.data.pipeline import padded_batches
from tests.helpers import indexed


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
