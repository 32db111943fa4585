"""PPO and DQN through the real command line, on real EnvPool environments (tiny configs)."""
import math
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import (check_ok, checkpoint_steps, cli_command, cli_env, error_lines, load_config,
                           metrics_lines, run_cli, REPO_ROOT)

RL_CONFIGS = ["cartpole_ppo", "cartpole_dqn", "atari_ppo", "atari_dqn"]


@pytest.mark.parametrize("name", RL_CONFIGS)
def test_tiny_rl_config_runs_end_to_end(name, tmp_path):
  check_ok(run_cli(f"{name}.py:tiny", tmp_path, data_dir=None))
  records = metrics_lines(tmp_path)
  train = [r for r in records if "train/loss" in r]
  evals = [r for r in records if "eval/episode_return" in r]
  assert train and evals, records
  for r in train:
    assert {"env_steps", "perf/env_steps_per_sec"} <= set(r), r
    assert math.isfinite(r["train/loss"])
  assert train[-1]["env_steps"] > train[0]["env_steps"] > 0
  if name.startswith("cartpole"):  # random CartPole games last ~20 steps: some must have finished.
    assert any("rl/episode_return" in r and r["rl/episode_return"] >= 8 for r in train), train
  assert evals[-1]["eval/episodes"] == load_config(name, set_data_dir=False).eval_episodes
  assert checkpoint_steps(tmp_path)[-1] == train[-1]["step"]


def test_ppo_learns_the_early_part_of_cartpole(tmp_path):
  """A short PPO run already lengthens CartPole episodes well beyond the random policy's ~22 steps
  (the full config reaches 500; see benchmarks/rl_cartpole.py)."""
  proc = run_cli("cartpole_ppo.py", tmp_path, data_dir=None, overrides={
      "total_env_steps": 4 * 128 * 40, "eval_every_steps": 0, "log_every_steps": 5,
      "eval_episodes": 10, "checkpoint_every_steps": 0})
  check_ok(proc)
  records = metrics_lines(tmp_path)
  returns = [r["rl/episode_return"] for r in records if "rl/episode_return" in r]
  assert returns[-1] > 1.5 * returns[0], returns
  final = [r for r in records if "eval/episode_return" in r][-1]
  assert final["eval/episode_return"] > 100, final


def test_ppo_runs_on_four_devices(tmp_path):
  """Rollout rows (envs) are split over a 4-device mesh; the update runs data-parallel."""
  check_ok(run_cli("cartpole_ppo.py:tiny", tmp_path, data_dir=None, devices=4))
  assert [r for r in metrics_lines(tmp_path) if "train/loss" in r]


def test_dqn_runs_in_two_processes(tmp_path):
  """Under jax.distributed each process steps its own envs with its copy of the replicated params;
  the rows form one global batch and the replicated replay buffer holds every process's envs."""
  proc = subprocess.run([sys.executable, "launch/local.py", "--processes=2", "--",
                         f"--config={REPO_ROOT / 'configs/cartpole_dqn.py'}:tiny", f"--workdir={tmp_path}",
                         "--config.total_env_steps=640"], cwd=REPO_ROOT, env=cli_env(), capture_output=True,
                        text=True, timeout=300)
  check_ok(proc)
  assert "2 processes" in proc.stderr
  assert [r for r in metrics_lines(tmp_path) if "eval/episode_return" in r]


def test_dqn_resumes_after_sigkill_with_its_replay_buffer(tmp_path):
  """Killed mid-run, the restarted run resumes from the last checkpoint (counters, networks and the
  replay buffer) and finishes; environments restart (their state cannot be saved)."""
  overrides = {"total_env_steps": 60_000, "checkpoint_every_steps": 200, "log_every_steps": 100,
               "learning_starts": 500, "eval_every_steps": 0}
  command = cli_command("cartpole_dqn.py:tiny", tmp_path, overrides, data_dir=None)
  proc = subprocess.Popen(command, env=cli_env(), cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while not checkpoint_steps(tmp_path) and time.time() < deadline and proc.poll() is None:
    time.sleep(0.2)
  assert proc.poll() is None, "the run ended before it could be killed; make it longer"
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  killed_at = checkpoint_steps(tmp_path)[-1]
  total = 60_000 // 10
  assert killed_at < total

  restarted = check_ok(run_cli("cartpole_dqn.py:tiny", tmp_path, overrides, data_dir=None))
  assert f"Resumed from step {killed_at}" in restarted.stderr
  assert checkpoint_steps(tmp_path)[-1] == total
  train = [r for r in metrics_lines(tmp_path) if "train/loss" in r]
  assert train[-1]["step"] == total and train[-1]["env_steps"] == total * 10


def test_bad_env_id_is_a_clear_error(tmp_path):
  proc = run_cli("cartpole_ppo.py:tiny", tmp_path, data_dir=None, overrides={"env_id": "Pongg-v5"})
  assert proc.returncode == 2
  message = error_lines(proc)
  assert "Pongg-v5" in message and "Pong-v5" in message, message
  assert not checkpoint_steps(tmp_path)
