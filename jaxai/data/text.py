"""Character-level text: vocabulary, the TFDS text splits, training and fixed eval windows.

Tiny Shakespeare in TFDS is one record per split whose `text` is the whole split: 'train' is the
first 90% of the 1,115,394 characters (exactly nanoGPT's training text), 'validation' and 'test' the
next two 5%. nanoGPT validates on its last 10%, which is 'validation+test' here (splits joined by '+'
are concatenated in that order).

Training windows are drawn uniformly at random with replacement, as nanoGPT and char-rnn do: the
core's DatasetSource with sampling='replacement' over `num_train_windows` start offsets, `windows`
gathering them. The windows of a step are a pure function of (seed, step), so a resumed run sees the
same batches.
"""
import numpy as np

from jaxai.errors import UserError
from jaxai.data import sources


class CharVocab:
  """Sorted distinct characters of a text; ids are positions in that order."""

  def __init__(self, chars: str):
    self.chars = "".join(sorted(set(chars)))
    self._ids = {c: i for i, c in enumerate(self.chars)}

  @classmethod
  def from_text(cls, text: str) -> "CharVocab":
    return cls(text)

  @property
  def size(self) -> int:
    return len(self.chars)

  def unknown(self, text: str) -> list[str]:
    """Characters of `text` outside the vocabulary, in order of first appearance."""
    return list(dict.fromkeys(c for c in text if c not in self._ids))

  def encode(self, text: str) -> np.ndarray:
    """str -> (len,) int32 ids; characters outside the vocabulary are a UserError."""
    missing = self.unknown(text)
    if missing:
      raise UserError(f"Characters {''.join(missing)!r} ({', '.join(map(repr, missing[:10]))}) are not in "
                      f"the vocabulary of {self.size} characters: {self.chars!r}.")
    return np.fromiter((self._ids[c] for c in text), np.int32, len(text))

  def decode(self, ids) -> str:
    return "".join(self.chars[i] for i in np.asarray(ids).reshape(-1))


def load_text(dataset: str, split: str, data_dir: str = "", download: bool = True) -> str:
  """The whole text of `split` ('train', 'validation', 'validation+test', ...) of a TFDS text dataset."""
  parts = []
  for name in split.split("+"):
    source = sources.tfds_source(dataset, name, data_dir, download)
    records = source.__getitems__(list(range(len(source))))
    parts.extend(r["text"] for r in records)
  return b"".join(p if isinstance(p, bytes) else str(p).encode() for p in parts).decode("utf-8")


def windows(tokens: np.ndarray, starts: np.ndarray, block_size: int) -> dict:
  """{'inputs', 'targets'}: (N, block_size) int32 each; targets are inputs shifted by one character."""
  idx = starts[:, None] + np.arange(block_size + 1)[None, :]  # (N, block_size + 1)
  chunk = tokens[idx]
  return {"inputs": chunk[:, :-1], "targets": chunk[:, 1:]}


def num_train_windows(num_tokens: int, block_size: int) -> int:
  """Start offsets of training windows (block_size inputs + 1 target) in a text of `num_tokens`
  characters: the `num_examples` the core's DatasetSource draws windows from."""
  if num_tokens < block_size + 2:
    raise UserError(f"The training text has {num_tokens} characters, too few for windows of "
                    f"block_size={block_size} (+1 target); lower block_size.")
  return num_tokens - block_size


def eval_windows(tokens: np.ndarray, block_size: int, num_windows: int = 0) -> dict:
  """A fixed set of windows over an evaluation text: `num_windows` evenly spaced starts, or with 0 every
  non-overlapping window (the whole text once, less a last partial window)."""
  tokens = np.asarray(tokens, np.int32)
  last = len(tokens) - block_size - 1  # the last valid start.
  if last < 0:
    raise UserError(f"The evaluation text has {len(tokens)} characters, too few for one window of "
                    f"block_size={block_size}.")
  if num_windows <= 0:
    starts = np.arange(0, last + 1, block_size)
  else:
    starts = np.linspace(0, last, num_windows).round().astype(np.int64)
  return windows(tokens, starts, block_size)


# Speaker turns. Tiny Shakespeare is a sequence of turns "NAME:\n<lines>" separated by one blank
# line; a split may start inside a turn (a first chunk without a header: no known speaker).


def turns(text: str) -> list[tuple[str | None, str]]:
  """[(speaker or None, chunk)]: the text's blank-line-separated chunks; a chunk whose first line
  ends with ':' is a turn of that speaker. '\\n\\n'.join of the chunks is the text again."""
  out = []
  for chunk in text.split("\n\n"):
    header = chunk.lstrip("\n").split("\n", 1)[0]
    speaker = header[:-1].strip() if header.endswith(":") else ""
    out.append((speaker or None, chunk))
  return out


def speaker_chars(text: str) -> dict[str, int]:
  """{speaker: characters in their turns}, most talkative first."""
  counts = {}
  for speaker, chunk in turns(text):
    if speaker is not None:
      counts[speaker] = counts.get(speaker, 0) + len(chunk)
  return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def parse_speakers(names: str) -> tuple[str, ...]:
  """'ROMEO, JULIET' -> ('ROMEO', 'JULIET')."""
  return tuple(n.strip() for n in names.split(",") if n.strip())


def select_speakers(text: str, speakers=(), exclude=()) -> str:
  """The text of the turns of `speakers` (all turns when empty) less those of `exclude`, joined by a
  blank line. Chunks of no known speaker are kept only when `speakers` is empty."""
  keep, drop = set(speakers), set(exclude)
  return "\n\n".join(chunk for speaker, chunk in turns(text)
                     if (speaker in keep if keep else True) and speaker not in drop)


def check_speakers(text: str, names, what: str, key: str, require_all: bool = True) -> None:
  """A UserError naming the most talkative speakers of `text` when any of `names` (all of them,
  with `require_all=False`) has no turn in it. `what` names the text, `key` the config setting."""
  counts = speaker_chars(text)
  missing = [n for n in names if n not in counts]
  if missing and (require_all or len(missing) == len(names)):
    top = ", ".join(f"{s} ({c:,})" for s, c in list(counts.items())[:12]) or "none (no 'NAME:' header lines)"
    raise UserError(f"{key} names {missing}, who have no turns in {what}. Its speakers (header lines "
                    f"'NAME:'), with their characters, most first: {top}.")
