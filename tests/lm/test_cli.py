"""The language-model configs through the real command line: training, eval-time samples, sampling CLI."""
import math
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT, check_ok, checkpoint_steps, cli_env, error_lines, metrics_lines, run_cli


def sample_cli(workdir, *args) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "jaxai.lm.sample", f"--workdir={workdir}", *args], env=cli_env(),
                        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
  """Data-parallel over 2 devices, each step's batch of 8 in 2 microbatches (sampling then restores on 1)."""
  workdir = tmp_path_factory.mktemp("gpt")
  check_ok(run_cli("shakespeare_char_gpt.py:tiny", workdir, {"grad_accum_steps": 2}, devices=2))
  return workdir


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


def test_sample_cli_is_reproducible(gpt_run):
  args = ("--prompt=ROMEO:", "--num_chars=80", "--temperature=0.8", "--top_k=40", "--seed=0")
  first, second = check_ok(sample_cli(gpt_run, *args)), check_ok(sample_cli(gpt_run, *args))
  text = first.stdout.rstrip("\n")
  assert text.startswith("ROMEO:") and len(text) == 6 + 80
  assert first.stdout == second.stdout
  assert "Sampling from step 20" in first.stderr


@pytest.mark.parametrize("prompt, message", [("", "--prompt is empty"),
                                             ("ROMEO:\u00e9", "outside the model's vocabulary: '\u00e9'")])
def test_sample_cli_rejects_bad_prompts(gpt_run, prompt, message):
  proc = sample_cli(gpt_run, f"--prompt={prompt}", "--num_chars=10")
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert message in error_lines(proc)


def test_sample_cli_without_a_run_is_a_clear_error(tmp_path):
  proc = sample_cli(tmp_path, "--prompt=ROMEO:")
  assert proc.returncode == 2 and "config.json does not exist" in error_lines(proc)


def test_tiny_lstm_runs_end_to_end_and_samples(tmp_path):
  check_ok(run_cli("shakespeare_char_lstm.py:tiny", tmp_path, {"eval_every_steps": 0}))
  evals = [r for r in metrics_lines(tmp_path) if "eval/loss" in r]
  assert [r["step"] for r in evals] == [20] and math.isfinite(evals[0]["eval/loss"])
  assert (tmp_path / "samples" / "step_20.txt").exists()
  proc = check_ok(sample_cli(tmp_path, "--prompt=JULIET:", "--num_chars=30", "--num_samples=2"))
  assert proc.stdout.count("JULIET:") == 2
