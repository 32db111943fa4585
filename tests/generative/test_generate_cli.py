"""The generative domain through the real command line: a tiny conditional GAN trained by
`python -m jaxai.main`, then `python -m jaxai.generate` drawing a requested class into a PNG from the
run's files alone; bad requests are errors that say what to give instead."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxai import generate
from jaxai.data import sources
from jaxai.errors import UserError
from tests.helpers import REPO_ROOT, check_ok, cli_env, error_lines, metrics_lines, run_cli


def generate_cli(workdir, *args) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "jaxai.generate", f"--workdir={workdir}", *args], env=cli_env(),
                        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory, data_dir):
  workdir = tmp_path_factory.mktemp("cgan")
  check_ok(run_cli("mnist_cgan.py:tiny", workdir))
  return workdir


def test_tiny_cgan_trains_and_draws_a_grid_per_evaluation(cgan_run):
  records = metrics_lines(cgan_run)
  assert any("train/d_loss" in r and "train/g_loss" in r for r in records)
  grids = sorted((cgan_run / "samples").glob("step_*.png"))
  assert grids
  grid = np.asarray(Image.open(grids[-1]))
  assert grid.shape[0] == 10 * 29 - 1  # one row of 28-pixel images (1-pixel gaps) per class.


def test_generate_cli_draws_the_requested_class_from_the_run_alone(cgan_run, tmp_path, monkeypatch):
  out = tmp_path / "sevens.png"
  proc = check_ok(generate_cli(cgan_run, "--class=seven", "--num=12", "--columns=4", f"--out={out}"))
  assert "Wrote 12 images" in proc.stdout
  grid = np.asarray(Image.open(out))
  assert grid.shape == (3 * 29 - 1, 4 * 29 - 1)
  # The library gives the same images for the same seed (by name or index), and reads no data.
  monkeypatch.setattr(sources, "tfds_source", lambda *a, **k: pytest.fail("generate read the dataset"))
  first, step = generate.generate(str(cgan_run), num=12, class_="7", seed=0)
  again, _ = generate.generate(str(cgan_run), num=12, class_="seven", seed=0)
  other, _ = generate.generate(str(cgan_run), num=12, class_="7", seed=1)
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other) and first.shape == (12, 28, 28, 1)
  assert 0.0 <= first.min() and first.max() <= 1.0


def test_bad_requests_are_errors_before_anything_compiles(cgan_run, tmp_path):
  proc = generate_cli(cgan_run, "--class=dragon", f"--out={tmp_path / 'x.png'}")
  assert proc.returncode == 2 and "Unknown class 'dragon'" in error_lines(proc) and "seven" in error_lines(proc)
  assert not (tmp_path / "x.png").exists()
  with pytest.raises(UserError, match="conditioned on a class, not a prompt"):
    generate.generate(str(cgan_run), prompt="a handwritten seven")
  with pytest.raises(UserError, match="models that sample tokens"):
    generate.generate(str(cgan_run), class_="7", temperature=1.0)
  with pytest.raises(UserError, match="conditional: give --class"):
    generate.generate(str(cgan_run))
  with pytest.raises(UserError, match="must name a .png"):
    generate.check_args(4, 0, "out.jpg", "7", "")
  with pytest.raises(UserError, match="config.json does not exist"):
    generate.generate(str(tmp_path))
  classifier = tmp_path / "classifier"
  shutil.copytree(cgan_run, classifier, ignore=shutil.ignore_patterns("checkpoints"))
  (classifier / "config.json").write_text('{"task": "classification"}')
  with pytest.raises(UserError, match="does not generate images"):
    generate.generate(str(classifier), class_="7")
