"""Captions of class-labelled images, as word tokens for the text-to-image prior.

A caption is a template filled with the class name: 'a handwritten seven', 'a drawing of an eight',
'an ankle boot' (the article agrees with the next word). The word vocabulary is fixed: PAD, BOS and every
word of the templates and class names of mnist and fashion_mnist. A caption row is fixed length:
[BOS, words..., PAD...] of 1 + CAPTION_WORDS tokens, the prompt the prior continues with image codes.
"""
import numpy as np

from jaxai.errors import UserError
from jaxai.tasks.generative.common import CLASS_NAMES

PAD, BOS = 0, 1
TEMPLATES = {  # '{a}' is 'a' or 'an' for the word after it; template 0 is each class's canonical caption.
    "mnist": ("a handwritten {name}", "the digit {name}", "a drawing of {a} {name}", "the number {name}",
              "{a} {name}"),
    "fashion_mnist": ("a photo of {a} {name}", "{a} {name}", "a picture of {a} {name}",
                      "a drawing of {a} {name}", "a photo of the {name}"),
}


def article(word: str) -> str:
  """'an' before a vowel sound ('an eight', 'an ankle boot'), else 'a' ('a one', 'a t-shirt')."""
  return "an" if word[0] in "aeiou" and not word.startswith("one") else "a"


def fill(template: str, name: str) -> str:
  return template.format(a=article(name), name=name)


def _vocabulary() -> tuple[str, ...]:
  words = set()
  for dataset, templates in TEMPLATES.items():
    for template in templates:
      for name in CLASS_NAMES[dataset]:
        words.update(fill(template, name).split())
  return ("<pad>", "<bos>") + tuple(sorted(words))


VOCABULARY = _vocabulary()
CAPTION_WORDS = max(len(fill(t, n).split())
                    for d, ts in TEMPLATES.items() for t in ts for n in CLASS_NAMES[d])
CAPTION_LENGTH = 1 + CAPTION_WORDS  # tokens of a caption row, BOS included.


class Captions:
  """The captions of one dataset's classes and the prompt encoder, over a vocabulary (a saved run's)."""

  def __init__(self, dataset: str, vocabulary=VOCABULARY, length: int = CAPTION_LENGTH):
    key = dataset.split(":")[0]
    if key not in TEMPLATES:
      raise UserError(f"Text-to-image has captions for {sorted(TEMPLATES)} only, not dataset={dataset!r}; "
                      "use --config.dataset=mnist or fashion_mnist.")
    self.class_names, self.templates = CLASS_NAMES[key], TEMPLATES[key]
    self.vocabulary, self.length = tuple(vocabulary), length
    self._ids = {w: i for i, w in enumerate(self.vocabulary)}

  @property
  def num_templates(self) -> int:
    return len(self.templates)

  def text(self, class_id: int, template_id: int = 0) -> str:
    return fill(self.templates[template_id], self.class_names[class_id])

  def _row(self, words: list[str]) -> np.ndarray:
    row = np.full(self.length, PAD, np.int32)
    row[0] = BOS
    row[1:1 + len(words)] = [self._ids[w] for w in words]
    return row

  def caption_tokens(self, class_id: int, template_id: int = 0) -> np.ndarray:
    """(length,) int32: [BOS, the caption's words, PAD...]."""
    return self._row(self.text(class_id, template_id).split())

  def table(self) -> np.ndarray:
    """(num_classes, num_templates, length) int32: every caption row, for lookups inside a jitted step."""
    return np.stack([np.stack([self.caption_tokens(c, t) for t in range(self.num_templates)])
                     for c in range(len(self.class_names))])

  def encode_prompt(self, text: str) -> np.ndarray:
    """(length,) int32 caption row of free text ('a handwritten seven'); a UserError for unknown words."""
    words = text.lower().split()
    if not words:
      raise UserError(f"The prompt is empty: describe an image, e.g. --prompt={self.text(0)!r}.")
    unknown = [w for w in dict.fromkeys(words) if w not in self._ids or self._ids[w] in (PAD, BOS)]
    if unknown:
      raise UserError(f"The prompt {text!r} has words outside the vocabulary: "
                      f"{', '.join(map(repr, unknown))}. "
                      f"The vocabulary is: {' '.join(self.vocabulary[2:])}. "
                      f"Captions look like {self.text(0)!r} or {self.text(len(self.class_names) - 2, 2)!r}.")
    if len(words) > self.length - 1:
      raise UserError(f"The prompt {text!r} has {len(words)} words; at most {self.length - 1} fit.")
    return self._row(words)

  def decode(self, row) -> str:
    return " ".join(self.vocabulary[i] for i in np.asarray(row) if i not in (PAD, BOS))


def caption_tokens(class_id: int, template_id: int = 0, dataset: str = "mnist") -> np.ndarray:
  return Captions(dataset).caption_tokens(class_id, template_id)


def encode_prompt(text: str, dataset: str = "mnist") -> np.ndarray:
  return Captions(dataset).encode_prompt(text)
