"""Character data: vocabulary, the TFDS Tiny Shakespeare splits, evaluation windows (training windows:
test_task.py, drawn by the core's DatasetSource)."""
import numpy as np
import pytest

from jaxai.errors import UserError
from jaxai.data import text
from tests.helpers import DATA_DIR

RAW = DATA_DIR.parent / "tinyshakespeare" / "input.txt"  # char-rnn's input.txt, nanoGPT's source text.


def test_vocab_round_trip_and_unknown_characters():
  vocab = text.CharVocab.from_text("hello world")
  assert vocab.chars == " dehlorw" and vocab.size == 8
  ids = vocab.encode("world hello")
  assert ids.dtype == np.int32 and vocab.decode(ids) == "world hello"
  assert vocab.unknown("hellø wörld") == ["ø", "ö"]
  with pytest.raises(UserError, match="'ø'"):
    vocab.encode("hellø")


def test_tfds_splits_are_nanogpt_train_and_validation():
  """TFDS's train is nanoGPT's first 90% of input.txt; 'validation+test' is its last 10%."""
  train = text.load_text("tiny_shakespeare", "train", str(DATA_DIR), download=False)
  held_out = text.load_text("tiny_shakespeare", "validation+test", str(DATA_DIR), download=False)
  raw = RAW.read_text()
  n = len(raw)
  assert train == raw[:int(0.9 * n)] and held_out == raw[int(0.9 * n):]
  assert text.CharVocab.from_text(train).size == 65


def test_missing_split_is_a_clear_error():
  with pytest.raises(UserError, match="no split 'valid'"):
    text.load_text("tiny_shakespeare", "valid", str(DATA_DIR), download=False)


def test_eval_windows_are_fixed_and_cover_the_text():
  tokens = np.arange(101, dtype=np.int32)
  every = text.eval_windows(tokens, block_size=10)
  assert every["inputs"].shape == (10, 10)  # starts 0, 10, ..., 90: all of 0..99 once, targets to 100.
  np.testing.assert_array_equal(every["inputs"].reshape(-1), np.arange(100))
  spaced = text.eval_windows(tokens, block_size=10, num_windows=4)
  np.testing.assert_array_equal(spaced["inputs"][:, 0], [0, 30, 60, 90])
  with pytest.raises(UserError, match="too few"):
    text.eval_windows(tokens[:5], block_size=10)
