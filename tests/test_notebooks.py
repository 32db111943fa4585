"""Every notebook in notebooks/ runs headless, top to bottom, without error (its own asserts included)."""
import os
import pathlib

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
  assert NOTEBOOKS, "notebooks/ holds no .ipynb"


# The default run executes the notebooks of the classifier and the language model (the notebook path
# itself); the others, each a minute of CPU, run with -m extended (their domains have CLI tests).
EXTENDED = {"mnist_adversarial.ipynb", "mnist_vae.ipynb", "cartpole_rl.ipynb"}


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.extended) if p.name in EXTENDED else p
                                  for p in NOTEBOOKS], ids=lambda p: p.name)
def test_notebook_runs(path):
  nb = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(path.parent)}})
  client.execute(env={**os.environ, "JAX_PLATFORMS": "cpu"})  # a failing cell raises CellExecutionError
