"""Every domain trains under jax.distributed: 2 local processes (launch/local.py) over one mesh.

Classification, RL and AlphaZero have their own multi-process tests (test_cli_multiprocess.py,
tasks/test_rl_cli.py, go/test_alphazero.py).
"""
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import DATA_DIR, REPO_ROOT, check_ok, cli_env, metrics_lines, run_cli


def launch(config: str, workdir, *args: str) -> subprocess.CompletedProcess:
  return check_ok(subprocess.run(
      [sys.executable, "launch/local.py", "--processes=2", "--", f"--config={REPO_ROOT / 'configs' / config}",
       f"--workdir={workdir}", *args], cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True,
      timeout=600))


@pytest.mark.extended  # test_cli_multiprocess.py shows the same for classification in the default run.
def test_char_gpt_in_two_processes_matches_one_process_with_two_devices(tmp_path):
  """Each process reads only its rows of every global batch; the losses equal one process's."""
  two, one = tmp_path / "two", tmp_path / "one"
  overrides = {"num_train_steps": 6, "log_every_steps": 1}
  proc = launch("shakespeare_char_gpt.py:tiny", two, f"--config.data_dir={DATA_DIR}",
                *[f"--config.{k}={v}" for k, v in overrides.items()])
  assert "2 devices, 2 processes" in proc.stderr
  check_ok(run_cli("shakespeare_char_gpt.py:tiny", one, overrides, devices=2))
  losses = lambda w: [r["train/loss"] for r in metrics_lines(w) if "train/loss" in r]
  assert len(losses(two)) == 6
  np.testing.assert_allclose(losses(two), losses(one), rtol=1e-5)
