"""What the generative models share: their config keys, the image data and its class names, the
`Generator` each model exposes, and the sample grid every run draws at each evaluation.

A generative domain module (gan, vae, text2image) exposes `make_task(config, facts)` and
`make_generator(config, facts) -> Generator`; the sample grid, the quality evaluator
(jaxai.tasks.generative.quality) and `python -m jaxai.generate` use only the Generator.
"""
import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxai.core.config import trainer_config
from jaxai.core.evaluators import Evaluator
from jaxai.core.summaries import Image
from jaxai.data import sources
from jaxai.errors import UserError

CLASS_NAMES = {  # by TFDS name (a version suffix is ignored).
    "mnist": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "fashion_mnist": ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                      "bag", "ankle boot"),
}
CONDITIONINGS = ("none", "class", "prompt")


def default_config() -> ml_collections.ConfigDict:
  """The keys every generative experiment has; each domain adds its model's."""
  config = trainer_config()
  config.dataset = "mnist"          # 'mnist' or 'fashion_mnist' (TFDS name[:version]); 'synthetic:...' in tests.
  config.data_dir = ""              # TFDS data_dir; '' = $TFDS_DATA_DIR or ~/tensorflow_datasets.
  config.download = True
  config.max_train_examples = 0     # > 0: the first N training images only (tests, smoke runs).
  config.max_eval_examples = 0      # > 0: the first N test images only.
  config.eval_batch_size = 1000
  config.samples = ml_collections.ConfigDict(dict(
      per_class=8,                  # sample grid: this many per class (one row each), or rows x 8 unconditional.
      rows=8,                       # rows of the grid of an unconditional model.
  ))
  config.quality = ml_collections.ConfigDict(dict(
      classifier_workdir="",        # a classification run on the same images (e.g. configs/mnist_cnn.py);
                                    # '' = no Frechet distance or class accuracy.
      num_samples=10000,            # generated images scored (and test / train images for the reference).
      batch_size=500,
      every_steps=0,                # 0 = at every evaluation (config.eval_every_steps) and at the end.
  ))
  return config


def class_names(dataset: str, num_classes: int) -> tuple[str, ...]:
  """The words for each class ('seven', 'ankle boot'); class i is 'class i' for unnamed datasets."""
  names = CLASS_NAMES.get(dataset.split(":")[0])
  if names is None or len(names) != num_classes:
    return tuple(f"class {i}" for i in range(num_classes))
  return names


def load_split(config, split: str) -> dict:
  """{'image': uint8 (N, H, W, C), 'label': int32 (N,)} of 'train' or 'test'."""
  limit = config.max_train_examples if split == "train" else config.max_eval_examples
  return sources.load_split(config.dataset, split, config.data_dir, config.download, limit)


def split_loader(config) -> Callable[[str], dict]:
  """`load(split)` for 'train' and 'test', each read once: the facts, the source and the evaluators
  of a run share the arrays."""
  return functools.cache(lambda split: load_split(config, split))


def data_facts(config, train: dict, test: dict) -> dict:
  num_classes = int(max(train["label"].max(), test["label"].max())) + 1
  return {"image_shape": list(train["image"].shape[1:]), "num_classes": num_classes,
          "class_names": list(class_names(config.dataset, num_classes)),
          "num_train_examples": len(train["label"]), "num_eval_examples": len(test["label"])}


def to_unit(images):
  """uint8 pixels -> float32 in [0, 1]."""
  return images.astype(jnp.float32) / 255.0


@dataclasses.dataclass(frozen=True)
class Generator:
  """How a trained model makes images, for grids, quality scores and the generate command.

  sample(state, rng, condition) -> (N, H, W, C) float32 in [0, 1]: pure and traceable (the caller
    compiles it). `condition` is (N,) int32 class ids ('class'), (N, L) int32 prompt tokens
    ('prompt'), or (N,) int32 that only gives N ('none').
  of_classes(labels) -> condition: (N,) class ids as this model's condition (a caption of each class
    for prompt models; only their number for unconditional ones).
  parse(text) -> one condition row for `--class` or `--prompt` text; a UserError naming what is
    allowed when the class is unknown or a word is outside the vocabulary.
  """
  sample: Callable[[Any, jax.Array, Any], jax.Array]
  conditioning: str
  class_names: tuple[str, ...]
  of_classes: Callable[[np.ndarray], np.ndarray]
  parse: Callable[[str], np.ndarray]

  def __post_init__(self):
    if self.conditioning not in CONDITIONINGS:
      raise ValueError(f"conditioning={self.conditioning!r} is not one of {CONDITIONINGS}.")


def parse_class(class_names_: tuple[str, ...]) -> Callable[[str], np.ndarray]:
  """`parse` for class-conditional models: a class index ('7') or name ('seven', 'ankle boot')."""
  def parse(text: str) -> np.ndarray:
    key = text.strip().lower()
    if key.isdigit() and int(key) < len(class_names_):
      return np.int32(int(key))
    if key in class_names_:
      return np.int32(class_names_.index(key))
    raise UserError(f"Unknown class {text!r}: give an index 0-{len(class_names_) - 1} or one of "
                    f"{', '.join(class_names_)}.")
  return parse


def unconditional_parse(text: str) -> np.ndarray:
  if text:
    raise UserError(f"This model is unconditional: it cannot generate {text!r}. Leave out --class and --prompt.")
  return np.int32(0)


def grid_classes(generator: Generator, per_class: int, rows: int) -> tuple[np.ndarray, int]:
  """(labels of the grid's cells, columns): one row per class, or `rows` x 8 when unconditional."""
  if generator.conditioning == "none":
    return np.zeros(rows * 8, np.int32), 8
  k = len(generator.class_names)
  return np.repeat(np.arange(k, dtype=np.int32), per_class), per_class


def sample_grid(generator: Generator, config, tag: str = "samples") -> Evaluator:
  """An evaluator drawing the same grid at each evaluation (fixed noise): '<tag>' as PNG and TensorBoard."""
  labels, columns = grid_classes(generator, config.samples.per_class, config.samples.rows)
  condition = generator.of_classes(labels)
  return Evaluator(lambda state, rng: generator.sample(state, jax.random.key(config.seed), condition),
                   finish=lambda images, step: {tag: Image(images, columns=columns)})
