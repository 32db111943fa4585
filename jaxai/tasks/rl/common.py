"""What PPO and DQN share: config keys, episode statistics, and evaluation episodes."""
import jax
import jax.numpy as jnp
import ml_collections

from jaxai.core import mesh as mesh_lib
from jaxai.core.config import trainer_config
from jaxai.core.errors import UserError
from jaxai.core.metrics import Ratio
from jaxai.envs import envpool as envs


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


def episode_metrics(transitions) -> dict:
  """Mean return and length of the whole games that finished in these transitions (any shape)."""
  ended = transitions.episode_end.astype(jnp.float32)
  return {"rl/episode_return": Ratio(jnp.sum(transitions.finished_return * ended), jnp.sum(ended)),
          "rl/episode_length": Ratio(jnp.sum(transitions.finished_length * ended), jnp.sum(ended))}


def make_evaluate(env, act, max_steps: int, seed: int):
  """A host function `evaluate(state) -> scalars` playing one whole game in each of `env`'s envs.

  `act(params, obs, rng) -> actions` picks actions (greedy, or epsilon-greedy). The games run inside
  one jitted `lax.while_loop` until every env has finished a game or `max_steps` have passed.
  """

  @jax.jit
  def play(params, carry, rng):
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
    returns = jnp.where(done, returns, carry.episode_return)
    lengths = jnp.where(done, lengths, carry.episode_length)
    return returns, lengths, done

  base_rng = jax.random.key(seed + 1)

  def evaluate(state) -> dict:
    step, params = mesh_lib.local_copy((state.step, state.params))
    rng = jax.random.fold_in(base_rng, jax.device_get(step))  # same games for the same step.
    params, rng = jax.device_put((params, rng), jax.local_devices()[0])
    returns, lengths, done = jax.device_get(play(params, env.reset(), rng))
    return {"eval/episode_return": float(returns.mean()), "eval/episode_length": float(lengths.mean()),
            "eval/episode_return_std": float(returns.std()), "eval/episodes": float(len(returns)),
            "eval/unfinished": float((~done).sum())}

  return evaluate
