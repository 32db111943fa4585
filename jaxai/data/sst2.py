"""GLUE SST-2 (binary sentiment of movie-review phrases and sentences) from its raw TSV files.

GLUE's `SST-2/` folder holds `train.tsv` (67,349 rows) and `dev.tsv` (872 rows) with a header line
`sentence<TAB>label` (label 0 = negative, 1 = positive), and `test.tsv` (`index<TAB>sentence`, no
labels). The text is lower-cased and tokenized with spaces around punctuation.
"""
from pathlib import Path
from typing import NamedTuple

from jaxai.errors import UserError

SPLITS = ("train", "dev", "test")
LABEL_NAMES = ("negative", "positive")


class Examples(NamedTuple):
  sentences: list[str]
  labels: list[int]  # -1 where the split has no labels (test).


def _missing(path: Path) -> str:
  return (f"SST-2 file {str(path)!r} does not exist. Put GLUE's SST-2 files train.tsv, dev.tsv (and "
          "test.tsv) in config.data_dir (the shared copy is ../shared/data/sst2 beside the checkout). With "
          "internet, GLUE's SST-2.zip (https://dl.fbaipublicfiles.com/glue/data/SST-2.zip) holds them; TFDS's "
          "'glue/sst2' builder prepares the same rows (`tfds build glue/sst2`), with the test labels "
          "hidden as -1 there too.")


def read_split(data_dir, split: str) -> Examples:
  """The sentences (stripped) and labels of `split` ('train', 'dev' or 'test') in `data_dir`."""
  if split not in SPLITS:
    raise UserError(f"SST-2 split {split!r} is not one of {SPLITS}.")
  path = Path(data_dir) / f"{split}.tsv"
  if not path.is_file():
    raise UserError(_missing(path))
  with open(path, encoding="utf-8") as f:
    lines = f.read().splitlines()
  header = lines[0].split("\t") if lines else []
  if "sentence" not in header:
    raise UserError(f"{path}: the first line must be a header with a 'sentence' column "
                    f"(GLUE's layout), got {lines[0][:80] if lines else 'an empty file'!r}.")
  text_col, label_col = header.index("sentence"), header.index("label") if "label" in header else None
  sentences, labels = [], []
  for lineno, line in enumerate(lines[1:], 2):
    columns = line.split("\t")
    if len(columns) != len(header):
      raise UserError(f"{path}:{lineno}: expected {len(header)} tab-separated columns {header}, "
                      f"got {len(columns)}: {line[:80]!r}")
    label = -1
    if label_col is not None:
      if columns[label_col] not in ("0", "1"):
        raise UserError(f"{path}:{lineno}: label {columns[label_col]!r} is neither 0 nor 1.")
      label = int(columns[label_col])
    sentences.append(columns[text_col].strip())
    labels.append(label)
  return Examples(sentences, labels)
