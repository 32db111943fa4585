"""End-to-end Atari PPO env steps/s, as a fraction of what EnvPool alone delivers with random actions.

  python benchmarks/rl_throughput.py                      # Pong-v5, ~2-3 min on 2 CPU cores
  python benchmarks/rl_throughput.py --iterations=30 --log_every=5 --env_steps=48000

Same environments everywhere: `--env_id` (default Pong-v5) with jaxai's Atari preprocessing
(`jaxai.envs.envpool.ATARI_DEFAULTS`: 84x84 gray, 4-frame stack, frame skip 4, ...), the config's
num_envs (8) and env.num_threads (0: EnvPool chooses), one synchronous pool (batch_size = num_envs).

  1. raw EnvPool    a plain host loop over the gymnasium pool, `envpool.make(env_id,
                    env_type="gymnasium", num_envs=8, batch_size=8, num_threads=0, ...)`:
                    `pool.step(random actions)` (synchronous: send all 8 actions, receive all 8
                    results), --env_steps in all after 100 warm-up steps. Actions are drawn with
                    numpy in the loop (~1 us per step).
  2. XLA interface  jaxai's `Env.step` (EnvPool's XLA custom calls) in a jitted `lax.scan` of 128
                    steps with random actions drawn inside jit: the environment as the PPO rollout
                    sees it, without the network. Timed over --env_steps after one warm-up call.
  3. collect        the task's rollout (`task.source.collect`, compiled for the first device with
                    `jaxai.core.sharding.on_local_device` as the trainer's CollectionSource does:
                    128 steps of policy forward pass on 8 observations, action sampling, env
                    step), with the initial parameters; timed like 2. No update.
  4. end to end     `python -m jaxai.main --config=configs/atari_ppo.py --config.env_id=<env_id>
                    --config.num_train_steps=<iterations> --config.log_every_steps=<log_every>
                    --config.eval_every_steps=0 --config.checkpoint_every_steps=0
                    --config.eval_max_steps=1` (each iteration: collect 8 x 128 env steps, then 4
                    epochs x 4 minibatches of Adam updates) as a subprocess from the repository
                    root; steady-state `perf/env_steps_per_sec` from metrics.jsonl: env steps over
                    time summed over the log intervals, the first interval dropped. The trainer's
                    interval timer covers collection, update, metric read-back and logging; it
                    excludes compilation and evaluation (cut to 1 step here). num_train_steps only
                    shortens the run (and the lr schedule, which does not affect speed).
  5. network alone  the update's arithmetic without environments or Adam: a jitted gradient of the
                    task's network (`ppo.make_model`) on one minibatch of zero observations
                    (1,024 / 4 = 256), times the iteration's 4 epochs x 4 minibatches, per env step.

ratio = end to end / raw EnvPool: the share of the bare simulator's speed that training keeps. The
figures 2-5 locate the cost: 1 -> 2 the XLA interface and per-step dispatch, 2 -> 3 the policy's
forward pass, 3 -> 4 the PPO update (for each env step: 1/e2e - 1/collect seconds), of which 5
is the network's share.
The machine's 1-minute load average is printed: other processes on the 2 cores slow every figure.

Measured with `python benchmarks/rl_throughput.py` (defaults: 16,384 env steps per in-process figure,
16 PPO iterations logged every 4) on 2 CPU cores shared with other jobs, jax 0.10.2 CPU backend,
Pong-v5, 8 envs, num_threads=0; two runs, at different loads from the other jobs:
                                       load ~1.9-2.9     load ~2.7-3.8
  1 raw EnvPool host loop                  6,625             3,426  env steps/s
  2 Env.step in a jitted scan              6,921             3,486
  3 PPO collect (policy + env)             2,537             2,009
  4 PPO end to end                           183               175
  5 network fwd+bwd alone                    184              187 (measured separately)
  ratio end to end / raw                   0.028             0.051
The end-to-end rate is the network's: an iteration's 16 minibatch gradients of the Nature CNN on
256 observations take ~5.4 ms per env step alone, ~5.1 ms inside the trainer (e2e - collect), so
the trainer adds nothing measurable and the ratio mostly tracks how fast EnvPool runs at the time
(its threads compete with the other jobs for the 2 cores). The XLA interface costs nothing over a
host loop (2 vs 1), and the 8-observation forward pass at every step more than halves the
collection rate (3 vs 2).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/atari_ppo.py"


def load_config(env_id: str):
  import importlib.util
  spec = importlib.util.spec_from_file_location("atari_ppo", os.path.join(REPO, CONFIG))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.env_id = env_id
  return config


def load_num_actions(env_id: str) -> int:
  import envpool
  return int(envpool.make_spec(env_id).action_space.n)


def raw_envpool(env_id: str, num_envs: int, num_threads: int, env_steps: int) -> float:
  """Env steps/s of a synchronous host loop with random actions."""
  import envpool
  from jaxai.envs.envpool import ATARI_DEFAULTS
  pool = envpool.make(env_id, env_type="gymnasium", num_envs=num_envs, batch_size=num_envs, seed=0,
                      num_threads=num_threads, **ATARI_DEFAULTS)
  n = pool.action_space.n
  rng = np.random.default_rng(0)
  pool.reset()
  for _ in range(100):
    pool.step(rng.integers(0, n, num_envs))
  steps = max(1, env_steps // num_envs)
  start = time.perf_counter()
  for _ in range(steps):
    pool.step(rng.integers(0, n, num_envs))
  seconds = time.perf_counter() - start
  pool.close()
  return steps * num_envs / seconds


def timed_calls(fn, carry, calls: int, env_steps_per_call: int) -> float:
  """Env steps/s of `carry = fn(carry)` over `calls` calls, after one warm-up (compiling) call."""
  import jax
  carry = fn(carry)
  jax.block_until_ready(carry)
  start = time.perf_counter()
  for _ in range(calls):
    carry = fn(carry)
  jax.block_until_ready(carry)
  return calls * env_steps_per_call / (time.perf_counter() - start)


def xla_interface(config, env_steps: int, length: int = 128) -> float:
  """Env steps/s of jaxai's Env.step in a jitted scan with random actions (no network)."""
  import jax
  from jaxai.tasks.rl import common
  env = common.make_env(config)

  @jax.jit
  def run(loop):
    carry, rng = loop
    rng, sub = jax.random.split(rng)
    actions = jax.random.randint(sub, (length, env.num_envs), 0, env.num_actions)
    carry, _ = jax.lax.scan(env.step, carry, actions)
    return carry, rng

  rate = timed_calls(run, (env.reset(), jax.random.key(0)), max(1, env_steps // (length * env.num_envs)),
                     length * env.num_envs)
  env.close()
  return rate


def collect_only(config, env_steps: int) -> float:
  """Env steps/s of the PPO task's jitted rollout (policy forward + sampling + env), no update."""
  import jax
  from jaxai import tasks
  from jaxai.core import sharding
  task = tasks.make_task(config)
  state = jax.jit(task.init)(jax.random.key(0))
  source = task.source
  collect = sharding.on_local_device(source.collect, donate_argnums=(1,))
  policy = source.policy_of(state)
  rng = jax.random.key(1)
  per_call = config.num_envs * config.num_steps
  return timed_calls(lambda carry: collect(policy, carry, rng)[0], source.init_carry(),
                     max(1, env_steps // per_call), per_call)


def network_update(config, num_actions: int) -> float:
  """Seconds per env step of the network's forward + backward passes alone: an iteration's
  update_epochs x num_minibatches gradients on minibatches of num_envs x num_steps / num_minibatches
  observations (zeros; a squared-output loss; no optimizer), divided by the iteration's env steps."""
  import jax
  import jax.numpy as jnp
  from jaxai.tasks.rl import ppo
  model = ppo.make_model(config, num_actions)
  per_iteration = config.num_envs * config.num_steps
  obs = jnp.zeros((per_iteration // config.num_minibatches, 4, 84, 84), jnp.uint8)
  params = model.init(jax.random.key(0), obs[:1])["params"]

  def loss(p):
    logits, value = model.apply({"params": p}, obs)
    return jnp.mean(logits ** 2) + jnp.mean(value ** 2)

  grad = jax.jit(jax.grad(loss))
  jax.block_until_ready(grad(params))
  calls = 4
  start = time.perf_counter()
  for _ in range(calls):
    out = grad(params)
  jax.block_until_ready(out)
  per_minibatch = (time.perf_counter() - start) / calls
  return per_minibatch * config.update_epochs * config.num_minibatches / per_iteration


def end_to_end(env_id: str, iterations: int, log_every: int, workdir: str) -> tuple[float, list[float]]:
  """Steady-state env steps/s of the real trainer (first log interval dropped) and each interval's rate."""
  cmd = [sys.executable, "-m", "jaxai.main", f"--config={CONFIG}", f"--workdir={workdir}",
         f"--config.env_id={env_id}", f"--config.num_train_steps={iterations}",
         f"--config.log_every_steps={log_every}", "--config.eval_every_steps=0",
         "--config.checkpoint_every_steps=0", "--config.eval_max_steps=1"]
  print("$ " + " ".join(cmd), flush=True)
  code = subprocess.call(cmd, cwd=REPO)
  if code != 0:
    sys.exit(f"error: jaxai.main exited with status {code}")
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    logs = [r for r in map(json.loads, f) if "perf/env_steps_per_sec" in r]
  steps = seconds = 0.0
  for prev, r in zip(logs, logs[1:]):
    delta = r["env_steps"] - prev["env_steps"]
    steps += delta
    seconds += delta / r["perf/env_steps_per_sec"]
  return (steps / seconds if seconds else float("nan")), [r["perf/env_steps_per_sec"] for r in logs]


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--env_id", default="Pong-v5")
  parser.add_argument("--env_steps", type=int, default=16_384,
                      help="env steps timed for each of the raw, XLA-interface and collect figures")
  parser.add_argument("--iterations", type=int, default=16, help="PPO iterations of the end-to-end run")
  parser.add_argument("--log_every", type=int, default=4, help="iterations per log interval of the end-to-end run")
  parser.add_argument("--workdir", default="", help="workdir of the end-to-end run (default: a new temp dir)")
  args = parser.parse_args()
  if args.iterations < 2 * args.log_every:
    parser.error("--iterations must cover at least two log intervals (the first one is dropped)")
  config = load_config(args.env_id)
  workdir = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="jaxai_rl_throughput_"))
  load = [os.getloadavg()[0]]
  print(f"{args.env_id}: {config.num_envs} envs, env.num_threads={config.env.num_threads}, "
        f"load average {load[0]:.2f} on {os.cpu_count()} CPUs", flush=True)

  raw = raw_envpool(args.env_id, config.num_envs, config.env.num_threads, args.env_steps)
  print(f"  raw EnvPool host loop   {raw:8,.0f} env steps/s", flush=True)
  xla = xla_interface(config, args.env_steps)
  print(f"  XLA interface in jit    {xla:8,.0f} env steps/s", flush=True)
  collect = collect_only(config, args.env_steps)
  print(f"  collect (policy + env)  {collect:8,.0f} env steps/s", flush=True)
  grad_seconds = network_update(config, load_num_actions(args.env_id))
  print(f"  network fwd+bwd alone   {1 / grad_seconds:8,.0f} env steps/s", flush=True)
  load.append(os.getloadavg()[0])
  e2e, intervals = end_to_end(args.env_id, args.iterations, args.log_every, workdir)
  load.append(os.getloadavg()[0])

  print(f"\nPPO throughput on {args.env_id}, {config.num_envs} envs, num_threads={config.env.num_threads} "
        f"(load average {', '.join(f'{l:.2f}' for l in load)} on {os.cpu_count()} CPUs)")
  print(f"  1 raw EnvPool (host loop, sync step, random actions)  {raw:8,.0f} env steps/s")
  print(f"  2 jaxai Env.step in a jitted scan, random actions     {xla:8,.0f} env steps/s  ({xla / raw:.2f} x raw)")
  print(f"  3 PPO collect: policy forward + sampling + env        {collect:8,.0f} env steps/s  ({collect / raw:.2f} x raw)")
  print(f"  4 PPO end to end (trainer, collect + update)          {e2e:8,.0f} env steps/s  ({e2e / raw:.3f} x raw)"
        f"   intervals: {', '.join(f'{r:.0f}' for r in intervals)} (first dropped)")
  print(f"  5 the update's network fwd+bwd alone (no env, no Adam)  {1 / grad_seconds:8,.0f} env steps/s")
  per_step_us = {"env (raw)": 1e6 / raw, "collect": 1e6 / collect, "update (e2e - collect)": 1e6 / e2e - 1e6 / collect,
                 "of which network fwd+bwd (5)": 1e6 * grad_seconds}
  print("  per env step: " + ", ".join(f"{k} {v:,.0f} us" for k, v in per_step_us.items()))
  print(f"SUMMARY rl_throughput: {args.env_id} end-to-end {e2e:,.0f} / raw EnvPool {raw:,.0f} env steps/s "
        f"= {e2e / raw:.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
