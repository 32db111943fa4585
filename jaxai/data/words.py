"""Word-level inputs for taggers: vocabularies of words and characters built from a training split,
casing classes, and the padded arrays a batch of sentences becomes.

Words are looked up lower-cased with every digit mapped to 0 ('1996' and '2003' share '0000'), and
the casing the lower-casing removes is a separate feature (CASES), as in Lample et al. (2016). Id 0 is
padding and id 1 unknown in both vocabularies. Everything is plain Python + numpy (host side).
"""
import collections
import re
from typing import Sequence

import numpy as np

PAD, UNK = "<pad>", "<unk>"
CASES = ("pad", "lower", "upper", "title", "digits", "has_digit", "other")
_DIGIT = re.compile(r"\d")


def normalize(word: str) -> str:
  return _DIGIT.sub("0", word.lower())


def casing(word: str) -> int:
  """The index in CASES of `word`'s casing class."""
  if word.isdigit():
    return CASES.index("digits")
  if _DIGIT.search(word):
    return CASES.index("has_digit")
  if word.islower():
    return CASES.index("lower")
  if word.isupper():
    return CASES.index("upper")
  if word[:1].isupper():
    return CASES.index("title")
  return CASES.index("other")


class Vocab:
  """Items (0 = PAD, 1 = UNK, then the rest in a fixed order) and their ids."""

  def __init__(self, items: Sequence[str]):
    if list(items[:2]) != [PAD, UNK]:
      raise ValueError(f"A vocabulary starts with {PAD!r}, {UNK!r}; got {list(items[:2])}.")
    self.items = list(items)
    self._ids = {w: i for i, w in enumerate(self.items)}

  def __len__(self):
    return len(self.items)

  def id(self, item: str) -> int:
    return self._ids.get(item, 1)

  @classmethod
  def build(cls, sequences, min_count: int = 1) -> "Vocab":
    """Items seen at least `min_count` times in `sequences` (iterables of items), most frequent first
    (ties in order of first appearance): the same data gives the same ids."""
    counts = collections.Counter(item for seq in sequences for item in seq)
    kept = [item for item, n in counts.most_common() if n >= min_count]
    return cls([PAD, UNK] + kept)


def word_vocab(sentences: Sequence[Sequence[str]], min_count: int) -> Vocab:
  return Vocab.build(([normalize(w) for w in words] for words in sentences), min_count)


def char_vocab(sentences: Sequence[Sequence[str]]) -> Vocab:
  return Vocab.build((ch for w in words for ch in w) for words in sentences)


def encode_sentences(sentences: Sequence[Sequence[str]], words: Vocab, chars: Vocab, max_len: int,
                     max_word_chars: int) -> dict:
  """{'words', 'cases': (N, max_len), 'chars': (N, max_len, max_word_chars) int32, 'length': (N,) int32}.

  Sentences longer than max_len are truncated (their `length` is max_len); words longer than
  max_word_chars keep their first characters. Padding is 0 everywhere.
  """
  n = len(sentences)
  out = {"words": np.zeros((n, max_len), np.int32), "cases": np.zeros((n, max_len), np.int32),
         "chars": np.zeros((n, max_len, max_word_chars), np.int32), "length": np.zeros((n,), np.int32)}
  for i, sentence in enumerate(sentences):
    sentence = list(sentence)[:max_len]
    out["length"][i] = len(sentence)
    for j, word in enumerate(sentence):
      out["words"][i, j] = words.id(normalize(word))
      out["cases"][i, j] = casing(word)
      ids = [chars.id(ch) for ch in word[:max_word_chars]]
      out["chars"][i, j, :len(ids)] = ids
  return out
