"""`--config.profile_steps=N` records a JAX profiler trace of N train steps into workdir/profile."""
import gzip
import json

from tests.helpers import check_ok, run_cli


def test_profile_window_writes_a_trace_of_the_train_step(data_dir, tmp_path):
  proc = check_ok(run_cli("mnist_cnn.py:tiny", tmp_path, {"num_train_steps": 8, "profile_steps": 3,
                                                           "profile_after_steps": 2}))
  assert "Profiler trace of steps 3-5" in proc.stderr
  traces = list((tmp_path / "profile").glob("plugins/profile/*/*.trace.json.gz"))
  assert len(traces) == 1 and list(traces[0].parent.glob("*.xplane.pb"))
  events = json.load(gzip.open(traces[0]))["traceEvents"]
  step_calls = [e for e in events if "step_with_rng" in e.get("name", "") and e.get("ph") == "X"]
  assert step_calls, "the trace holds no call of the train step"


def test_negative_profile_steps_is_a_clear_error(data_dir, tmp_path):
  proc = run_cli("mnist_cnn.py:tiny", tmp_path, {"profile_steps": -1})
  assert proc.returncode == 2 and "config.profile_steps=-1 must be >= 0" in proc.stderr, proc.stderr[-2000:]
