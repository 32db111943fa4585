"""What PPO and DQN share: config keys, environments, the rollout, episode statistics, evaluation.

Rollout rows are time-major, (T, N, ...) for T steps of N envs, as `lax.scan` makes them and as
GAE and the replay buffer read them; envs (axis 1) are what is split across devices
(`TIME_MAJOR`, the sources' `batch_axes`).
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxai.core.config import trainer_config
from jaxai.core.evaluators import Evaluator
from jaxai.core.metrics import Ratio
from jaxai.envs import envpool as envs
from jaxai.errors import UserError

TIME_MAJOR = 1  # the env axis of (T, N, ...) rows: the batch axis split over the mesh.


def rl_config() -> ml_collections.ConfigDict:
  """Keys every RL experiment has (the trainer's, minus dataset batching)."""
  config = trainer_config()
  del config["batch_size"], config["num_epochs"]
  config.env_id = "CartPole-v1"      # any EnvPool id; Atari ids end in -v5.
  config.num_envs = 8                # environments per process, stepped in lockstep.
  config.total_env_steps = 500_000   # agent steps summed over all envs and processes.
  config.env = ml_collections.ConfigDict(dict(
      num_threads=0,                 # EnvPool worker threads; 0 = one per core.
      repeat_action_probability=-1.0,  # Atari sticky actions; -1 keeps the default (0.0, see jaxai.envs.envpool).
  ))
  config.eval_episodes = 10          # whole games per evaluation, one per evaluation env.
  config.eval_max_steps = 27_000     # agent steps before an evaluation game is cut off.
  config.model = ml_collections.ConfigDict(dict(torso="mlp", hidden=(64, 64), activation="tanh"))
  config.log_every_steps = 10
  config.checkpoint_every_steps = 100
  return config


def env_options(config) -> dict:
  options = {"num_threads": config.env.num_threads}
  if config.env.repeat_action_probability >= 0:
    options["repeat_action_probability"] = config.env.repeat_action_probability
  return options


def make_env(config, *, evaluation: bool = False, num_envs: int | None = None) -> "envs.Env":
  if config.num_envs < 1:
    raise UserError(f"config.num_envs={config.num_envs} must be >= 1.")
  if evaluation and config.eval_episodes < 1:
    raise UserError(f"config.eval_episodes={config.eval_episodes} must be >= 1 (one game per evaluation env).")
  options = env_options(config)
  seed = config.seed + jax.process_index() * 100_003 + (7_919 if evaluation else 0)
  return envs.make(config.env_id, num_envs or config.num_envs, seed, evaluation=evaluation, **options)


def check_envs_fit_mesh(config) -> None:
  """Each step's rows are envs; they are split over all devices."""
  total, devices = config.num_envs * jax.process_count(), jax.device_count()
  if total % devices:
    raise UserError(f"config.num_envs={config.num_envs} per process ({total} in all) must be a "
                    f"multiple of the {devices} devices, since environments are split across them. "
                    f"Use e.g. --config.num_envs={devices // jax.process_count() or 1}.")


def rollout(env, act, carry, rng, num_steps: int):
  """`num_steps` steps of every env in a `lax.scan`, one rng per step.

  act(obs (N, ...), rng) -> (actions (N,), extras {name: (N, ...)}), e.g. PPO's log_prob and value.
  Returns (carry, transitions (T, N, ...), extras (T, N, ...)).
  """
  def step(carry, step_rng):
    action, extras = act(carry.obs, step_rng)
    carry, transition = env.step(carry, action)
    return carry, (transition, extras)

  carry, (transitions, extras) = jax.lax.scan(step, carry, jax.random.split(rng, num_steps))
  return carry, transitions, extras


def episode_metrics(transitions) -> dict:
  """Mean return and length of the whole games that finished in these transitions (any shape)."""
  ended = transitions.episode_end.astype(jnp.float32)
  return {"rl/episode_return": Ratio(jnp.sum(transitions.finished_return * ended), jnp.sum(ended)),
          "rl/episode_length": Ratio(jnp.sum(transitions.finished_length * ended), jnp.sum(ended))}


def make_evaluate(env, act, max_steps: int, seed: int) -> Evaluator:
  """An evaluator playing one whole game in each of `env`'s envs with the current parameters.

  `act(params, obs, rng) -> actions` picks actions (greedy, or epsilon-greedy). The envs are reset,
  then the games run in one `lax.while_loop` until every env has finished a game or `max_steps`
  have passed. It runs on this process's first device (EnvPool's XLA interface), with the rng
  fold_in(key(seed + 1), step).
  """

  def play(params, rng):
    carry = env.reset()
    n = env.num_envs
    init = (carry, jnp.zeros(n, bool), jnp.zeros(n), jnp.zeros(n), 0, rng)

    def cond(loop):
      _, done, _, _, t, _ = loop
      return jnp.logical_and(~jnp.all(done), t < max_steps)

    def body(loop):
      carry, done, returns, lengths, t, rng = loop
      rng, act_rng = jax.random.split(rng)
      carry, tr = env.step(carry, act(params, carry.obs, act_rng))
      first = tr.episode_end & ~done  # only the first game of each env counts.
      returns = jnp.where(first, tr.finished_return, returns)
      lengths = jnp.where(first, tr.finished_length, lengths)
      return carry, done | tr.episode_end, returns, lengths, t + 1, rng

    carry, done, returns, lengths, _, _ = jax.lax.while_loop(cond, body, init)
    # An unfinished game (cut at max_steps) counts with its return so far.
    return {"returns": jnp.where(done, returns, carry.episode_return),
            "lengths": jnp.where(done, lengths, carry.episode_length), "done": done}

  def finish(games, step) -> dict:
    returns, lengths, done = (np.asarray(games[k]) for k in ("returns", "lengths", "done"))
    return {"eval/episode_return": float(returns.mean()), "eval/episode_length": float(lengths.mean()),
            "eval/episode_return_std": float(returns.std()), "eval/episodes": float(len(returns)),
            "eval/unfinished": float((~done).sum())}

  return Evaluator(play, finish, view=lambda state: state.params, placement="local", seed=seed + 1)
