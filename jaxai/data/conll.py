"""CoNLL-2003 named-entity files: reading them, IOB1 -> IOB2 conversion, and entity spans.

The original English files (`eng.train`, `eng.testa` = development, `eng.testb` = test; in
../shared/data/conll2003 beside the checkout, see shared/data/README.md) have one token per line with four
space-separated columns `word POS chunk NER`, a blank line between sentences, and a `-DOCSTART-` line (plus a
blank line) opening every article. Their NER tags use IOB1: a token inside an entity is I-TYPE, and B-TYPE
only marks the first token of an entity that directly follows another entity of the same type. HF datasets,
the TFDS `conll2003` builder and seqeval's default use IOB2 (B-TYPE on the first token of EVERY entity);
`iob1_to_iob2` converts, keeping every entity (see `entities`).

The words are Reuters news text: use them for research, never copy them into this repository.
"""
import re
from pathlib import Path
from typing import NamedTuple, Sequence

from jaxai.errors import UserError

SPLIT_FILES = {"train": "eng.train", "dev": "eng.testa", "test": "eng.testb"}
NUM_COLUMNS = 4  # word POS chunk NER
_TAG = re.compile(r"^(O|[BI]-\S+)$")


class Sentence(NamedTuple):
  words: tuple[str, ...]
  tags: tuple[str, ...]  # the NER column, as in the file (IOB1 in the original CoNLL-2003 files)


def _missing_file_message(path: Path) -> str:
  return (f"CoNLL-2003 file {str(path)!r} does not exist. Put the original English files eng.train, "
          "eng.testa and eng.testb (4 space-separated columns: word POS chunk NER, IOB1 tags) in "
          "../shared/data/conll2003 beside the checkout (see shared/data/README.md), or point the path at "
          "your copy. The words are Reuters news, so the CoNLL-2003 release ships annotations only "
          "(https://www.clips.uantwerpen.be/conll2003/ner/) and the text comes from the Reuters Corpus. "
          "With internet, TFDS's conll2003 builder (`tfds build conll2003`) downloads the same data in the "
          "same 4-column layout but with IOB2 tags (train.txt, valid.txt, test.txt in its downloads/extracted "
          "folder); read those files with this function and skip iob1_to_iob2.")


def read_conll(path) -> list[Sentence]:
  """The sentences of a CoNLL-2003 file, in order: words and NER tags (the 4th column) as tuples.

  `-DOCSTART-` lines are document boundaries and yield no sentence; blank lines end sentences. A missing
  file, a line without exactly 4 whitespace-separated columns, or an NER tag that is neither 'O' nor
  'B-TYPE'/'I-TYPE' is a UserError naming the file (and line).
  """
  path = Path(path)
  if not path.is_file():
    raise UserError(_missing_file_message(path))
  sentences, words, tags = [], [], []

  def flush():
    if words:
      sentences.append(Sentence(tuple(words), tuple(tags)))
      words.clear()
      tags.clear()

  with open(path, encoding="utf-8") as f:
    for lineno, line in enumerate(f, 1):
      line = line.rstrip("\r\n")
      if not line.strip():
        flush()
        continue
      if line.startswith("-DOCSTART-"):
        flush()
        continue
      columns = line.split()
      if len(columns) != NUM_COLUMNS:
        raise UserError(f"{path}:{lineno}: expected {NUM_COLUMNS} space-separated columns (word POS chunk "
                        f"NER), got {len(columns)}: {line!r}")
      if not _TAG.match(columns[-1]):
        raise UserError(f"{path}:{lineno}: NER tag {columns[-1]!r} is neither 'O' nor 'B-TYPE' / 'I-TYPE'.")
      words.append(columns[0])
      tags.append(columns[-1])
  flush()
  return sentences


def read_split(data_dir, split: str) -> list[Sentence]:
  """read_conll of `split` ('train', 'dev' or 'test': eng.train, eng.testa, eng.testb) in `data_dir`."""
  if split not in SPLIT_FILES:
    raise UserError(f"CoNLL-2003 split {split!r} is not one of {sorted(SPLIT_FILES)} "
                    f"(files {', '.join(SPLIT_FILES.values())}).")
  return read_conll(Path(data_dir) / SPLIT_FILES[split])


def _parse(tag: str) -> tuple[str, str]:
  """'O' -> ('O', ''); 'B-X' / 'I-X' -> ('B' / 'I', 'X')."""
  if tag == "O":
    return "O", ""
  if len(tag) > 2 and tag[:2] in ("B-", "I-"):
    return tag[0], tag[2:]
  raise ValueError(f"Tag {tag!r} is neither 'O' nor 'B-TYPE' / 'I-TYPE'.")


def iob1_to_iob2(tags: Sequence[str]) -> tuple[str, ...]:
  """IOB1 tags -> IOB2 tags of the same entities.

  An I-X that starts an entity (the first token, or after O, or after a tag of another type) becomes B-X.
  An I-X after B-X or I-X continues that entity and stays. A B-X (IOB1's mark of a new entity directly after
  another X entity) stays B-X. O stays O.
  """
  out, prev_type = [], None  # prev_type: the previous token's entity type, None after O or at the start
  for tag in tags:
    prefix, kind = _parse(tag)
    if prefix == "I" and kind != prev_type:
      tag = "B-" + kind
    out.append(tag)
    prev_type = kind if prefix != "O" else None
  return tuple(out)


def entities(tags: Sequence[str], scheme: str = "IOB2", strict: bool = False) -> set[tuple[str, int, int]]:
  """The entities of one sentence as (type, start, end) spans, end exclusive (tokens start..end-1).

  Both schemes read tags the way conlleval does: an entity starts at B-X, or at an I-X that does not
  continue an entity of type X (after O, after another type, or first); it continues over I-X tokens of the
  same type. For well-formed input that is exactly each scheme's meaning, so iob1_to_iob2 keeps the set.
  strict=True raises ValueError on input that is not well-formed in `scheme`:
    IOB2: an I-X that does not continue an X entity (it must follow B-X or I-X);
    IOB1: a B-X that does not directly follow an X token (IOB1 uses B- only between two X entities).
  """
  if scheme not in ("IOB1", "IOB2"):
    raise ValueError(f"scheme={scheme!r}: expected 'IOB1' or 'IOB2'.")
  spans, kind, begin, prev_type = set(), None, 0, None
  for i, tag in enumerate(tags):
    prefix, t = _parse(tag)
    if strict:
      if scheme == "IOB2" and prefix == "I" and t != prev_type:
        raise ValueError(f"Not IOB2: {tag!r} at position {i} follows {tags[i - 1] if i else 'the start'!r}.")
      if scheme == "IOB1" and prefix == "B" and t != prev_type:
        raise ValueError(f"Not IOB1: {tag!r} at position {i} follows {tags[i - 1] if i else 'the start'!r}.")
    starts = prefix == "B" or (prefix == "I" and t != prev_type)
    if kind is not None and (prefix == "O" or starts):
      spans.add((kind, begin, i))
      kind = None
    if starts:
      kind, begin = t, i
    prev_type = t if prefix != "O" else None
  if kind is not None:
    spans.add((kind, begin, len(tags)))
  return spans
