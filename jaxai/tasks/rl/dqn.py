"""The DQN family on EnvPool environments: Nature DQN (Mnih et al. 2015), Double DQN (van Hasselt et
al. 2016), a dueling head (Wang et al. 2016) and n-step returns, with a replay buffer held as arrays
in the train state.

One train step = `train_frequency` env steps in every env (collect, epsilon-greedy, on this
process's first device; time-major rows (k, N, ...)) + inserting them into the replay buffer + one
optimizer update on `replay_batch_size` sampled transitions (once `learning_starts` env steps have
been taken) + a hard target-network update every `target_update_period` train steps.

The replay buffer lives in the train state (`state.extra['replay']`), so sampling and insertion
happen inside the jitted step with no host round trip, and a checkpoint restores it with everything
else: a resumed run continues with the same buffer. Its (C, N, ...) columns are envs, split along
the mesh's `data` axis like the rows that fill them (`SHARDING_RULES`): each device holds its
envs' columns, so insertion stays on the device and only the sampled transitions travel. Each
observation is stored once (see `jaxai.ops.replay`): an Atari buffer of 100k transitions takes
about 2.8 GB in all (per checkpoint), divided over the devices. Under jax.distributed each process
steps its own envs and the buffer holds the envs of all processes.
"""
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxai.core import optim
from jaxai.core.sources import CollectionSource
from jaxai.core.state import TrainState
from jaxai.core.task import Task
from jaxai.errors import UserError
from jaxai.models import rl as rl_models
from jaxai.ops import replay as replay_ops
from jaxai.ops import rl as rl_ops
from jaxai.tasks.rl import common


def default_config() -> ml_collections.ConfigDict:
  config = common.rl_config()
  config.task = "dqn"
  config.num_envs = 1
  config.replay_batch_size = 128     # transitions sampled from the replay buffer per optimizer update (global).
  config.buffer_size = 10_000        # transitions kept per process (rows x its envs).
  config.learning_starts = 10_000    # env steps (all envs) before the first gradient step.
  config.train_frequency = 10        # env steps per env between gradient steps.
  config.target_update_period = 50   # train steps between hard target-network updates.
  config.gamma = 0.99
  config.n_step = 1                  # n-step returns (1 = one-step TD).
  config.double_q = True             # Double DQN: online argmax, target evaluation.
  config.dueling = False             # dueling value/advantage head.
  config.td_loss = "mse"             # 'mse' (CleanRL) or 'huber' (Nature DQN, DQN Zoo); with Adam at
                                     # CleanRL's CartPole settings Huber diverged here, MSE did not.
  config.huber_delta = 1.0           # Huber loss threshold (in TD-error units).
  config.epsilon_start = 1.0
  config.epsilon_end = 0.05
  config.epsilon_fraction = 0.5      # fraction of total_env_steps over which epsilon decays.
  config.eval_epsilon = 0.05
  config.optimizer = optim.default_config()
  config.optimizer.update(dict(name="adam", learning_rate=2.5e-4, schedule="constant"))
  return config


ROW_KEYS = ("obs", "action", "reward", "terminated", "episode_end", "valid")  # (k, N, ...) each.
# The replay buffer's env columns (dim 1 of its (C, N, ...) arrays) split along `data`.
SHARDING_RULES = ((r"extra/replay/(obs|action|reward|terminated|episode_end|valid)", (None, "data")),)


def first_update_step(config, steps_per_train_step: int) -> int:
  """The first train step (0-based) that makes an optimizer update: `learning_starts` env steps
  have been taken and the buffer holds n_step + 1 rows."""
  after_env_steps = -(-config.learning_starts // steps_per_train_step)
  after_rows = -(-(config.n_step + 1) // config.train_frequency)
  return max(after_env_steps, after_rows, 1) - 1


def check_config(config) -> None:
  if config.td_loss not in ("mse", "huber"):
    raise UserError(f"config.td_loss={config.td_loss!r} is unknown; use 'mse' or 'huber'.")
  for key in ("replay_batch_size", "train_frequency", "n_step", "target_update_period"):
    if config[key] < 1:
      raise UserError(f"config.{key}={config[key]} must be >= 1.")


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  """The DQN task; it needs no data facts (`facts` is accepted and ignored)."""
  common.check_envs_fit_mesh(config)
  check_config(config)
  envs_total = config.num_envs * jax.process_count()
  steps_per_train_step = envs_total * config.train_frequency
  iterations = config.num_train_steps or max(1, config.total_env_steps // steps_per_train_step)
  capacity = config.buffer_size // config.num_envs  # rows; each row holds one step of every env.
  if capacity < config.n_step + config.train_frequency + 1:
    raise UserError(f"config.buffer_size={config.buffer_size} is too small for {config.num_envs} envs; "
                    f"it must hold at least n_step + train_frequency + 1 steps of every env.")
  env = common.make_env(config)
  eval_env = common.make_env(config, evaluation=True, num_envs=config.eval_episodes)
  m = config.model
  model = rl_models.QNetwork(rl_models.make_torso(m.torso, m.hidden, m.activation), env.num_actions,
                             dueling=config.dueling)
  # One optimizer update per train step from the first learning one on: the schedule's length.
  num_updates = max(0, iterations - first_update_step(config, steps_per_train_step))
  tx = optim.make_optimizer(config.optimizer, num_updates)
  decay_steps = max(1, int(config.epsilon_fraction * config.total_env_steps))
  epsilon_at = lambda env_steps: rl_ops.linear_epsilon(
      env_steps, config.epsilon_start, config.epsilon_end, decay_steps)

  def init(rng) -> TrainState:
    params = model.init(rng, jnp.zeros((1,) + env.obs_shape, env.obs_dtype))["params"]
    replay = replay_ops.init(capacity, envs_total, env.obs_shape, env.obs_dtype)
    return TrainState.create(params, tx, extra={"target_params": params, "replay": replay})

  def epsilon_greedy(params, obs, rng, epsilon):
    explore_rng, action_rng = jax.random.split(rng)
    greedy = jnp.argmax(model.apply({"params": params}, obs), -1)
    random = jax.random.randint(action_rng, greedy.shape, 0, env.num_actions)
    return jnp.where(jax.random.uniform(explore_rng, greedy.shape) < epsilon, random, greedy)

  def collect(policy, env_carry, rng):
    epsilon = epsilon_at(policy["step"] * steps_per_train_step)
    act = lambda obs, rng: (epsilon_greedy(policy["params"], obs, rng, epsilon), {})
    env_carry, tr, _ = common.rollout(env, act, env_carry, rng, config.train_frequency)
    rows = {k: getattr(tr, k) for k in ROW_KEYS}  # (k, N, ...)
    return env_carry, rows, common.episode_metrics(tr) | {"rl/epsilon": epsilon}

  def q_loss(params, target_params, batch):
    partial, discount, m = rl_ops.n_step_target_parts(
        batch["rewards"], batch["terminated"], batch["episode_end"], config.gamma)
    bootstrap_obs = jnp.take_along_axis(
        batch["next_obs"], (m - 1).reshape((-1,) + (1,) * (batch["next_obs"].ndim - 1)), 1)[:, 0]
    target_q = model.apply({"params": target_params}, bootstrap_obs)
    if config.double_q:
      best = jnp.argmax(model.apply({"params": params}, bootstrap_obs), -1)
    else:
      best = jnp.argmax(target_q, -1)
    bootstrap = jnp.take_along_axis(target_q, best[:, None], -1)[:, 0]
    target = jax.lax.stop_gradient(partial + discount * bootstrap)
    q = jnp.take_along_axis(model.apply({"params": params}, batch["obs"]), batch["action"][:, None], -1)[:, 0]
    valid = batch["valid"].astype(jnp.float32)
    td = q - target
    per_sample = rl_ops.huber(td, config.huber_delta) if config.td_loss == "huber" else 0.5 * td ** 2
    loss = jnp.sum(per_sample * valid) / jnp.maximum(valid.sum(), 1.0)
    return loss, {"q_mean": jnp.sum(q * valid) / jnp.maximum(valid.sum(), 1.0)}

  def train_step(state: TrainState, rows, rng):
    replay = replay_ops.add(state.extra["replay"], rows)
    env_steps = (state.step + 1) * steps_per_train_step
    learning = (env_steps >= config.learning_starts) & replay_ops.can_sample(replay, config.n_step)

    def learn(state):
      batch = replay_ops.sample(replay, rng, config.replay_batch_size, config.n_step)
      (loss, stats), grads = jax.value_and_grad(q_loss, has_aux=True)(
          state.params, state.extra["target_params"], batch)
      updates, opt_state = tx.update(grads, state.opt_state, state.params)
      params = optax.apply_updates(state.params, updates)
      return params, opt_state, {"loss": loss, "grad_norm": optax.global_norm(grads), **stats}

    def wait(state):
      zero = jnp.zeros((), jnp.float32)
      return state.params, state.opt_state, {"loss": zero, "grad_norm": zero, "q_mean": zero}

    params, opt_state, stats = jax.lax.cond(learning, learn, wait, state)
    step = state.step + 1
    update_target = (step % config.target_update_period) == 0
    target = jax.tree.map(lambda p, t: jnp.where(update_target, p, t), params, state.extra["target_params"])
    stats["learning"] = learning.astype(jnp.float32)
    return state.replace(step=step, params=params, opt_state=opt_state,
                         extra={"target_params": target, "replay": replay}), stats

  def eval_act(params, obs, rng):
    return epsilon_greedy(params, obs, rng, config.eval_epsilon)

  evaluate = common.make_evaluate(eval_env, eval_act, config.eval_max_steps, config.seed)

  return Task(
      name="dqn", init=init, train_step=train_step, num_train_steps=iterations,
      source=CollectionSource(collect, env.reset, batch_axes=common.TIME_MAJOR), evaluators=[evaluate],
      sharding_rules=SHARDING_RULES, units_per_step={"env_steps": steps_per_train_step},
      summary=(f"DQN on {config.env_id}: {envs_total} envs x {config.train_frequency} steps per "
               f"train step, {iterations} train steps ({num_updates} optimizer updates), buffer "
               f"{capacity} x {envs_total}, double={config.double_q} dueling={config.dueling} "
               f"n_step={config.n_step}"))
