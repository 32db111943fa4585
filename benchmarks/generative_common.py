"""What the generative benchmarks share: the feature classifier of the Frechet distance (trained first
when missing), training a config through the real command line, and reading its figures back.

The classifier is the project's CNN (configs/mnist_cnn.py, configs/fashion_mnist_cnn.py) trained for
`CLASSIFIER_EPOCHS` epochs into `<root>/classifier_<dataset>`; a finished run there is reused.
"""
import json
import os
import subprocess
import sys
import time

from jaxai.core import metrics as metrics_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "tfds"))
CLASSIFIER_CONFIGS = {"mnist": "configs/mnist_cnn.py", "fashion_mnist": "configs/fashion_mnist_cnn.py"}
CLASSIFIER_EPOCHS = 3  # ~99.1% on MNIST, ~91% on Fashion-MNIST; the features need not be the best.


def dataset_name(dataset: str) -> str:
  """'fashion_mnist:3.0.1' -> 'fashion_mnist'."""
  return dataset.split(":")[0]


def run_main(config: str, workdir: str, data_dir: str, overrides: list[str] = ()) -> float:
  """`python -m jaxai.main` from the repository root (log to the console); its wall time in seconds."""
  cmd = [sys.executable, "-m", "jaxai.main", f"--config={config}", f"--workdir={workdir}",
         f"--config.data_dir={data_dir}", *overrides]
  print("$ " + " ".join(cmd), flush=True)
  start = time.perf_counter()
  code = subprocess.call(cmd, cwd=REPO)
  if code != 0:
    sys.exit(f"error: {' '.join(cmd)} exited with status {code}")
  return time.perf_counter() - start


def classifier_workdir(dataset: str, root: str, data_dir: str = DEFAULT_DATA_DIR) -> str:
  """A trained classification run on `dataset` under `root` (trained now unless it already finished)."""
  name = dataset_name(dataset)
  if name not in CLASSIFIER_CONFIGS:
    sys.exit(f"error: no feature classifier config for {dataset!r}; known: {sorted(CLASSIFIER_CONFIGS)}.")
  workdir = os.path.join(root, f"classifier_{name}")
  if final_metrics(workdir).get("eval/accuracy") is None:  # absent or unfinished: train (or resume).
    run_main(CLASSIFIER_CONFIGS[name], workdir, data_dir, [f"--config.num_epochs={CLASSIFIER_EPOCHS}"])
  print(f"feature classifier {workdir}: test accuracy {final_metrics(workdir)['eval/accuracy']:.4f}", flush=True)
  return workdir


def final_metrics(workdir: str) -> dict:
  """The latest value of every key in `<workdir>/metrics.jsonl` ({} when there is none)."""
  if not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    return {}
  out = {}
  for record in metrics_lib.read_metrics(workdir):
    out.update(record)
  return out


def train_seconds(workdir: str) -> float:
  """Seconds spent in train steps: the sum of the trainer's log intervals (no eval, no compile)."""
  seconds, prev = 0.0, 0
  for r in metrics_lib.read_metrics(workdir):
    if "perf/steps_per_sec" in r and r["perf/steps_per_sec"] > 0:
      seconds += (r["step"] - prev) / r["perf/steps_per_sec"]
      prev = r["step"]
  return seconds


def write_json(path: str, figures) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(figures, f, indent=2, sort_keys=True)
  print(f"figures written to {path}", flush=True)
