"""The language-model configs through the real command line: training, eval-time samples, and sampling
with `python -m jaxai.sample` from the run's config and facts, without its training data."""
import json
import math
import shutil
import subprocess
import sys

import pytest

from jaxai import sample
from jaxai.data import sources, text
from jaxai.errors import UserError
from tests.helpers import REPO_ROOT, check_ok, checkpoint_steps, cli_env, error_lines, metrics_lines, run_cli

ARGS = dict(prompt="ROMEO:", num_chars=80, temperature=0.8, top_k=40, seed=0)


def sample_cli(workdir, *args) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "jaxai.sample", f"--workdir={workdir}", *args], env=cli_env(),
                        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
  """Data-parallel over 2 devices, each step's batch of 8 in 2 microbatches, up to 4 steps per device
  call (calls of 4 and 1 steps around the logs every 5; sampling then restores on 1 device)."""
  workdir = tmp_path_factory.mktemp("gpt")
  check_ok(run_cli("shakespeare_char_gpt.py:tiny", workdir, {"grad_accum_steps": 2, "steps_per_call": 4}, devices=2))
  return workdir


@pytest.fixture
def no_text(monkeypatch):
  """Any read of a dataset fails the test."""
  def unreachable(*args, **kwargs):
    raise AssertionError("the sampler read the dataset")
  monkeypatch.setattr(text, "load_text", unreachable)
  monkeypatch.setattr(sources, "tfds_source", unreachable)


def test_tiny_gpt_trains_logs_and_writes_samples(gpt_run):
  records = metrics_lines(gpt_run)
  train = [r for r in records if "train/loss" in r]
  evals = [r for r in records if "eval/loss" in r]
  assert [r["step"] for r in train] == [5, 10, 15, 20] and [r["step"] for r in evals] == [10, 20]
  for r in train:
    assert r["tokens"] == r["step"] * 8 * 32 and r["perf/tokens_per_sec"] > 0 and 0 < r["perf/mfu"] < 1
  assert math.log(65) - 0.5 < evals[0]["eval/loss"] < math.log(65) + 0.5  # near uniform after 10 steps.
  assert evals[-1]["eval/loss"] < evals[0]["eval/loss"]
  assert checkpoint_steps(gpt_run)[-1] == 20
  samples = sorted(p.name for p in (gpt_run / "samples").iterdir())
  assert samples == ["step_10.txt", "step_20.txt"]
  assert len((gpt_run / "samples" / "step_20.txt").read_text()) == 1 + 40  # prompt '\n' + 40 characters.
  assert json.loads((gpt_run / "facts.json").read_text())["vocab"][:3] == "\n !"


def test_sample_cli_is_reproducible_without_the_training_data(gpt_run, tmp_path, no_text):
  """The CLI on a copy of the run whose config points at an empty data directory, and the library
  (its loaders failing the test) on the run itself: the same text for the same seed."""
  run = tmp_path / "run"
  shutil.copytree(gpt_run, run)
  config = json.loads((run / "config.json").read_text())
  (tmp_path / "empty").mkdir()
  config.update(data_dir=str(tmp_path / "empty"), download=False)
  (run / "config.json").write_text(json.dumps(config))
  proc = check_ok(sample_cli(run, *(f"--{k}={v}" for k, v in ARGS.items())))
  text_out = proc.stdout.rstrip("\n")
  assert text_out.startswith("ROMEO:") and len(text_out) == 6 + 80
  assert "Sampling from step 20" in proc.stderr
  first, second = sample.sample(str(gpt_run), **ARGS), sample.sample(str(gpt_run), **ARGS)
  assert first == second == [text_out]


@pytest.mark.parametrize("prompt, message", [("", "--prompt is empty"),
                                             ("ROMEO:\u00e9", "outside the model's vocabulary: '\u00e9'")])
def test_bad_prompts_are_clear_errors(gpt_run, prompt, message, no_text):
  with pytest.raises(UserError, match=message):
    sample.sample(str(gpt_run), prompt, num_chars=10)


def test_sample_cli_reports_errors_with_exit_code_2(gpt_run):
  proc = sample_cli(gpt_run, "--prompt=", "--num_chars=10")
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "--prompt is empty" in error_lines(proc)


def test_sampling_without_a_run_is_a_clear_error(tmp_path):
  with pytest.raises(UserError, match="config.json does not exist"):
    sample.sample(str(tmp_path), "ROMEO:")
