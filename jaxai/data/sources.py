"""Whole dataset splits as in-memory numpy arrays.

`dataset` names:
  '<tfds name>[:version]'  read with `tfds.data_source` from `data_dir` (array_record format), e.g.
                           'mnist', 'fashion_mnist:3.0.1', 'cifar10'. Prepared on first use when
                           `download` is on and the network is reachable.
  'digits'                 scikit-learn's bundled 8x8 digits (1,797 images, no download): the quick start.
  'synthetic:HxWxC:K'      random class-template images for smoke tests where a dataset is absent.
"""
import os
import socket

import numpy as np
from absl import logging

from jaxai.errors import UserError

DOWNLOAD_PROBE = ("storage.googleapis.com", 443)  # where TFDS fetches the datasets used here.


def resolve_data_dir(data_dir: str) -> str:
  """`config.data_dir`, else $TFDS_DATA_DIR, else TFDS's default (~/tensorflow_datasets)."""
  data_dir = data_dir or os.environ.get("TFDS_DATA_DIR", "")
  return os.path.expanduser(data_dir or "~/tensorflow_datasets")


def _online(timeout: float = 3.0) -> bool:
  try:
    socket.create_connection(DOWNLOAD_PROBE, timeout=timeout).close()
    return True
  except OSError:
    return False


def _tfds_builder(name: str, data_dir: str, download: bool):
  import tensorflow_datasets as tfds
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(f"Unknown dataset {name!r}: TFDS has no builder of that name. Use a TFDS name "
                    "such as 'mnist', 'fashion_mnist' or 'cifar10' (`tfds.list_builders()` lists all), "
                    "'digits', or 'synthetic:HxWxC:K'.") from None
  except ValueError as e:  # An unknown version, e.g. 'mnist:9.9.9'.
    raise UserError(f"Dataset {name!r}: {e}") from None
  where = builder.data_dir
  if os.path.exists(os.path.join(where, "dataset_info.json")):
    if "array_record" not in str(builder.info.file_format).lower():
      raise UserError(f"Dataset {name!r} in {where} is prepared as {builder.info.file_format}, but "
                      "random access needs array_record. Prepare it again into another data_dir with "
                      f"`tfds build {name} --file_format=array_record --data_dir=<dir>`.")
    return builder
  how = (f"Provide it by pointing --config.data_dir (or $TFDS_DATA_DIR) at a directory holding "
         f"{builder.info.full_name}, or prepare it on a machine with internet access with "
         f"`tfds build {name} --file_format=array_record --data_dir=<dir>` and copy <dir> here.")
  if not download:
    raise UserError(f"Dataset {name!r} is not in data_dir {data_dir!r} (looked for {where}) and "
                    f"downloading is off (--config.download=False). {how}")
  if not _online():
    raise UserError(f"Dataset {name!r} is not in data_dir {data_dir!r} (looked for {where}) and "
                    f"this machine cannot reach {DOWNLOAD_PROBE[0]} to download it. {how}")
  try:
    import tensorflow  # noqa: F401  TFDS encodes examples with TensorFlow while preparing.
  except ImportError:
    raise UserError(f"Dataset {name!r} must be downloaded and prepared once, which TFDS does with "
                    "TensorFlow: `pip install 'jaxai[prepare]'` (or tensorflow-cpu), then run again. "
                    "Reading prepared data needs no TensorFlow.") from None
  logging.info("Preparing %s in %s (first use only).", name, data_dir)
  builder.download_and_prepare(file_format="array_record")
  return builder


def tfds_source(name: str, split: str, data_dir: str = "", download: bool = True):
  """The random-access TFDS source of one split (records are dicts of numpy values / bytes), with
  the checks and first-use preparation of `load_split`."""
  import tensorflow_datasets as tfds
  data_dir = resolve_data_dir(data_dir)
  builder = _tfds_builder(name, data_dir, download)
  if split not in builder.info.splits:
    raise UserError(f"Dataset {name!r} has no split {split!r}; it has {sorted(builder.info.splits)}.")
  return tfds.data_source(name, split=split, data_dir=data_dir, download=False)


def _tfds_split(name: str, split: str, data_dir: str, download: bool, max_examples: int) -> dict:
  source = tfds_source(name, split, data_dir, download)
  n = len(source) if max_examples <= 0 else min(max_examples, len(source))
  records = source.__getitems__(list(range(n)))  # decodes each image once.
  return {"image": np.stack([r["image"] for r in records]).astype(np.uint8),
          "label": np.asarray([r["label"] for r in records], np.int32)}


def _digits(split: str) -> dict:
  from sklearn.datasets import load_digits
  digits = load_digits()
  images = np.round(digits.images * (255 / 16)).astype(np.uint8)[..., None]  # (1797, 8, 8, 1)
  order = np.random.default_rng(0).permutation(len(images))  # fixed split, independent of config.seed.
  cut = int(0.8 * len(images))
  idx = order[:cut] if split == "train" else order[cut:]
  return {"image": images[idx], "label": digits.target[idx].astype(np.int32)}


def _synthetic(spec: str, split: str, max_examples: int) -> dict:
  try:
    shape, classes = spec.split(":")
    h, w, c = (int(s) for s in shape.split("x"))
    classes = int(classes)
  except ValueError:
    raise UserError(f"Synthetic dataset spec {spec!r} must look like 'HxWxC:K', e.g. '32x32x3:10'.") from None
  n = max_examples if max_examples > 0 else (2048 if split == "train" else 512)
  templates = np.random.default_rng(1234).integers(0, 256, (classes, h, w, c))
  rng = np.random.default_rng(0 if split == "train" else 1)
  labels = rng.integers(0, classes, n).astype(np.int32)
  noise = rng.normal(0, 40, (n, h, w, c))
  return {"image": np.clip(templates[labels] + noise, 0, 255).astype(np.uint8), "label": labels}


def load_split(dataset: str, split: str, data_dir: str = "", download: bool = True,
               max_examples: int = 0) -> dict:
  """{'image': uint8 (N, H, W, C), 'label': int32 (N,)} for one split; the first `max_examples` if > 0."""
  if dataset == "digits":
    arrays = _digits(split)
  elif dataset.startswith("synthetic:"):
    arrays = _synthetic(dataset[len("synthetic:"):], split, max_examples)
  else:
    arrays = _tfds_split(dataset, split, data_dir, download, max_examples)
  if max_examples > 0:
    arrays = {k: v[:max_examples] for k, v in arrays.items()}
  return arrays
