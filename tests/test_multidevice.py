"""Runs tests/multidevice (in-process tests that need 4 devices) in one subprocess with 4 fake CPU
devices: one interpreter start for all of them instead of one subprocess per check."""
import subprocess
import sys

from tests.helpers import REPO_ROOT, cli_env


def test_multidevice_suite():
  proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/multidevice"],
                        cwd=REPO_ROOT, env=cli_env(devices=4), capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
  assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1], proc.stdout[-2000:]
