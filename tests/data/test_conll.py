"""CoNLL-2003 reading and IOB1 -> IOB2 conversion (jaxai.data.conll).

Hand-made examples use invented words only: the CoNLL-2003 text is Reuters news and must not be copied here.
The checks on the real files read ../shared/data/conll2003 beside the checkout (or $CONLL2003_DIR) and skip
when it is absent.
"""
import collections
import os
from pathlib import Path

import pytest

from jaxai.data import conll
from jaxai.errors import UserError
from tests.helpers import REPO_ROOT

CONLL_DIR = Path(os.environ.get("CONLL2003_DIR") or REPO_ROOT.parent / "shared" / "data" / "conll2003")

# Measured on the shared files; they equal Tjong Kim Sang and De Meulder (2003), Tables 1 and 2, without
# the -DOCSTART- lines (shared/data/README.md).
EXPECTED = {
    "train": dict(sentences=14041, tokens=203621, LOC=7140, MISC=3438, ORG=6321, PER=6600),
    "dev": dict(sentences=3250, tokens=51362, LOC=1837, MISC=922, ORG=1341, PER=1842),
    "test": dict(sentences=3453, tokens=46435, LOC=1668, MISC=702, ORG=1661, PER=1617),
}


@pytest.mark.parametrize("iob1, iob2", [
    (["I-PER", "I-PER", "O", "I-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),  # first token; after O
    (["I-PER", "B-PER", "I-PER", "O"], ["B-PER", "B-PER", "I-PER", "O"]),  # B- between two PER entities
    (["O", "I-ORG", "I-LOC", "I-LOC"], ["O", "B-ORG", "B-LOC", "I-LOC"]),  # type change starts an entity
    (["I-MISC", "O", "I-MISC", "I-MISC", "B-MISC"], ["B-MISC", "O", "B-MISC", "I-MISC", "B-MISC"]),
    (["O", "B-LOC", "I-LOC"], ["O", "B-LOC", "I-LOC"]),  # ill-formed IOB1 B- after O: still one entity
    (["O", "O"], ["O", "O"]),
    ([], []),
])
def test_iob1_to_iob2(iob1, iob2):
  assert conll.iob1_to_iob2(iob1) == tuple(iob2)
  assert conll.entities(iob1, "IOB1") == conll.entities(iob2, "IOB2", strict=True)


def test_entities():
  tags = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]
  assert conll.entities(tags, "IOB1") == {("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5), ("ORG", 5, 6)}
  assert conll.entities(["B-PER", "I-PER", "B-PER", "O", "B-LOC", "I-LOC"], "IOB2") == {
      ("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 6)}
  # Ill-formed IOB2 (I- without B-) is read as conlleval does, or rejected with strict=True.
  assert conll.entities(["O", "I-LOC", "I-LOC"], "IOB2") == {("LOC", 1, 3)}
  with pytest.raises(ValueError, match="Not IOB2"):
    conll.entities(["O", "I-LOC"], "IOB2", strict=True)
  with pytest.raises(ValueError, match="Not IOB1"):
    conll.entities(["O", "B-LOC"], "IOB1", strict=True)
  with pytest.raises(ValueError, match="scheme"):
    conll.entities(["O"], "BIOES")
  with pytest.raises(ValueError, match="PER"):
    conll.iob1_to_iob2(["PER"])


def test_read_conll_handmade(tmp_path):
  path = tmp_path / "tiny.train"
  path.write_text("-DOCSTART- -X- O O\n\n"
                  "Zorblat NNP I-NP I-ORG\nwugged VBD I-VP O\nQuimby NNP I-NP I-PER\n.  . O O\n\n\n"
                  "-DOCSTART- -X- -X- O\n\n"
                  "Flinders NNP I-NP I-LOC\nBarnaby NNP B-NP B-LOC\n")  # no final blank line
  sentences = conll.read_conll(path)
  assert sentences == [
      conll.Sentence(("Zorblat", "wugged", "Quimby", "."), ("I-ORG", "O", "I-PER", "O")),
      conll.Sentence(("Flinders", "Barnaby"), ("I-LOC", "B-LOC")),
  ]
  assert conll.iob1_to_iob2(sentences[0].tags) == ("B-ORG", "O", "B-PER", "O")


def test_read_conll_errors(tmp_path):
  missing = tmp_path / "eng.train"
  with pytest.raises(UserError, match="eng.train.*does not exist.*tfds build conll2003"):
    conll.read_conll(missing)
  with pytest.raises(UserError, match="split"):
    conll.read_split(tmp_path, "validation")
  bad = tmp_path / "bad.txt"
  bad.write_text("Zorblat NNP I-NP I-ORG\nwugged VBD O\n")
  with pytest.raises(UserError, match=r"bad\.txt:2: expected 4 .* got 3"):
    conll.read_conll(bad)
  bad.write_text("Zorblat NNP I-NP I-ORG\n\nwugged VBD I-VP X-PER\n")
  with pytest.raises(UserError, match=r"bad\.txt:3: NER tag 'X-PER'"):
    conll.read_conll(bad)


@pytest.fixture(scope="module")
def real_splits():
  if not all((CONLL_DIR / name).is_file() for name in conll.SPLIT_FILES.values()):
    pytest.skip(f"CoNLL-2003 files {', '.join(conll.SPLIT_FILES.values())} not found in {CONLL_DIR} "
                "(../shared/data/conll2003 beside the checkout, or $CONLL2003_DIR).")
  return {split: conll.read_split(CONLL_DIR, split) for split in conll.SPLIT_FILES}


@pytest.mark.parametrize("split", sorted(EXPECTED))
def test_real_files_counts_and_conversion(real_splits, split):
  sentences = real_splits[split]
  counts = collections.Counter(sentences=len(sentences), tokens=sum(len(s.words) for s in sentences))
  not_strict_iob1 = 0
  for s in sentences:
    assert len(s.words) == len(s.tags) > 0
    before = conll.entities(s.tags, "IOB1")
    converted = conll.iob1_to_iob2(s.tags)
    assert conll.entities(converted, "IOB2", strict=True) == before  # converted tags are valid IOB2
    counts.update(kind for kind, _, _ in before)
    try:
      conll.entities(s.tags, "IOB1", strict=True)
    except ValueError:
      not_strict_iob1 += 1
  assert dict(counts) == EXPECTED[split]
  # The README's two B-MISC-after-O tokens, both in eng.train (in two different sentences).
  assert not_strict_iob1 == (2 if split == "train" else 0)
  assert set(t for s in sentences for t in s.tags) <= {"O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG",
                                                          "I-ORG", "I-PER"}


def test_seqeval_agrees_on_converted_train(real_splits):
  """seqeval (not a project dependency) in strict IOB2 mode finds exactly our entities."""
  pytest.importorskip("seqeval")
  from seqeval.scheme import IOB2, Entities
  converted = [list(conll.iob1_to_iob2(s.tags)) for s in real_splits["train"]]
  theirs = Entities(converted, IOB2).entities  # per sentence: (sentence, type, start, end exclusive)
  for tags, found in zip(converted, theirs):
    assert {(kind, start, end) for _, kind, start, end in (e.to_tuple() for e in found)} == conll.entities(
        tags, "IOB2")
