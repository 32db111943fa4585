"""Dataset sources: real TFDS data from the local data_dir, bundled and synthetic data, and a missing
dataset reported at once (naming it, the directory, and how to provide it) without downloading."""
import time

import numpy as np
import pytest

from jaxai.core.errors import UserError
from jaxai.data import sources


def test_reads_prepared_tfds_split(data_dir):
  arrays = sources.load_split("mnist:3.0.1", "test", str(data_dir), download=False, max_examples=301)
  assert arrays["image"].shape == (301, 28, 28, 1) and arrays["image"].dtype == np.uint8
  assert arrays["label"].shape == (301,) and arrays["label"].dtype == np.int32
  assert set(np.unique(arrays["label"])) <= set(range(10)) and len(np.unique(arrays["label"])) > 5


def test_digits_split_is_fixed_and_complete():
  train, test = sources.load_split("digits", "train"), sources.load_split("digits", "test")
  assert len(train["label"]) + len(test["label"]) == 1797
  assert train["image"].shape[1:] == (8, 8, 1) and train["image"].dtype == np.uint8
  np.testing.assert_array_equal(sources.load_split("digits", "train")["label"], train["label"])


def test_synthetic_source():
  a = sources.load_split("synthetic:6x5x3:4", "train", max_examples=50)
  assert a["image"].shape == (50, 6, 5, 3) and set(np.unique(a["label"])) <= set(range(4))
  with pytest.raises(UserError, match="HxWxC:K"):
    sources.load_split("synthetic:32x32:10", "train")


def assert_names_dataset_and_fix(message, directory):
  assert "'mnist:3.0.1'" in message
  assert str(directory) in message
  assert "--config.data_dir" in message and "TFDS_DATA_DIR" in message


def test_missing_dataset_without_download(tmp_path):
  with pytest.raises(UserError) as e:
    sources.load_split("mnist:3.0.1", "train", str(tmp_path), download=False)
  assert_names_dataset_and_fix(str(e.value), tmp_path)
  assert "download=False" in str(e.value)
  assert list(tmp_path.iterdir()) == []


def test_missing_dataset_offline_with_download(tmp_path, monkeypatch):
  # A closed loopback port stands for "no network", whatever this machine can reach.
  monkeypatch.setattr(sources, "DOWNLOAD_PROBE", ("127.0.0.1", 9))
  start = time.monotonic()
  with pytest.raises(UserError) as e:
    sources.load_split("mnist:3.0.1", "train", str(tmp_path), download=True)
  assert time.monotonic() - start < 30
  assert_names_dataset_and_fix(str(e.value), tmp_path)
  assert "cannot reach" in str(e.value)
  assert list(tmp_path.iterdir()) == []


def test_data_dir_falls_back_to_env(monkeypatch, tmp_path):
  monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
  assert sources.resolve_data_dir("") == str(tmp_path)
  assert sources.resolve_data_dir("/elsewhere") == "/elsewhere"
