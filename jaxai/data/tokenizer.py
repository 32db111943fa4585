"""Subword tokenization with SentencePiece (BPE or unigram), trained on a run's training sentences and
saved with the run (in its facts), so decoding and evaluation always use the training vocabulary.

Ids 0-3 are reserved: PAD_ID 0 (padding; never produced by encoding), UNK_ID 1, BOS_ID 2, EOS_ID 3.
Normalization is the identity and whitespace is kept as it is, so `decode(encode(s)) == s` for every
training sentence (every character of the training text is in the vocabulary: character_coverage 1).
Training is deterministic: the same sentences and settings give the same model, byte for byte.
"""
import base64
import io
from typing import Iterable, Sequence

import numpy as np

from jaxai.errors import UserError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_TYPES = ("bpe", "unigram")


def _spm():
  try:
    import sentencepiece
  except ImportError:
    raise UserError("This task tokenizes with sentencepiece, which is not installed: "
                    "pip install -e . (it is a dependency in setup.cfg) or pip install sentencepiece.") from None
  return sentencepiece


class Tokenizer:
  """A trained SentencePiece model. `to_facts()` / `from_facts()` carry it in a run's facts.json."""

  def __init__(self, model_proto: bytes):
    self.model_proto = model_proto
    self._sp = _spm().SentencePieceProcessor(model_proto=model_proto)

  @classmethod
  def train(cls, sentences: Iterable[str], vocab_size: int, model_type: str = "unigram",
            max_sentence_chars: int = 4192) -> "Tokenizer":
    """Trains on `sentences` (one string each). UserError for bad settings or too small a text."""
    if model_type not in MODEL_TYPES:
      raise UserError(f"tokenizer model_type={model_type!r} is unknown; use one of {MODEL_TYPES}.")
    if vocab_size < 8:
      raise UserError(f"tokenizer vocab_size={vocab_size} is too small: it must hold the 4 reserved ids "
                      "(pad, unk, bos, eos) and the text's characters.")
    sentences = [s for s in sentences if s]
    if not sentences:
      raise UserError("The tokenizer has no training text: every training sentence is empty.")
    model = io.BytesIO()
    try:
      _spm().SentencePieceTrainer.train(
          sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
          model_type=model_type, pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
          character_coverage=1.0, normalization_rule_name="identity", remove_extra_whitespaces=False,
          max_sentence_length=max_sentence_chars, num_threads=1, minloglevel=2)
    except RuntimeError as e:  # e.g. "Vocabulary size is too high": the text has fewer pieces.
      raise UserError(f"Training the {model_type} tokenizer with vocab_size={vocab_size} on "
                      f"{len(sentences):,} sentences failed: {e}. Lower the vocabulary size.") from None
    return cls(model.getvalue())

  @property
  def vocab_size(self) -> int:
    return self._sp.get_piece_size()

  def encode(self, text: str) -> list[int]:
    return self._sp.encode(text)

  def decode(self, ids: Sequence[int]) -> str:
    """The text of `ids`; padding, BOS and EOS ids are dropped (EOS ends the text)."""
    ids = [int(i) for i in ids]
    if EOS_ID in ids:
      ids = ids[:ids.index(EOS_ID)]
    return self._sp.decode([i for i in ids if i not in (PAD_ID, BOS_ID)])

  def pieces(self, text: str) -> list[str]:
    return self._sp.encode(text, out_type=str)

  def encode_batch(self, texts: Sequence[str], max_len: int, bos: bool = False, eos: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(ids (N, max_len) int32 padded with PAD_ID, lengths (N,) int32 before truncation to max_len)."""
    ids = np.full((len(texts), max_len), PAD_ID, np.int32)
    lengths = np.zeros(len(texts), np.int32)
    for i, row in enumerate(self._sp.encode(list(texts))):
      row = [BOS_ID] * bos + row + [EOS_ID] * eos
      lengths[i] = len(row)
      row = row[:max_len]
      ids[i, :len(row)] = row
    return ids, lengths

  def to_facts(self) -> dict:
    return {"sentencepiece_model": base64.b64encode(self.model_proto).decode("ascii")}

  @classmethod
  def from_facts(cls, facts: dict) -> "Tokenizer":
    if not isinstance(facts, dict) or "sentencepiece_model" not in facts:
      raise UserError("The run's facts have no 'sentencepiece_model' (its trained tokenizer): the run's "
                      "facts.json is damaged or not a run of a task that tokenizes with sentencepiece.")
    return cls(base64.b64decode(facts["sentencepiece_model"]))
