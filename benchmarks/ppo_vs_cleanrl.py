"""Atari PPO end to end: jaxai's PPO against a re-implementation of CleanRL's XLA-scan script, in one run.

  python benchmarks/ppo_vs_cleanrl.py                    # Pong-v5, 10 timed iterations per side
  python benchmarks/ppo_vs_cleanrl.py --iterations=2 --no-split   # a quick look
  python benchmarks/ppo_vs_cleanrl.py --env_id=Breakout-v5
  python benchmarks/ppo_vs_cleanrl.py --cleanrl_scan     # also CleanRL's scans as published (very slow on CPU)
  python benchmarks/ppo_vs_cleanrl.py --sides=cleanrl    # one side only (no ratio)

Measured with `python benchmarks/ppo_vs_cleanrl.py` (the defaults: Pong-v5, 10 timed iterations
per side after 1 warm-up), jax 0.10.2 CPU backend, 2 CPU cores at a load average of 0.2-1.5 (a
quiet machine), 185 s in all:

                            env steps/s  s/iteration  rollout s  update s  compile s  1st-iteration extra s
  project (jaxai trainer)      350.9         2.92        0.48      2.43        6.0           7.4
  CleanRL-unrolled             128.4         7.98        0.47      7.51       12.6          14.7
  ratio project / CleanRL-unrolled 2.73x (goal >= 1.5x: met); a run of the same script an hour
  earlier gave 308.2 vs 116.0 = 2.66x, compile 9.0 s vs 14.9 s. No compilation during the timed
  iterations on either side.
  project compile 6.0 s (goal <= 15 s: met): the train step 3.0 s, init 1.2 s, rollout 0.8 s;
  CleanRL-unrolled 12.6 s (update_ppo 10.8 s: 16 inlined gradient steps).
  EnvPool random (8 envs, num_threads 0): host loop 5,495, XLA step in a jitted scan 6,065, jaxai
  Env.step 5,912 env steps/s before the sides; 5,308 and 5,673 between the timed iterations. Gap:
  project 350.9 / 5,308 = 0.066 of EnvPool's random-action rate (CleanRL-unrolled 0.024).
  Where the project's 2.92 s per iteration go: rollout 0.48 s (17%: env stepping 0.18 s, the 128
  policy forward passes 0.24 s, the rest 0.06 s); update 2.43 s (83%), all of it the network's 16
  forward + backward passes (2.95 s measured apart as separate calls). CleanRL-unrolled: rollout
  0.47 s (6%), update 7.51 s (94%), of which 6.82 s network gradients and 0.69 s the rest.
  Why the project is faster: configs/atari_ppo.py sets config.model.conv_as_matmul, which computes
  the update's three convolutions as strided slices of the input concatenated into patches times the
  reshaped kernel (jaxai.models.rl.MatmulConv: the same parameters as nn.Conv, the same outputs to
  float rounding, tests/tasks/test_rl_tasks.py). XLA:CPU runs those matmuls and their gradients
  fast, inside `lax.scan` too, so the update scans stay rolled (config.unroll_updates=False): 3x
  faster gradients than nn.Conv's and a fraction of the unrolled compile. The rollout keeps
  nn.Conv, which is faster for its 8-observation forward passes. The remaining gap to EnvPool is
  the network: on these 2 cores its gradients cost ~2.9 ms per env step against ~0.2 ms of
  emulation.

What runs. Both sides train the same thing at the same hyperparameters, which the script reads
from configs/atari_ppo.py and checks against CleanRL's defaults before it starts (it stops if one
differs): `--env_id` (Pong-v5 or Breakout-v5) with EnvPool's Atari preprocessing (84x84 gray,
4-frame stack, frame skip 4, up to 30 no-ops, FIRE reset, no sticky actions, 27,000-step limit;
`jaxai.envs.envpool.ATARI_DEFAULTS` are EnvPool's own defaults plus `episodic_life=True,
reward_clip=True`, which is what CleanRL passes), 8 envs in one synchronous pool (batch_size =
num_envs = 8, num_threads 0 = EnvPool's choice), 128 steps per iteration (1,024 env steps), 4 epochs
x 4 minibatches of 256, the Nature CNN shared by policy and value, Adam 2.5e-4 annealed linearly
to 0, eps 1e-5, global gradient clipping 0.5, clip 0.1, entropy 0.01, value 0.5 with the unclipped
value loss, gamma 0.99, GAE lambda 0.95, per-minibatch advantage normalization, seed 1.

project           configs/atari_ppo.py through `jaxai.tasks.make_task` and
                  `jaxai.core.trainer.train_and_evaluate`, in this process: what
                  `python -m jaxai.main --config=configs/atari_ppo.py --config.env_id=Pong-v5` runs,
                  with num_train_steps = warmup + iterations + 1, log_every_steps=1,
                  eval_every_steps=0, checkpoint_every_steps=0 and the task's evaluators removed (so
                  no evaluation game runs; the final checkpoint is still written, after the timing).
                  Its update computes the convolutions as matmuls over patches
                  (config.model.conv_as_matmul) with rolled update scans
                  (config.unroll_updates=False). The task's data source is wrapped to time each `rows()` call (the rollout, blocked until its rows
                  are ready); iteration k lasts from its rollout's start to the next `rows()` call,
                  so it covers the rollout, the train step, the trainer's metric read-back (every
                  step here) and its logging; hence the one extra train step.
CleanRL-unrolled  `CleanRLPPO` below: CleanRL's cleanrl/ppo_atari_envpool_xla_jax_scan.py training
                  loop re-implemented: `rollout` = a `lax.scan` over 128 steps whose body samples
                  actions (Gumbel-max), steps the envs with EnvPool's XLA `step` from `envs.xla()`
                  and updates the episode statistics; `compute_gae`, a jitted reverse `lax.scan`;
                  `update_ppo`, a jitted `lax.scan` over 4 epochs, each permuting the 1,024 samples
                  and running a `lax.scan` over 4 minibatches of `value_and_grad` of the PPO loss
                  and the Adam step; then the host reads back the episode returns, the learning
                  rate and the last losses, as CleanRL's logging does. One switch: `unroll=True` on
                  the two update scans (epochs and minibatches), because XLA:CPU runs the gradients
                  of convolutions inside a while loop 13-25x slower than outside one (measured here
                  per Nature-CNN layer on 256 observations; forward convolutions are not slower in a
                  loop, so the rollout's scan is fine). --cleanrl_scan also runs the published
                  scans (`unroll=1`; ~18 env steps/s by the issue's figure, not run for the figures
                  above), --scan_iterations timed iterations after the warm-up.
                  What differs from CleanRL's file, none of it in the arithmetic that is timed: no
                  tyro (hyperparameters from the project config, checked equal to CleanRL's
                  defaults), no TensorBoard writer / wandb / model saving (the values it logs are
                  still read back every iteration); EnvPool's gymnasium API instead of gym's (gym is
                  not installed): `done = terminated | truncated`, and the episode statistics use
                  `truncated` where CleanRL reads info['TimeLimit.truncated']; `jax.tree.map` for
                  the removed `jax.tree_map`; `TrainState(...)` built field by field and its Adam
                  step written out (this flax's `TrainState.create` / `apply_gradients` reject a
                  struct dataclass as params); networks initialized on a zero observation instead of
                  `observation_space.sample()`. The rollout's `lax.scan` is called outside `jit`,
                  as in CleanRL (JAX compiles it as one computation).

How it is timed. The probes below and CleanRL-unrolled are built and compiled first; then the
project's trainer runs, and just before each timed project iteration (from the wrapped source,
before the project's rollout) one timed CleanRL iteration and one round of probes run, so that the
sides and the probes alternate iteration by iteration under the same machine load (other jobs on
the 2 cores make it drift by 2x within minutes). Per side: compile = seconds JAX spent tracing,
lowering and compiling (`jax.monitoring` duration events, nested ones merged) from the side's start
to the end of its warm-up; first-iteration extra = (start, env creation included, to the end of the
warm-up) - warm-up x the steady iteration time: what a user waits beyond steady training. Steady
env steps/s = 1,024 x iterations / their seconds, the rollout and the update timed apart (blocking
after the rollout). JAX compilations during the timed iterations are counted (expected: 0).

EnvPool random: a pool made as the project makes it (`envpool.make(env_id, env_type="gymnasium",
num_envs=8, batch_size=8, num_threads=<config: 0>, **ATARI_DEFAULTS)`), uniformly random actions,
three ways: (1) the host loop `pool.step(actions)`; (2) EnvPool's XLA `step` in a jitted `lax.scan`
of 128 steps, actions drawn inside jit (the interface both sides use); (3) jaxai's `Env.step` (the
project's wrapper of (2): rows in env-id order, episode bookkeeping) in the same scan. All three are
measured before the sides run (--env_steps each); (2) and (3) also once per round between the timed
iterations, and the gap is project steps/s / (2) from those rounds.

Time split (--split, default on), ms per 1,024-step iteration: the sides' rollout and update times
from the timed iterations, their parts from the probe rounds between them (random uint8
observations, each side's own network):
  rollout  = env stepping (EnvPool random, (3) for the project, (2) for CleanRL) + policy forward
             (8 observations at each of 128 steps: a jitted `lax.scan` of forward + sampling, no
             env) + the rest (scan, transfers, bookkeeping; negative = measurement noise).
  update   = network fwd+bwd (one jitted `grad` of the network on 256 observations with a stand-in
             loss on logits and value, --grads_per_round per round, x 16) + the rest (Adam and
             clipping, minibatch gathers / permutations, GAE, the loss' elementwise math, metrics).

On a GPU (stated, not measured): XLA:GPU runs convolutions and their gradients in while loops at
full speed (cuDNN), so CleanRL's published scans need no unrolling, and the 16 Nature-CNN minibatch
gradients take milliseconds instead of tens of seconds. Both sides then become bound by EnvPool,
which steps the emulators on host CPU threads while the rollout waits (8 envs, one synchronous pool,
no overlap with the update in either design): expect both near EnvPool's random-action rate on the
host's cores, a project / CleanRL ratio near 1, and unrolled update scans to cost compile time
(16 inlined gradient steps) without saving run time there. The 1.5x goal is about XLA:CPU.
"""
import argparse
import dataclasses
import functools
import importlib.util
import os
import shutil
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/atari_ppo.py"

# CleanRL's `Args` defaults (ppo_atari_envpool_xla_jax_scan.py) that must equal the project config's.
CLEANRL_DEFAULTS = dict(num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4, learning_rate=2.5e-4,
                        adam_eps=1e-5, anneal_lr=True, gamma=0.99, gae_lambda=0.95, clip_coef=0.1,
                        clip_vloss=False,  # CleanRL's flag is True but its loss never uses it: unclipped.
                        ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, norm_adv=True,
                        total_timesteps=10_000_000)


# ----------------------------------------------------------------------------------------------
# Shared helpers.

def load_config(env_id: str):
  spec = importlib.util.spec_from_file_location("atari_ppo", os.path.join(REPO, CONFIG))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.env_id = env_id
  return config


def hyperparameters(config) -> dict:
  """The project config in CleanRL's terms; raises if any differs from CleanRL's defaults."""
  opt = config.optimizer
  hp = dict(num_envs=config.num_envs, num_steps=config.num_steps, num_minibatches=config.num_minibatches,
            update_epochs=config.update_epochs, learning_rate=opt.learning_rate, adam_eps=opt.eps,
            anneal_lr=opt.schedule == "linear" and opt.end_learning_rate_factor == 0.0,
            gamma=config.gamma, gae_lambda=config.gae_lambda, clip_coef=config.clip_coef,
            clip_vloss=config.clip_value_loss, ent_coef=config.ent_coef, vf_coef=config.vf_coef,
            max_grad_norm=opt.grad_clip_norm, norm_adv=config.normalize_advantages,
            total_timesteps=config.total_env_steps)
  assert opt.name == "adam" and config.model.torso == "cnn" and not config.model.separate_torsos, config
  differ = {k: (hp[k], v) for k, v in CLEANRL_DEFAULTS.items() if hp[k] != v}
  if differ:
    raise SystemExit(f"error: {CONFIG} differs from CleanRL's defaults (project, CleanRL): {differ}")
  return hp


class CompileClock:
  """Seconds JAX spends tracing, lowering and compiling, from `jax.monitoring` duration events.

  Each event is an interval ending when it is reported; nested ones (a trace inside a trace) are
  merged, so a window's total is the length of the union of its intervals."""
  EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
            "/jax/core/compile/backend_compile_duration")

  def __init__(self):
    import jax
    self.events = []  # (end time, seconds, event, function)
    jax.monitoring.register_event_duration_secs_listener(self._listen)

  def _listen(self, event, seconds, **kwargs):
    if event in self.EVENTS:
      self.events.append((time.perf_counter(), seconds, event, kwargs.get("fun_name", "?")))

  def window(self, start: float, end: float) -> tuple[float, int, list]:
    """(merged seconds, XLA compiles, top functions by XLA compile seconds) of events ending in [start, end]."""
    inside = [e for e in self.events if start <= e[0] <= end]
    spans = sorted((t - s, t) for t, s, _, _ in inside)
    total, cur_a, cur_b = 0.0, None, None
    for a, b in spans:
      if cur_b is None or a > cur_b:
        total += (cur_b - cur_a) if cur_b is not None else 0.0
        cur_a, cur_b = a, b
      else:
        cur_b = max(cur_b, b)
    total += (cur_b - cur_a) if cur_b is not None else 0.0
    backend = [e for e in inside if e[2].endswith("backend_compile_duration")]
    by_fun = {}
    for _, s, _, f in backend:
      by_fun[f] = by_fun.get(f, 0.0) + s
    top = sorted(by_fun.items(), key=lambda kv: -kv[1])[:3]
    return total, len(backend), top


@dataclasses.dataclass
class SideResult:
  name: str
  iterations: list            # (collect s, update s) per timed iteration
  env_steps_per_iteration: int
  compile_s: float
  compiles: int
  compile_top: list
  first_extra_s: float
  compiles_while_timed: int
  note: str = ""

  @property
  def seconds(self) -> float:
    return sum(c + u for c, u in self.iterations)

  @property
  def rate(self) -> float:
    return len(self.iterations) * self.env_steps_per_iteration / self.seconds

  @property
  def collect_s(self) -> float:
    return float(np.mean([c for c, _ in self.iterations]))

  @property
  def update_s(self) -> float:
    return float(np.mean([u for _, u in self.iterations]))


def first_iteration_extra(start, warm_end, iterations, warmup):
  """Seconds from `start` to the end of the warm-up beyond `warmup` steady iterations."""
  steady = sum(c + u for c, u in iterations) / len(iterations)
  return (warm_end - start) - warmup * steady


# ----------------------------------------------------------------------------------------------
# The project: configs/atari_ppo.py through the trainer, in this process.

class TimedSource:
  """The task's CollectionSource with each `rows()` call timed (blocked until its rows exist).

  `partner()` (another side's iteration) runs at the start of calls `partner_calls` (a range),
  before the rollout, so that the two sides alternate iteration by iteration."""

  def __init__(self, inner, partner=None, partner_calls=range(0)):
    self.inner, self.partner, self.partner_calls = inner, partner, partner_calls
    self.calls = []  # per rows() call: (start, rollout start, rollout end); start < rollout start if partner ran

  def __getattr__(self, name):
    return getattr(self.inner, name)

  def rows(self, step, state):
    import jax
    start = time.perf_counter()
    if self.partner is not None and len(self.calls) in self.partner_calls:
      self.partner()
    rollout_start = time.perf_counter()
    rows, metrics = self.inner.rows(step, state)
    jax.block_until_ready(rows)
    self.calls.append((start, rollout_start, time.perf_counter()))
    return rows, metrics


def run_project(args, clock: CompileClock, partner=None) -> SideResult:
  """The project's PPO through its trainer; `partner()` runs before each timed iteration's rollout."""
  from absl import logging
  from jaxai import tasks
  from jaxai.core import trainer
  logging.set_verbosity(logging.WARNING)
  config = load_config(args.env_id)
  config.seed = args.seed
  w, n = args.warmup, args.iterations
  config.num_train_steps = w + n + 1
  config.log_every_steps = 1
  config.eval_every_steps = 0
  config.checkpoint_every_steps = 0
  workdir = tempfile.mkdtemp(prefix="jaxai_ppo_vs_cleanrl_")
  start = time.perf_counter()
  task = tasks.make_task(config)
  source = TimedSource(task.source, partner, range(w, w + n))
  task = dataclasses.replace(task, source=source, evaluators=())
  try:
    trainer.train_and_evaluate(config, workdir, task)
  finally:
    env = getattr(source.inner.init_carry, "__self__", None)
    if env is not None:
      env.close()
    shutil.rmtree(workdir, ignore_errors=True)
  calls = source.calls
  # Iteration k: from its rollout's start to the start of call k + 1 (before the partner's iteration).
  iterations = [(calls[k][2] - calls[k][1], calls[k + 1][0] - calls[k][2]) for k in range(w, w + n)]
  warm_end = calls[w][0]
  compile_s, compiles, top = clock.window(start, warm_end)
  _, while_timed, _ = clock.window(calls[w][0], calls[w + n][0])
  return SideResult("project (jaxai trainer)", iterations, config.num_envs * config.num_steps, compile_s,
                    compiles, top, first_iteration_extra(start, warm_end, iterations, w), while_timed)


# ----------------------------------------------------------------------------------------------
# CleanRL's ppo_atari_envpool_xla_jax_scan.py, re-implemented (see the module docstring).

def cleanrl_networks(num_actions: int):
  """CleanRL's `Network` (the Nature CNN, channels-first uint8 in), `Actor` (gain 0.01) and `Critic`."""
  import flax.linen as nn
  import jax.numpy as jnp
  from flax.linen.initializers import constant, orthogonal

  class Torso(nn.Module):
    @nn.compact
    def __call__(self, x):
      x = jnp.transpose(x, (0, 2, 3, 1)) / 255.0
      for features, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
        x = nn.relu(nn.Conv(features, (kernel, kernel), (stride, stride), padding="VALID",
                            kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(x))
      x = x.reshape((x.shape[0], -1))
      return nn.relu(nn.Dense(512, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(x))

  class Head(nn.Module):
    features: int
    gain: float

    @nn.compact
    def __call__(self, h):
      return nn.Dense(self.features, kernel_init=orthogonal(self.gain), bias_init=constant(0.0))(h)

  return Torso(), Head(num_actions, 0.01), Head(1, 1.0)


class CleanRLPPO:
  """CleanRL's training loop for one pool of envs; `iteration()` runs one rollout + update."""

  def __init__(self, env_id: str, seed: int, num_threads: int, hp: dict, unroll):
    import envpool
    import flax
    import jax
    import jax.numpy as jnp
    import optax
    from flax.training.train_state import TrainState

    self.hp = hp
    n_envs, n_steps = hp["num_envs"], hp["num_steps"]
    n_mb, n_epochs = hp["num_minibatches"], hp["update_epochs"]
    batch = n_envs * n_steps
    num_iterations = hp["total_timesteps"] // batch
    key = jax.random.PRNGKey(seed)
    key, torso_key, actor_key, critic_key = jax.random.split(key, 4)

    # CleanRL's make_env: EnvPool defaults plus episodic life and reward clipping.
    self.envs = envs = envpool.make(env_id, env_type="gymnasium", num_envs=n_envs, episodic_life=True,
                                    reward_clip=True, seed=seed, num_threads=num_threads)
    num_actions = int(envs.action_space.n)

    @flax.struct.dataclass
    class AgentParams:
      network_params: flax.core.FrozenDict
      actor_params: flax.core.FrozenDict
      critic_params: flax.core.FrozenDict

    @flax.struct.dataclass
    class Storage:
      obs: jnp.array
      actions: jnp.array
      logprobs: jnp.array
      dones: jnp.array
      values: jnp.array
      advantages: jnp.array
      returns: jnp.array
      rewards: jnp.array

    @flax.struct.dataclass
    class EpisodeStatistics:
      episode_returns: jnp.array
      episode_lengths: jnp.array
      returned_episode_returns: jnp.array
      returned_episode_lengths: jnp.array

    torso, actor, critic = cleanrl_networks(num_actions)
    obs0 = np.zeros((1,) + envs.observation_space.shape, envs.observation_space.dtype)
    torso_params = torso.init(torso_key, obs0)
    hidden0 = torso.apply(torso_params, obs0)

    def linear_schedule(count):  # annealed per iteration of n_mb * n_epochs updates, as CleanRL.
      frac = 1.0 - (count // (n_mb * n_epochs)) / num_iterations
      return hp["learning_rate"] * frac

    params = AgentParams(torso_params, actor.init(actor_key, hidden0), critic.init(critic_key, hidden0))
    tx = optax.chain(optax.clip_by_global_norm(hp["max_grad_norm"]),
                     optax.inject_hyperparams(optax.adam)(learning_rate=linear_schedule, eps=hp["adam_eps"]))
    # CleanRL's TrainState.create(apply_fn=None, params=..., tx=...), spelled out: this flax's
    # `create` (and `apply_gradients`) test `"overwrite_with_gradient" in params`, which a struct
    # dataclass does not support.
    self.agent_state = TrainState(step=0, apply_fn=None, params=params, tx=tx, opt_state=tx.init(params))

    def apply_gradients(state, grads):  # TrainState.apply_gradients, which has the same trouble.
      updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
      return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                           opt_state=opt_state)
    torso_apply, actor_apply, critic_apply = (jax.jit(m.apply) for m in (torso, actor, critic))

    self.episode_stats = EpisodeStatistics(
        episode_returns=jnp.zeros(n_envs, jnp.float32), episode_lengths=jnp.zeros(n_envs, jnp.int32),
        returned_episode_returns=jnp.zeros(n_envs, jnp.float32),
        returned_episode_lengths=jnp.zeros(n_envs, jnp.int32))
    handle, _, _, step_env = envs.xla()

    def step_env_wrapped(episode_stats, handle, action):
      handle, (next_obs, reward, terminated, truncated, info) = step_env(handle, action)
      next_done = terminated | truncated  # the gym API's `done`, which CleanRL's script receives.
      ended = info["terminated"] + truncated.astype(jnp.int32)  # game over or time limit
      new_return = episode_stats.episode_returns + info["reward"]
      new_length = episode_stats.episode_lengths + 1
      episode_stats = episode_stats.replace(
          episode_returns=new_return * (1 - info["terminated"]) * (1 - truncated),
          episode_lengths=new_length * (1 - info["terminated"]) * (1 - truncated),
          returned_episode_returns=jnp.where(ended, new_return, episode_stats.returned_episode_returns),
          returned_episode_lengths=jnp.where(ended, new_length, episode_stats.returned_episode_lengths))
      return episode_stats, handle, (next_obs, reward, next_done, info)

    @jax.jit
    def get_action_and_value(agent_state, next_obs, key):
      hidden = torso_apply(agent_state.params.network_params, next_obs)
      logits = actor_apply(agent_state.params.actor_params, hidden)
      key, subkey = jax.random.split(key)
      u = jax.random.uniform(subkey, shape=logits.shape)
      action = jnp.argmax(logits - jnp.log(-jnp.log(u)), axis=1)  # Gumbel-max sampling
      logprob = jax.nn.log_softmax(logits)[jnp.arange(action.shape[0]), action]
      value = critic_apply(agent_state.params.critic_params, hidden)
      return action, logprob, value.squeeze(1), key

    @jax.jit
    def get_action_and_value2(params, x, action):
      hidden = torso_apply(params.network_params, x)
      logits = actor_apply(params.actor_params, hidden)
      logprob = jax.nn.log_softmax(logits)[jnp.arange(action.shape[0]), action]
      logits = logits - jax.scipy.special.logsumexp(logits, axis=-1, keepdims=True)
      logits = logits.clip(min=jnp.finfo(logits.dtype).min)
      entropy = -(logits * jax.nn.softmax(logits)).sum(-1)
      value = critic_apply(params.critic_params, hidden).squeeze()
      return logprob, entropy, value

    def gae_step(advantages, inp):
      nextdone, nextvalues, curvalues, reward = inp
      nextnonterminal = 1.0 - nextdone
      delta = reward + hp["gamma"] * nextvalues * nextnonterminal - curvalues
      advantages = delta + hp["gamma"] * hp["gae_lambda"] * nextnonterminal * advantages
      return advantages, advantages

    @jax.jit
    def compute_gae(agent_state, next_obs, next_done, storage):
      next_value = critic_apply(agent_state.params.critic_params,
                                torso_apply(agent_state.params.network_params, next_obs)).squeeze()
      dones = jnp.concatenate([storage.dones, next_done[None, :]], axis=0)
      values = jnp.concatenate([storage.values, next_value[None, :]], axis=0)
      _, advantages = jax.lax.scan(gae_step, jnp.zeros((n_envs,)),
                                   (dones[1:], values[1:], values[:-1], storage.rewards), reverse=True)
      return storage.replace(advantages=advantages, returns=advantages + storage.values)

    def ppo_loss(params, x, a, logp, mb_advantages, mb_returns):
      newlogprob, entropy, newvalue = get_action_and_value2(params, x, a)
      logratio = newlogprob - logp
      ratio = jnp.exp(logratio)
      approx_kl = ((ratio - 1) - logratio).mean()
      if hp["norm_adv"]:
        mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
      pg_loss = jnp.maximum(-mb_advantages * ratio,
                            -mb_advantages * jnp.clip(ratio, 1 - hp["clip_coef"], 1 + hp["clip_coef"])).mean()
      v_loss = 0.5 * ((newvalue - mb_returns) ** 2).mean()
      entropy_loss = entropy.mean()
      loss = pg_loss - hp["ent_coef"] * entropy_loss + v_loss * hp["vf_coef"]
      return loss, (pg_loss, v_loss, entropy_loss, jax.lax.stop_gradient(approx_kl))

    ppo_loss_grad_fn = jax.value_and_grad(ppo_loss, has_aux=True)

    @jax.jit
    def update_ppo(agent_state, storage, key):
      def update_epoch(carry, unused):
        agent_state, key = carry
        key, subkey = jax.random.split(key)

        def shuffle(x):  # (T, N, ...) -> (minibatches, T * N / minibatches, ...), one permutation.
          x = jax.random.permutation(subkey, x.reshape((-1,) + x.shape[2:]))
          return x.reshape((n_mb, -1) + x.shape[1:])

        def update_minibatch(agent_state, mb):
          (loss, (pg_loss, v_loss, entropy_loss, approx_kl)), grads = ppo_loss_grad_fn(
              agent_state.params, mb.obs, mb.actions, mb.logprobs, mb.advantages, mb.returns)
          agent_state = apply_gradients(agent_state, grads)
          return agent_state, (loss, pg_loss, v_loss, entropy_loss, approx_kl, grads)

        agent_state, outs = jax.lax.scan(update_minibatch, agent_state, jax.tree.map(shuffle, storage),
                                         unroll=unroll)
        return (agent_state, key), outs

      (agent_state, key), (loss, pg_loss, v_loss, entropy_loss, approx_kl, _) = jax.lax.scan(
          update_epoch, (agent_state, key), (), length=n_epochs, unroll=unroll)
      return agent_state, loss, pg_loss, v_loss, entropy_loss, approx_kl, key

    def step_once(carry, step):
      agent_state, episode_stats, obs, done, key, handle = carry
      action, logprob, value, key = get_action_and_value(agent_state, obs, key)
      episode_stats, handle, (next_obs, reward, next_done, _) = step_env_wrapped(episode_stats, handle, action)
      storage = Storage(obs=obs, actions=action, logprobs=logprob, dones=done, values=value, rewards=reward,
                        returns=jnp.zeros_like(reward), advantages=jnp.zeros_like(reward))
      return (agent_state, episode_stats, next_obs, next_done, key, handle), storage

    def rollout(agent_state, episode_stats, next_obs, next_done, key, handle):
      (agent_state, episode_stats, next_obs, next_done, key, handle), storage = jax.lax.scan(
          step_once, (agent_state, episode_stats, next_obs, next_done, key, handle), (), n_steps)
      return agent_state, episode_stats, next_obs, next_done, storage, key, handle

    self._rollout, self._compute_gae, self._update_ppo = rollout, compute_gae, update_ppo
    self.key, self.handle = key, handle
    self.next_obs, _ = envs.reset()
    self.next_done = jnp.zeros(n_envs, dtype=jnp.bool_)
    self.global_step = 0
    self.last_log = {}

  def iteration(self) -> tuple[float, float]:
    """One CleanRL iteration; returns (rollout seconds, GAE + update + read-back seconds)."""
    import jax
    start = time.perf_counter()
    (self.agent_state, self.episode_stats, self.next_obs, self.next_done, storage, self.key,
     self.handle) = self._rollout(self.agent_state, self.episode_stats, self.next_obs, self.next_done,
                                  self.key, self.handle)
    jax.block_until_ready(storage)
    mid = time.perf_counter()
    self.global_step += self.hp["num_envs"] * self.hp["num_steps"]
    storage = self._compute_gae(self.agent_state, self.next_obs, self.next_done, storage)
    self.agent_state, loss, pg_loss, v_loss, entropy_loss, approx_kl, self.key = self._update_ppo(
        self.agent_state, storage, self.key)
    # What CleanRL's loop reads back for its console line and TensorBoard (the writer itself omitted).
    self.last_log = dict(
        avg_episodic_return=float(np.mean(jax.device_get(self.episode_stats.returned_episode_returns))),
        avg_episodic_length=float(np.mean(jax.device_get(self.episode_stats.returned_episode_lengths))),
        learning_rate=self.agent_state.opt_state[1].hyperparams["learning_rate"].item(),
        value_loss=v_loss[-1, -1].item(), policy_loss=pg_loss[-1, -1].item(),
        entropy=entropy_loss[-1, -1].item(), approx_kl=approx_kl[-1, -1].item(), loss=loss[-1, -1].item())
    return mid - start, time.perf_counter() - mid

  def close(self):
    self.envs.close()


class CleanRLRun:
  """A CleanRLPPO built and warmed up (compiled); `step()` runs and records one timed iteration."""

  def __init__(self, args, config, hp, clock: CompileClock, unroll, name: str):
    self.clock, self.name, self.hp, self.warmup = clock, name, hp, args.warmup
    self.start = time.perf_counter()
    self.agent = CleanRLPPO(args.env_id, args.seed, config.env.num_threads, hp, unroll)
    for _ in range(args.warmup):
      self.agent.iteration()
    self.warm_end = time.perf_counter()
    self.timed, self.windows = [], []  # (rollout s, update s) and (start, end) per timed iteration

  def step(self):
    start = time.perf_counter()
    self.timed.append(self.agent.iteration())
    self.windows.append((start, time.perf_counter()))

  def finish(self) -> SideResult:
    self.agent.close()
    compile_s, compiles, top = self.clock.window(self.start, self.warm_end)
    while_timed = sum(self.clock.window(a, b)[1] for a, b in self.windows)
    return SideResult(self.name, self.timed, self.hp["num_envs"] * self.hp["num_steps"], compile_s, compiles, top,
                      first_iteration_extra(self.start, self.warm_end, self.timed, self.warmup), while_timed,
                      note=f"last loss {self.agent.last_log.get('loss', float('nan')):.4f}")


# ----------------------------------------------------------------------------------------------
# EnvPool with random actions, and the micro-benchmarks of the time split.

class Probes:
  """EnvPool with random actions and the networks' micro-benchmarks, each compiled at construction.

  Every method times one call: `env_host(steps)` the host loop `pool.step`; `env("xla")` 128 steps
  of EnvPool's XLA `step` in a jitted `lax.scan`, actions drawn inside jit; `env("jaxai")` the same
  with jaxai's `Env.step`; `forward(side)` the side's policy forward + sampling on 8 observations at
  each of 128 steps (a jitted `lax.scan`, no env); `grad(side)` one jitted gradient of the side's
  network on a 256-observation minibatch (stand-in loss on logits and value). `round()` runs one of
  each (`grads_per_round` gradients per side) and records the seconds; rounds run between the timed
  iterations, so they see the same machine load."""

  def __init__(self, config, hp, nets: bool, grads_per_round: int = 2, length: int = 128):
    import envpool
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    from jaxai.envs.envpool import ATARI_DEFAULTS
    from jaxai.tasks.rl import common, ppo
    n = self.n = hp["num_envs"]
    self.length, self.grads_per_round = length, grads_per_round
    options = dict(ATARI_DEFAULTS, **common.env_options(config))
    self.pool = pool = envpool.make(config.env_id, env_type="gymnasium", num_envs=n, batch_size=n, seed=0,
                                    **options)
    num_actions = self.num_actions = int(pool.action_space.n)
    self._rng = np.random.default_rng(0)
    pool.reset()
    self.env_host(100)  # warm-up
    handle, _, _, step_env = pool.xla()

    @jax.jit
    def xla_run(loop):
      handle, key = loop
      key, sub = jax.random.split(key)

      def body(handle, action):
        handle, (obs, reward, terminated, truncated, info) = step_env(handle, action)
        return handle, reward.sum() + obs[:, -1, 0, 0].sum()

      handle, _ = jax.lax.scan(body, handle, jax.random.randint(sub, (length, n), 0, num_actions))
      return handle, key

    self.jaxai_env = env = common.make_env(config)

    @jax.jit
    def jaxai_run(loop):
      carry, key = loop
      key, sub = jax.random.split(key)
      carry, _ = jax.lax.scan(env.step, carry, jax.random.randint(sub, (length, n), 0, env.num_actions))
      return carry, key

    self._env_fns = {"xla": xla_run, "jaxai": jaxai_run}
    self._env_loops = {"xla": (handle, jax.random.key(0)), "jaxai": (env.reset(), jax.random.key(0))}
    self._nets = {}
    if nets:
      rng = np.random.default_rng(0)
      rollout_obs = jnp.asarray(rng.integers(0, 256, (length, n, 4, 84, 84), dtype=np.uint8))
      mb_obs = jnp.asarray(rng.integers(0, 256, (n * length // hp["num_minibatches"], 4, 84, 84), dtype=np.uint8))

      class CleanRLNet(nn.Module):  # CleanRL's three modules, as one apply: logits, value.
        @nn.compact
        def __call__(self, x):
          torso, actor, critic = cleanrl_networks(num_actions)
          h = torso(x)
          return actor(h), critic(h)[:, 0]

      cleanrl_net = CleanRLNet()
      # The project acts with nn.Conv and updates with its update network (config.model.conv_as_matmul:
      # the same parameters as matmuls over patches); CleanRL uses one network for both.
      sides = (("project", ppo.make_model(config, num_actions),
                ppo.make_model(config, num_actions, config.model.get("conv_as_matmul", False))),
               ("cleanrl", cleanrl_net, cleanrl_net))
      for side, model, update_model in sides:
        params = model.init(jax.random.key(0), mb_obs[:1])

        def forward_scan(params, key, model=model):
          def body(key, obs):
            key, sub = jax.random.split(key)
            logits, value = model.apply(params, obs)
            action = jax.random.categorical(sub, logits)
            log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
            return key, (action, log_prob, value)
          return jax.lax.scan(body, key, rollout_obs)

        def stand_in_loss(params, obs, model=update_model):
          logits, value = model.apply(params, obs)
          return jnp.mean(logits ** 2) + jnp.mean(value ** 2)

        forward, grad = jax.jit(forward_scan), jax.jit(jax.grad(stand_in_loss))
        jax.block_until_ready((forward(params, jax.random.key(1)), grad(params, mb_obs)))  # compile
        self._nets[side] = (forward, grad, params, mb_obs)
    for kind in self._env_fns:
      self.env(kind)  # compile
    self.times = {}

  def env_host(self, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
      self.pool.step(self._rng.integers(0, self.num_actions, self.n))
    return time.perf_counter() - start

  def env(self, kind: str) -> float:
    import jax
    start = time.perf_counter()
    self._env_loops[kind] = self._env_fns[kind](self._env_loops[kind])
    jax.block_until_ready(self._env_loops[kind])
    return time.perf_counter() - start

  def forward(self, side: str) -> float:
    import jax
    forward, _, params, _ = self._nets[side]
    start = time.perf_counter()
    jax.block_until_ready(forward(params, jax.random.key(1)))
    return time.perf_counter() - start

  def grad(self, side: str) -> float:
    import jax
    _, grad, params, mb_obs = self._nets[side]
    start = time.perf_counter()
    jax.block_until_ready(grad(params, mb_obs))
    return time.perf_counter() - start

  def record(self, name: str, seconds: float):
    self.times.setdefault(name, []).append(seconds)

  def round(self):
    for kind in self._env_fns:
      self.record(f"env_{kind}", self.env(kind))
    for side in self._nets:
      self.record(f"forward_{side}", self.forward(side))
      for _ in range(self.grads_per_round):
        self.record(f"grad_{side}", self.grad(side))

  def mean(self, name: str) -> float:
    return float(np.mean(self.times[name]))

  def rates(self, env_steps: int) -> dict:
    """Env steps/s of the three ways of stepping the pool with random actions, ~env_steps each."""
    per_call = self.n * self.length
    calls = max(1, env_steps // per_call)
    out = {"host loop pool.step": calls * per_call / self.env_host(calls * self.length)}
    for kind, label in (("xla", "EnvPool XLA step in jitted scan"), ("jaxai", "jaxai Env.step in jitted scan")):
      out[label] = calls * per_call / sum(self.env(kind) for _ in range(calls))
    return out

  def close(self):
    self.pool.close()
    self.jaxai_env.close()


# ----------------------------------------------------------------------------------------------

def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--env_id", default="Pong-v5", choices=["Pong-v5", "Breakout-v5"])
  parser.add_argument("--iterations", type=int, default=10, help="timed iterations (1,024 env steps each) per side")
  parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per side first (they compile)")
  parser.add_argument("--env_steps", type=int, default=8_192,
                      help="env steps per EnvPool random-action figure, before the sides run")
  parser.add_argument("--split", action=argparse.BooleanOptionalAction, default=True,
                      help="micro-benchmarks of the time split")
  parser.add_argument("--grads_per_round", type=int, default=2,
                      help="network gradients timed per side between two timed iterations")
  parser.add_argument("--cleanrl_scan", action="store_true", help="also CleanRL's published (not unrolled) scans")
  parser.add_argument("--scan_iterations", type=int, default=2, help="timed iterations of --cleanrl_scan")
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--sides", default="project,cleanrl",
                      help="comma-separated sides to run: project, cleanrl (ratios need both)")
  args = parser.parse_args()
  if args.warmup < 1 or args.iterations < 1:
    parser.error("--warmup and --iterations must be >= 1")

  import jax
  clock = CompileClock()
  config = load_config(args.env_id)
  hp = hyperparameters(config)
  loads = [os.getloadavg()[0]]
  began = time.perf_counter()
  print(f"{args.env_id}: {hp['num_envs']} envs x {hp['num_steps']} steps, {hp['update_epochs']} epochs x "
        f"{hp['num_minibatches']} minibatches, env.num_threads={config.env.num_threads}; jax {jax.__version__} "
        f"{jax.default_backend()}, {os.cpu_count()} CPUs, load average {loads[0]:.2f}", flush=True)
  print("hyperparameters (equal on both sides): " + ", ".join(f"{k}={v}" for k, v in hp.items()), flush=True)

  probes = Probes(config, hp, nets=args.split, grads_per_round=args.grads_per_round)
  rates = probes.rates(args.env_steps)
  for k, v in rates.items():
    print(f"  EnvPool random, {k:34s} {v:8,.0f} env steps/s", flush=True)

  sides = [x for x in ("project", "cleanrl") if x in args.sides.split(",")]
  if not sides:
    parser.error("--sides needs project and/or cleanrl")
  results = {}
  show = lambda res: print(
      f"  {res.name:26s} {res.rate:7.1f} env steps/s  (rollout {res.collect_s:.2f} s + update {res.update_s:.2f} s "
      f"per iteration; per iteration: {', '.join(f'{res.env_steps_per_iteration / (c + u):.0f}' for c, u in res.iterations)}); "
      f"compile {res.compile_s:.1f} s; load {os.getloadavg()[0]:.2f}", flush=True)
  cleanrl_run = None
  if "cleanrl" in sides:  # built and warmed up (compiled) first; its timed iterations alternate with the project's.
    cleanrl_run = CleanRLRun(args, config, hp, clock, True, "CleanRL-unrolled")
    print(f"  CleanRL-unrolled built and warmed up in {cleanrl_run.warm_end - cleanrl_run.start:.1f} s", flush=True)

  def between():  # before each timed project iteration: one timed CleanRL iteration, one round of probes.
    if cleanrl_run:
      cleanrl_run.step()
    probes.round()

  if "project" in sides:
    results["project"] = run_project(args, clock, between)
    loads.append(os.getloadavg()[0])
  else:
    for _ in range(args.iterations):
      between()
  if cleanrl_run:
    results["cleanrl"] = cleanrl_run.finish()
    loads.append(os.getloadavg()[0])
  probes.close()
  for res in results.values():
    show(res)
  scan = None
  if args.cleanrl_scan:
    scan_run = CleanRLRun(args, config, hp, clock, 1, "CleanRL-scan (published)")
    for _ in range(args.scan_iterations):
      scan_run.step()
    scan = scan_run.finish()
    loads.append(os.getloadavg()[0])
    show(scan)

  shown = list(results.values()) + ([scan] if scan else [])
  project, cleanrl = results.get("project"), results.get("cleanrl")
  steps = hp["num_envs"] * hp["num_steps"]
  during = {kind: steps / probes.mean(f"env_{kind}") for kind in ("xla", "jaxai")}  # between the timed iterations
  xla_rate = during["xla"]
  timed = len(shown[0].iterations) if shown else 0
  print(f"\n=== PPO end to end on {args.env_id}: {timed} timed iterations of {steps} env steps per side after "
        f"{args.warmup} warm-up (sides alternating by iteration), {os.cpu_count()} shared CPU cores, load "
        f"average {min(loads):.1f}-{max(loads):.1f}, {time.perf_counter() - began:.0f} s in all")
  print(f"{'':26s} {'env steps/s':>11s} {'s/iteration':>11s} {'rollout s':>9s} {'update s':>9s} "
        f"{'compile s':>9s} {'1st-iter extra s':>16s} {'compiles (timed)':>16s}")
  for res in shown:
    print(f"{res.name:26s} {res.rate:11.1f} {res.seconds / len(res.iterations):11.2f} {res.collect_s:9.2f} "
          f"{res.update_s:9.2f} {res.compile_s:9.1f} {res.first_extra_s:16.1f} {res.compiles:9d} ({res.compiles_while_timed})")
  for res in shown:
    print(f"  {res.name}: most XLA compile time in " + ", ".join(f"{f} {s:.1f} s" for f, s in res.compile_top)
          + f"; {res.note}")
  if project and cleanrl:
    ratio = project.rate / cleanrl.rate
    print(f"ratio project / CleanRL-unrolled: {ratio:.2f}x  (goal >= 1.5x: {'met' if ratio >= 1.5 else 'NOT met'})")
  if project:
    print(f"project compile: {project.compile_s:.1f} s  (goal <= 15 s: {'met' if project.compile_s <= 15 else 'NOT met'})"
          + (f"; CleanRL-unrolled {cleanrl.compile_s:.1f} s" if cleanrl else ""))
  print(f"EnvPool random between the timed iterations: XLA step in a jitted scan {during['xla']:,.0f}, jaxai "
        f"Env.step {during['jaxai']:,.0f} env steps/s (before them: {rates['EnvPool XLA step in jitted scan']:,.0f}, "
        f"{rates['jaxai Env.step in jitted scan']:,.0f})")
  for res in shown:
    print(f"gap to EnvPool: {res.name} {res.rate:,.1f} / EnvPool random (XLA scan) {xla_rate:,.0f} env steps/s = "
          f"{res.rate / xla_rate:.3f}")

  if args.split:
    updates = hp["update_epochs"] * hp["num_minibatches"]
    env_s = {"project": probes.mean("env_jaxai"), "cleanrl": probes.mean("env_xla")}
    print(f"\ntime split, ms per {steps}-step iteration: means over the timed iterations and over the probes run "
          f"between them. env = EnvPool random (jaxai Env.step for the project, EnvPool's XLA step for CleanRL); "
          f"forward = the policy on {hp['num_envs']} obs x {hp['num_steps']} steps in a jitted scan; "
          f"fwd+bwd = {updates} x one network gradient on {steps // hp['num_minibatches']} obs:")
    for side, res in results.items():
      total = res.seconds / len(res.iterations)
      forward, grads = probes.mean(f"forward_{side}"), updates * probes.mean(f"grad_{side}")
      parts = [("rollout", res.collect_s), ("env stepping", env_s[side]), ("policy forward", forward),
               ("rest", res.collect_s - env_s[side] - forward),
               ("update", res.update_s), ("network fwd+bwd", grads), ("rest", res.update_s - grads)]
      print(f"  {res.name}: {total * 1e3:,.0f} ms")
      for i, (name, sec) in enumerate(parts):
        indent = "    " if i in (0, 4) else "      "
        print(f"{indent}{name:18s} {sec * 1e3:8,.0f} ms  {100 * sec / total:5.1f}%")
  if project and cleanrl:
    print(f"SUMMARY ppo_vs_cleanrl: {args.env_id} project {project.rate:.1f} vs CleanRL-unrolled {cleanrl.rate:.1f} "
          f"env steps/s = {project.rate / cleanrl.rate:.2f}x; compile {project.compile_s:.1f} s vs "
          f"{cleanrl.compile_s:.1f} s; EnvPool random {xla_rate:,.0f} env steps/s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
