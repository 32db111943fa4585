"""`python -m jaxai.attack` on a tiny classification run trained here: its table, files and JSON agree
with the run's own evaluation (clean accuracy at eps 0, and the in-training PGD evaluator's robust
accuracy for the same seed), accuracy does not rise with eps, and bad requests fail before compiling."""
import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from jaxai import attack, tasks
from jaxai.core import trainer
from jaxai.errors import UserError
from tests.helpers import REPO_ROOT, check_ok, cli_env, error_lines, load_config

ROBUST_EPS, STEPS, SEED, N = 0.1, 5, 3, 100


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory, data_dir):
  """(workdir, final eval metrics) of mnist_cnn:tiny (40 steps, ~40% test accuracy, one checkpoint at
  the end) whose evaluation also ran PGD-5 at eps 0.1 on all its N test images."""
  config = load_config("mnist_cnn", {"num_train_steps": 40, "checkpoint_every_steps": 0,
                                     "max_eval_examples": N, "robust_eval.attacks": ("pgd",),
                                     "robust_eval.eps": ROBUST_EPS, "robust_eval.pgd_steps": STEPS,
                                     "robust_eval.seed": SEED})
  workdir = tmp_path_factory.mktemp("classifier")
  _, results = trainer.train_and_evaluate(config, str(workdir), tasks.make_task(config))
  return workdir, results


def attack_cli(workdir, *args) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "jaxai.attack", f"--workdir={workdir}", *args], env=cli_env(),
                        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_attack_command_reports_accuracy_against_eps_per_class_and_throughput(classification_run, tmp_path):
  workdir, results = classification_run
  eps = (0.0, 0.05, ROBUST_EPS)
  proc = check_ok(attack_cli(workdir, "--attack=pgd", f"--eps={','.join(map(str, eps))}", f"--steps={STEPS}",
                             f"--seed={SEED}", "--num_shown=4", f"--out_dir={tmp_path}"))
  record = json.loads((tmp_path / "pgd_linf.json").read_text())
  rows = {r["eps"]: r for r in record["results"]}
  assert tuple(rows) == eps and record["num_examples"] == N and record["step"] == 40
  accuracy = [rows[e]["accuracy"] for e in eps]
  # eps 0 is the run's own clean evaluation; the PGD figure is the in-training evaluator's (same seed).
  assert accuracy[0] == pytest.approx(results["eval/accuracy"], abs=1e-9) == record["clean_accuracy"]
  assert rows[ROBUST_EPS]["accuracy"] == pytest.approx(results["eval/robust_accuracy_pgd"], abs=1e-9)
  assert all(a >= b for a, b in zip(accuracy, accuracy[1:])) and accuracy[-1] < accuracy[0] - 0.2, accuracy
  for e in eps:
    assert rows[e]["max_perturbation"] <= e + 1e-6
    assert rows[e]["num_correct"] == round(N * rows[e]["accuracy"])
    if e > 0:
      assert rows[e]["max_perturbation"] > 0.9 * e and rows[e]["examples_steps_per_second"] > 0
  # Per class: the counts add up, the classes' figures average to the overall ones, and the most
  # affected class is the one with the largest drop.
  per_class = record["per_class"]
  assert [r["name"] for r in per_class][:3] == ["zero", "one", "two"]
  counts = np.array([r["count"] for r in per_class])
  assert counts.sum() == N
  assert np.dot(counts, [r["accuracy"][-1] for r in per_class]) / N == pytest.approx(accuracy[-1])
  worst = max(per_class, key=lambda r: r["clean_accuracy"] - r["accuracy"][-1])
  assert record["most_affected_class"]["name"] == worst["name"]
  # The printed table and files.
  out = proc.stdout
  assert "PGD-5 (linf, 1 restart" in out and "examples x steps / s" in out
  assert f"{ROBUST_EPS:8.4g}  {accuracy[2]:8.4f}" in out
  assert f"Most affected class: {worst['name']} (label {worst['label']})" in out
  for name in ("pgd_linf_accuracy.png", "pgd_linf_examples.png"):
    image = np.asarray(Image.open(tmp_path / name))
    assert image.ndim == 3 and image.shape[0] > 300 and image.std() > 10, name


_COMPILE_EVENTS = []  # names of jax's trace / lower / compile events, once the listener is registered.


def compiles_during(fn) -> tuple[int, str]:
  """(how many programs jax traced, lowered or compiled while `fn()` ran, its UserError's message)."""
  if not _COMPILE_EVENTS:
    _COMPILE_EVENTS.append("registered")
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, *_, **__: _COMPILE_EVENTS.append(name) if name.startswith("/jax/core/compile") else None)
  before = len(_COMPILE_EVENTS)
  with pytest.raises(UserError) as error:
    fn()
  return len(_COMPILE_EVENTS) - before, str(error.value)


@pytest.mark.parametrize("changes, message", [
    (dict(attack="cw"), "attack='cw' is unknown"),
    (dict(eps=(0.0, -0.1)), "must be >= 0"),
    (dict(eps=(0.3, 1.5)), "above the pixel range"),
    (dict(norm="l2", eps=(30.0,)), "above the pixel range"),   # needs the run's image shape: sqrt(784) = 28.
    (dict(norm="l1"), "norm='l1' is unknown"),
    (dict(steps=0), "steps=0"),
    (dict(restarts=0), "restarts=0"),
    (dict(attack="apgd", step_size=0.01), "--step_size applies to pgd only"),
    (dict(unroll=0), "--unroll=0"),
])
def test_bad_attack_settings_fail_before_anything_compiles(classification_run, changes, message):
  settings = attack.Settings(**{**dict(attack="pgd", eps=(0.0, 0.1), steps=STEPS), **changes})
  count, text = compiles_during(lambda: attack.run_attack(str(classification_run[0]), settings))
  assert message in text and count == 0, (text, count)


def test_bad_workdirs_and_flags_fail_before_anything_compiles(classification_run, tmp_path):
  workdir = classification_run[0]
  settings = attack.Settings(attack="pgd", eps=(0.1,), steps=STEPS)
  for name in ("config.json", "facts.json"):
    (tmp_path / "no_checkpoint").mkdir(exist_ok=True)
    shutil.copy(workdir / name, tmp_path / "no_checkpoint" / name)
  (tmp_path / "vae").mkdir()
  (tmp_path / "vae" / "config.json").write_text(json.dumps({"task": "vae"}))
  for where, message in ((tmp_path / "missing", "config.json does not exist"),
                         (tmp_path / "vae", "is a 'vae' run, not a 'classification' one"),
                         (tmp_path / "no_checkpoint", "has no checkpoint")):
    count, text = compiles_during(lambda: attack.run_attack(str(where), settings))
    assert message in text and count == 0, (text, count)
  count, text = compiles_during(lambda: attack.run_attack(str(workdir), settings, num_examples=-1))
  assert "--num_examples=-1" in text and count == 0
  for bad in ("0.1,x", "", "nan"):
    with pytest.raises(UserError, match="--eps="):
      attack.parse_eps(bad)
  assert attack.parse_eps("0.3, 0,0.1,0.1") == (0.0, 0.1, 0.3)
  # The command prints the message, without a traceback, and exits with 2.
  proc = attack_cli(workdir, "--eps=0,2", f"--out_dir={tmp_path / 'out'}")
  assert proc.returncode == 2 and "eps=2.0 is above the pixel range" in error_lines(proc)
  assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
