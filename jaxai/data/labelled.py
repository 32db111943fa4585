"""Labelled image examples for the image domains (classification, federated learning): a split's
examples, optionally only some classes (relabelled), and the facts the model and the preprocessing
depend on."""
import numpy as np

from jaxai.data import sources
from jaxai.errors import UserError


def parse_classes(spec: str) -> list[int] | None:
  """`config.classes` -> the kept original class ids in order ('5-9' -> [5, 6, 7, 8, 9]); None for ''."""
  if not spec.strip():
    return None
  kept = []
  for item in (s.strip() for s in spec.split(",")):
    try:
      lo, _, hi = item.partition("-")
      lo, hi = int(lo), int(hi or lo)
      if lo < 0 or hi < lo:
        raise ValueError
    except ValueError:
      raise UserError(f"config.classes={spec!r}: {item!r} is neither a class id nor a range 'a-b' with "
                      "0 <= a <= b; write e.g. '0-4' or '5,6,7,8,9'.") from None
    kept += range(lo, hi + 1)
  if len(set(kept)) != len(kept) or len(kept) < 2:
    raise UserError(f"config.classes={spec!r} must name at least two distinct classes, each once.")
  return kept


def keep_classes(arrays: dict, kept: list[int]) -> dict:
  """Only the examples whose label is in `kept`, relabelled to its position there."""
  new_label = np.full(max(max(kept), int(arrays["label"].max(initial=0))) + 1, -1, np.int32)
  new_label[kept] = np.arange(len(kept))
  labels = new_label[arrays["label"]]
  keep = labels >= 0
  return {"image": arrays["image"][keep], "label": labels[keep]}


def load_examples(config, split: str, max_examples: int) -> dict:
  """The first `max_examples` (0 = all) examples of `split`, counted after `config.classes` filters."""
  load = lambda n: sources.load_split(config.dataset, split, config.data_dir, config.download, n)
  kept = parse_classes(config.classes)
  if kept is None:
    return load(max_examples)
  if max_examples <= 0 or config.dataset.startswith("synthetic:"):  # synthetic data depends on n.
    return keep_classes(load(0), kept)
  n = 2 * max_examples
  while True:  # a growing prefix of the split until it holds max_examples of the kept classes.
    arrays = load(n)
    part = keep_classes(arrays, kept)
    if len(part["label"]) >= max_examples or len(arrays["label"]) < n:
      return {k: v[:max_examples] for k, v in part.items()}
    n *= 4


def data_facts(train: dict, test: dict, classes: list[int] | None = None) -> dict:
  """What the model and the preprocessing depend on, computed once from the data (JSON)."""
  if classes is not None:  # labels are positions in `classes`, the original ids.
    missing = sorted(set(classes) - {classes[i] for i in np.unique(train["label"])})
    if missing:
      raise UserError(f"config.classes keeps {missing}, which no training example has (the data has "
                      f"{len(train['label'])} examples of the kept classes); fix config.classes or raise "
                      "config.max_train_examples.")
  # Per-channel statistics of the training images (deterministic: computed from the data).
  pixels = train["image"].reshape(-1, train["image"].shape[-1]).astype(np.float64)
  facts = {"num_classes": int(max(train["label"].max(), test["label"].max())) + 1,
           "image_shape": list(train["image"].shape[1:]), "num_train_examples": len(train["label"]),
           "num_eval_examples": len(test["label"]), "mean": pixels.mean(0).tolist(),
           "std": np.maximum(pixels.std(0), 1e-3).tolist()}
  if classes is not None:
    facts |= {"num_classes": len(classes), "classes": list(classes)}
  return facts
