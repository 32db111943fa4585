"""PPO (Schulman et al. 2017) on EnvPool environments, as one pure rollout and one pure update.

collect (this process's first device; EnvPool's XLA interface steps the envs inside `jit`):
    `common.rollout` over `num_steps`: sample actions from the policy, step all envs
    -> time-major rows (T, N, ...) and V(obs after the last step) (N,)
train_step (data-parallel over the mesh; the env axis N is split across devices):
    GAE with a reverse `lax.scan` over T -> `update_epochs` x `num_minibatches` clipped-surrogate
    Adam updates in nested `lax.scan`s (unrolled by default: XLA:CPU runs convolutions inside loops
    slowly; with `config.model.conv_as_matmul` the update's convolutions are matmuls over patches,
    fast inside loops, and the scans need no unrolling). One train step = one rollout = update_epochs x num_minibatches optimizer updates.

Details follow CleanRL's `ppo_atari_envpool_xla_jax` (Huang et al. 2022): advantage normalization
per minibatch, clipped value loss, entropy bonus, global gradient clipping 0.5, Adam eps 1e-5 with
the learning rate annealed linearly to 0. Two differences, both from EnvPool's auto-reset: the step
after an episode end (its action is ignored) is masked out of the loss, and a time-limit truncation
bootstraps from the final observation instead of being treated as a termination.
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
from jaxai.ops import rl as rl_ops
from jaxai.tasks.rl import common


def default_config() -> ml_collections.ConfigDict:
  config = common.rl_config()
  config.task = "ppo"
  config.num_steps = 128           # rollout length per env per iteration (one train step).
  config.num_minibatches = 4       # minibatches per epoch; minibatch = num_envs * num_steps / this.
  config.update_epochs = 4         # passes over each rollout.
  config.gamma = 0.99
  config.gae_lambda = 0.95
  config.clip_coef = 0.1           # policy ratio clipping.
  config.clip_value_loss = True    # clip the value update like the policy ratio.
  config.ent_coef = 0.01
  config.vf_coef = 0.5
  config.normalize_advantages = True
  config.unroll_updates = True     # unroll the epoch/minibatch scans (much faster on XLA:CPU).
  config.model.separate_torsos = False  # separate policy/value MLPs (classic control).
  config.model.conv_as_matmul = False   # the update's Nature CNN as patches @ kernel (models.rl.MatmulConv):
                                        # the same parameters; its gradients run fast inside lax.scan on CPU.
  config.optimizer = optim.default_config()
  config.optimizer.update(dict(name="adam", learning_rate=2.5e-4, eps=1e-5, schedule="linear",
                               end_learning_rate_factor=0.0, grad_clip_norm=0.5))
  return config


def make_model(config, num_actions: int, conv_as_matmul: bool = False):
  """The actor-critic; `conv_as_matmul` builds the same network (same parameters) with MatmulConv."""
  m = config.model
  torso = lambda: rl_models.make_torso(m.torso, m.hidden, m.activation, conv_as_matmul)
  if m.get("separate_torsos", False):
    return rl_models.ActorCriticSeparate(torso(), torso(), num_actions)
  return rl_models.ActorCritic(torso(), num_actions)


ROW_KEYS = ("obs", "action", "log_prob", "value", "reward", "terminated", "episode_end", "valid")
# Batch axes of the rows: (T, N, ...) rollout rows, and bootstrap_value (N,).
BATCH_AXES = {k: common.TIME_MAJOR for k in ROW_KEYS} | {"bootstrap_value": 0}


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  """The PPO task; it needs no data facts (`facts` is accepted and ignored)."""
  common.check_envs_fit_mesh(config)
  envs_total = config.num_envs * jax.process_count()
  steps_per_iteration = envs_total * config.num_steps
  if steps_per_iteration % config.num_minibatches:
    raise UserError(f"num_envs x num_steps = {steps_per_iteration} (over all processes) must be "
                    f"divisible by num_minibatches={config.num_minibatches}.")
  iterations = config.num_train_steps or max(1, config.total_env_steps // steps_per_iteration)
  env = common.make_env(config)
  eval_env = common.make_env(config, evaluation=True, num_envs=config.eval_episodes)
  model = make_model(config, env.num_actions)  # acting: forward passes only, fast as nn.Conv.
  update_model = make_model(config, env.num_actions, config.model.get("conv_as_matmul", False))
  updates_per_step = config.update_epochs * config.num_minibatches  # optimizer updates per train step.
  num_updates = iterations * updates_per_step
  tx = optim.make_optimizer(config.optimizer, num_updates)
  learning_rate = optim.make_schedule(config.optimizer, num_updates)

  def init(rng) -> TrainState:
    params = model.init(rng, jnp.zeros((1,) + env.obs_shape, env.obs_dtype))["params"]
    return TrainState.create(params, tx)

  def collect(policy, env_carry, rng):
    def act(obs, rng):
      logits, value = model.apply({"params": policy["params"]}, obs)
      action = jax.random.categorical(rng, logits)
      log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], -1)[:, 0]
      return action, {"log_prob": log_prob, "value": value}

    env_carry, tr, extras = common.rollout(env, act, env_carry, rng, config.num_steps)  # (T, N, ...)
    _, bootstrap_value = model.apply({"params": policy["params"]}, env_carry.obs)  # (N,)
    rows = {k: getattr(tr, k) for k in ("obs", "action", "reward", "terminated", "episode_end", "valid")}
    return env_carry, rows | extras | {"bootstrap_value": bootstrap_value}, common.episode_metrics(tr)

  def loss_fn(params, mb):
    logits, value = update_model.apply({"params": params}, mb["obs"])
    log_probs = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(log_probs, mb["action"][:, None], -1)[:, 0]
    valid = mb["valid"].astype(jnp.float32)
    n_valid = jnp.maximum(valid.sum(), 1.0)
    masked_mean = lambda x: jnp.sum(x * valid) / n_valid
    adv = mb["advantage"]
    if config.normalize_advantages:
      mean = masked_mean(adv)
      adv = (adv - mean) / (jnp.sqrt(masked_mean((adv - mean) ** 2)) + 1e-8)
    log_ratio = log_prob - mb["log_prob"]
    ratio = jnp.exp(log_ratio)
    pg_loss = masked_mean(jnp.maximum(-adv * ratio,
                                      -adv * jnp.clip(ratio, 1 - config.clip_coef, 1 + config.clip_coef)))
    v_loss = (value - mb["return"]) ** 2
    if config.clip_value_loss:
      v_clipped = mb["value"] + jnp.clip(value - mb["value"], -config.clip_coef, config.clip_coef)
      v_loss = jnp.maximum(v_loss, (v_clipped - mb["return"]) ** 2)
    v_loss = 0.5 * masked_mean(v_loss)
    entropy = masked_mean(-jnp.sum(jnp.exp(log_probs) * log_probs, -1))
    loss = pg_loss - config.ent_coef * entropy + config.vf_coef * v_loss
    stats = {"pg_loss": pg_loss, "value_loss": v_loss, "entropy": entropy,
             "approx_kl": masked_mean((ratio - 1) - log_ratio),
             "clip_fraction": masked_mean((jnp.abs(ratio - 1) > config.clip_coef).astype(jnp.float32))}
    return loss, stats

  def train_step(state: TrainState, rows, rng):
    advantage, returns = rl_ops.gae(  # (T, N)
        rows["reward"], rows["value"], rows["bootstrap_value"], rows["terminated"], rows["episode_end"],
        config.gamma, config.gae_lambda)
    samples = {k: rows[k] for k in ("obs", "action", "log_prob", "value", "valid")}
    samples |= {"advantage": advantage, "return": returns}  # each (T, N, ...)
    num_steps, num_envs = rows["action"].shape
    size = num_steps * num_envs  # samples of the rollout, over all envs.
    mb_size = size // config.num_minibatches

    def minibatch_update(carry, ids):
      params, opt_state = carry
      # Sample id = env * T + time: a minibatch gathers its (time, env) pairs from the (T, N) rows.
      mb = jax.tree.map(lambda x: x[ids % num_steps, ids // num_steps], samples)
      (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, mb)
      updates, opt_state = tx.update(grads, opt_state, params)
      stats |= {"loss": loss, "grad_norm": optax.global_norm(grads)}
      return (optax.apply_updates(params, updates), opt_state), stats

    def epoch(carry, epoch_rng):
      order = jax.random.permutation(epoch_rng, size).reshape(config.num_minibatches, mb_size)
      return jax.lax.scan(minibatch_update, carry, order, unroll=config.unroll_updates)

    (params, opt_state), stats = jax.lax.scan(
        epoch, (state.params, state.opt_state), jax.random.split(rng, config.update_epochs),
        unroll=config.unroll_updates)
    metrics = jax.tree.map(jnp.mean, stats)
    metrics["learning_rate"] = learning_rate(state.step * updates_per_step)
    metrics["explained_variance"] = _explained_variance(samples["value"], samples["return"], samples["valid"])
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  greedy = lambda params, obs, rng: jnp.argmax(model.apply({"params": params}, obs)[0], -1)
  evaluate = common.make_evaluate(eval_env, greedy, config.eval_max_steps, config.seed)

  return Task(
      name="ppo", init=init, train_step=train_step, num_train_steps=iterations,
      source=CollectionSource(collect, env.reset, batch_axes=BATCH_AXES), evaluators=[evaluate],
      units_per_step={"env_steps": steps_per_iteration, "optimizer_updates": updates_per_step},
      summary=(f"PPO on {config.env_id}: {envs_total} envs x {config.num_steps} steps per iteration, "
               f"{iterations} iterations, obs {env.obs_shape}, {env.num_actions} actions"))


def _explained_variance(values, returns, valid):
  """1 - Var(returns - values) / Var(returns) over valid samples (any shape): how well the critic fits."""
  w = valid.astype(jnp.float32)
  n = jnp.maximum(w.sum(), 1.0)
  var = lambda x: jnp.sum(w * (x - jnp.sum(w * x) / n) ** 2) / n
  return 1.0 - var(returns - values) / (var(returns) + 1e-8)
