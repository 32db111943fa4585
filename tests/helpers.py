"""Shared helpers: where the data is, loading configs, running the CLI, reading a workdir back.

Tests never download: every dataset comes from `DATA_DIR` (../shared/data/tfds beside the checkout,
or $TFDS_DATA_DIR), from scikit-learn's bundled digits, or from the synthetic source.
"""
import hashlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import jax
import ml_collections

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIGS = REPO_ROOT / "configs"
# Raw (non-TFDS) data sets: conll2003/, sst2/, multi30k/, go_sgf/ (../shared/data beside the checkout).
RAW_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
DATA_DIR = Path(os.environ.get("TFDS_DATA_DIR") or
                Path(__file__).resolve().parents[2] / "shared" / "data" / "tfds")


def load_config(name: str, overrides: dict | None = None, variant: str = "tiny",
                set_data_dir: bool = True) -> ml_collections.ConfigDict:
  """configs/<name>.py:<variant> with `data_dir` set to DATA_DIR and dotted-key `overrides` applied.

  Unknown keys raise, as they would on the command line.
  """
  spec = importlib.util.spec_from_file_location(f"configs_{name}", CONFIGS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(variant)
  if set_data_dir:
    config.data_dir = str(DATA_DIR)
  for key, value in (overrides or {}).items():
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
      node = node[p]
    if leaf not in node:
      raise KeyError(f"config has no key {key!r}")
    node[leaf] = value
  return config


def indexed(n: int) -> dict:
  """Arrays whose values are their own row index, so a batch tells which examples it holds."""
  import numpy as np
  return {"index": np.arange(n), "image": np.arange(n * 4).reshape(n, 2, 2)}


def free_port() -> int:
  """A TCP port nobody listens on right now (for a local coordinator)."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def cli_env(devices: int = 1) -> dict:
  """The environment of a CLI subprocess: CPU only, with `devices` fake CPU devices."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
  if devices > 1:
    flags.append(f"--xla_force_host_platform_device_count={devices}")
  env["XLA_FLAGS"] = " ".join(flags)
  return env


def cli_command(config: str, workdir, overrides: dict | None = None, data_dir=DATA_DIR) -> list[str]:
  """`python -m jaxai.main --config=configs/<config> --workdir=... --config.k=v ...` as argv."""
  args = [sys.executable, "-m", "jaxai.main", f"--config={CONFIGS / config}", f"--workdir={workdir}"]
  if data_dir is not None:  # configs without datasets (RL) have no data_dir key.
    args.append(f"--config.data_dir={data_dir}")
  return args + [f"--config.{k}={v}" for k, v in (overrides or {}).items()]


def run_cli(config: str, workdir, overrides: dict | None = None, devices: int = 1, data_dir=DATA_DIR,
            timeout: float = 300, extra_args: list[str] = ()) -> subprocess.CompletedProcess:
  return subprocess.run(cli_command(config, workdir, overrides, data_dir) + list(extra_args), env=cli_env(devices),
                        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def check_ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
  assert proc.returncode == 0, f"CLI failed with exit code {proc.returncode}:\n{proc.stderr[-5000:]}"
  return proc


def error_lines(proc: subprocess.CompletedProcess) -> str:
  """The CLI's `error: ...` message, from its first line to the end of stderr, without absl log lines."""
  lines = proc.stderr.splitlines()
  first = next((i for i, line in enumerate(lines) if line.startswith("error:")), len(lines))
  return "\n".join(line for line in lines[first:] if not re.match(r"[IWEF]\d{4} ", line))


def metrics_lines(workdir) -> list[dict]:
  """Every record of metrics.jsonl, duplicates included; each line must be one JSON object with a step."""
  records = []
  for line in (Path(workdir) / "metrics.jsonl").read_text().splitlines():
    record = json.loads(line)
    assert isinstance(record, dict) and isinstance(record["step"], int), line
    records.append(record)
  return records


def checkpoint_steps(workdir) -> list[int]:
  """Steps of the committed checkpoints (directories named by a plain integer)."""
  directory = Path(workdir) / "checkpoints"
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())


def abstract_state(task, seed: int = 0):
  """ShapeDtypeStructs of `task.init`'s state on this process's mesh with the task's rules (what restore needs)."""
  from jaxai.core import sharding
  placement = sharding.placement(None, task.sharding_rules)
  return placement.with_shardings(jax.eval_shape(task.init, jax.random.key(seed)))


def restore_state(workdir, task, step: int | None = None):
  """The train state saved in `workdir` at `step` (default: the latest), read with the library's Checkpointer."""
  from jaxai.core.checkpoint import Checkpointer
  ckpt = Checkpointer(str(workdir), async_save=False)
  try:
    step = ckpt.latest_step() if step is None else step
    assert step is not None, f"no checkpoint in {workdir}"
    state, _ = ckpt.restore(step, abstract_state(task))
  finally:
    ckpt.close()
  return state


def leaves_with_paths(tree) -> dict:
  return {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def tree_digest(directory) -> str:
  """sha256 over every file's relative path and bytes under `directory`."""
  digest = hashlib.sha256()
  root = Path(directory)
  for path in sorted(p for p in root.rglob("*")):
    digest.update(str(path.relative_to(root)).encode())
    if path.is_file():
      digest.update(path.read_bytes())
  return digest.hexdigest()


def tensorboard_events(workdir) -> list:
  """Every `Event` proto in the TensorBoard files of `workdir` (TFRecord framing: length, crc, data, crc)."""
  import struct
  from tensorboardX.proto import event_pb2
  events = []
  for path in sorted(Path(workdir).glob("events.out.tfevents.*")):
    data = path.read_bytes()
    offset = 0
    while offset + 12 <= len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      event = event_pb2.Event()
      event.ParseFromString(data[offset + 12:offset + 12 + length])
      events.append(event)
      offset += 12 + length + 4
  return events


def assert_resume_is_bitwise(config, make_task, workdir) -> None:
  """Trains `config` to the end in `workdir`, then acts as if it had been killed after its first
  checkpoint (later ones deleted) and trains again: the final state must be bitwise the same.
  `config.checkpoint_every_steps` must be below `config.num_train_steps`."""
  import shutil
  import numpy as np
  from jaxai.core import trainer
  assert 0 < config.checkpoint_every_steps < config.num_train_steps
  config.async_checkpointing = False
  first, _ = trainer.train_and_evaluate(config, str(workdir), make_task(config))
  first = jax.device_get(first)
  steps = checkpoint_steps(workdir)
  assert len(steps) >= 2, steps
  for step in steps[1:]:
    shutil.rmtree(Path(workdir) / "checkpoints" / str(step))
  again, _ = trainer.train_and_evaluate(config, str(workdir), make_task(config))
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(jax.device_get(again)), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
