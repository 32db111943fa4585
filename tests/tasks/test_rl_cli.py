"""PPO and DQN on real EnvPool environments: every tiny RL config end to end (through the real command
line on 4 devices and in 2 processes; the 1-device ones in this process, through the same trainer: the
1-device command line runs below, killed and resumed), learning, resuming after SIGKILL, a bad env id."""
import math
import signal
import subprocess
import sys
import time

import pytest

from jaxai import tasks
from jaxai.core import trainer
from jaxai.tasks.rl import ppo
from tests.helpers import (check_ok, checkpoint_steps, cli_command, cli_env, error_lines, load_config,
                           metrics_lines, run_cli, REPO_ROOT)

# config: (devices, processes). cartpole_ppo's rollout envs are split over a 4-device mesh;
# cartpole_dqn runs under jax.distributed, each process stepping its own envs with its copy of the
# replicated parameters, the rows forming one global batch and the replay buffer split along `data`
# (each process's devices hold its envs' columns).
RL_CONFIGS = {"cartpole_ppo": (4, 1), "cartpole_dqn": (1, 2), "atari_ppo": (1, 1), "atari_dqn": (1, 1)}


def run_tiny(name: str, workdir, devices: int, processes: int):
  if processes == 1 and devices == 1:  # in this process: the same trainer as the command line's.
    config = load_config(name, set_data_dir=False)
    return trainer.train_and_evaluate(config, str(workdir), tasks.make_task(config))
  if processes == 1:
    return check_ok(run_cli(f"{name}.py:tiny", workdir, data_dir=None, devices=devices))
  proc = check_ok(subprocess.run(
      [sys.executable, "launch/local.py", f"--processes={processes}", "--",
       f"--config={REPO_ROOT / 'configs' / name}.py:tiny", f"--workdir={workdir}"],
      cwd=REPO_ROOT, env=cli_env(devices), capture_output=True, text=True, timeout=300))
  assert f"{processes} processes" in proc.stderr
  return proc


@pytest.mark.parametrize("name", RL_CONFIGS)
def test_tiny_rl_config_runs_end_to_end(name, tmp_path):
  run_tiny(name, tmp_path, *RL_CONFIGS[name])
  config = load_config(name, set_data_dir=False)
  records = metrics_lines(tmp_path)
  train = [r for r in records if "train/loss" in r]
  evals = [r for r in records if "eval/episode_return" in r]
  assert train and evals, records
  for r in train:
    assert {"env_steps", "perf/env_steps_per_sec"} <= set(r), r
    assert math.isfinite(r["train/loss"])
    if config.task == "ppo":  # optimizer updates, counted where they are made: epochs x minibatches.
      assert r["optimizer_updates"] == r["step"] * config.update_epochs * config.num_minibatches, r
  assert train[-1]["env_steps"] > train[0]["env_steps"] > 0
  if name.startswith("cartpole"):  # random CartPole games last ~20 steps: some must have finished.
    assert any("rl/episode_return" in r and r["rl/episode_return"] >= 8 for r in train), train
  assert evals[-1]["eval/episodes"] == config.eval_episodes
  assert checkpoint_steps(tmp_path)[-1] == train[-1]["step"]


def test_ppo_learns_the_early_part_of_cartpole(tmp_path):
  """A short PPO run already lengthens CartPole episodes well beyond the random policy's ~22 steps
  (the full config reaches 500; see benchmarks/rl_cartpole.py). In-process: learning is what is
  tested here, not the command line."""
  config = load_config("cartpole_ppo", {
      "total_env_steps": 4 * 128 * 40, "eval_every_steps": 0, "log_every_steps": 5,
      "eval_episodes": 10, "checkpoint_every_steps": 0, "unroll_updates": False},  # compiles faster.
      variant="", set_data_dir=False)
  trainer.train_and_evaluate(config, str(tmp_path), ppo.make_task(config))
  records = metrics_lines(tmp_path)
  returns = [r["rl/episode_return"] for r in records if "rl/episode_return" in r]
  assert returns[-1] > 1.5 * returns[0], returns
  final = [r for r in records if "eval/episode_return" in r][-1]
  assert final["eval/episode_return"] > 100, final


def test_dqn_resumes_after_sigkill_with_its_replay_buffer(tmp_path):
  """Killed mid-run, the restarted run resumes from the last checkpoint (counters, networks and the
  replay buffer) and finishes; environments restart (their state cannot be saved)."""
  overrides = {"total_env_steps": 20_000, "checkpoint_every_steps": 200, "log_every_steps": 100,
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
  total = 20_000 // 10
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
