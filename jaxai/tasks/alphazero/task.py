"""AlphaZero (Silver et al. 2018) for Go, self-play and training entirely in JAX.

One train step:
  collect (core CollectionSource, data-parallel over the mesh, games split across devices):
      `moves_per_collect` plies of every one of `num_games` self-play games, each move chosen by a
      tree search (`jaxai.mcts`, Gumbel MuZero by default) guided by the current network; finished
      games restart. Emits the positions whose game has ended, with the search policy and the final
      outcome as targets (see `selfplay`).
  train_step (over the mesh): append them to the replay window kept in `state.extra['replay']`
      (`jaxai.ops.replay.Window`; `config.sharding_rules=((r"extra/replay/.*", ("data",)),)` splits
      it over the devices), then `updates_per_step` optimizer updates, each on `replay_batch_size`
      positions drawn uniformly from the window: policy cross-entropy against the search policy
      (illegal moves masked) + value MSE against the outcome. Learning starts once the window holds
      `min_replay` positions.
Evaluation (core evaluators): win rates of the search (`eval_simulations`; deterministic, except
against the previous parameters where both sides keep the self-play noise so that games differ)
against a uniform-random player and against the parameters of the previous evaluation
(`state.extra['previous_params']`, taken by the train step at every multiple of eval_every_steps;
the initial parameters when that is 0), played in JAX (`arena`); and against GNU Go through GTP
(`eval_gnugo_games` games at `gnugo_level`, host-side on process 0: `gnugo_eval`), each over both
colours.
"""
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxai.core import optim
from jaxai.core.config import trainer_config
from jaxai.core.sources import CollectionSource
from jaxai.core.state import TrainState
from jaxai.core.task import Task
from jaxai.errors import UserError
from jaxai.go import rules
from jaxai.models.go import GoNet, masked_logits
from jaxai.ops.replay import Window
from jaxai.tasks.alphazero import arena, gnugo_eval, selfplay
from jaxai.tasks.alphazero.search import Searcher, search_config


def default_config() -> ml_collections.ConfigDict:
  config = trainer_config()
  del config["num_epochs"]
  del config["batch_size"]           # see replay_batch_size.
  config.task = "alphazero"
  config.board_size = 9
  config.komi = 7.5
  config.max_moves = 0               # plies before a game is stopped and scored; 0 = 2 * size^2.
  config.superko = True              # positional superko (otherwise simple ko only).
  config.history_length = 8          # past boards in the network input (2 planes each, + colour).
  config.num_games = 64              # self-play games played at once (per process).
  config.moves_per_collect = 8       # plies of every game per train step.
  config.search = search_config()
  config.model = ml_collections.ConfigDict(dict(blocks=6, channels=64, value_hidden=64))
  config.replay_batch_size = 256     # positions sampled from the replay window per optimizer update.
  config.updates_per_step = 1        # optimizer updates per train step (each on a fresh sample).
  config.replay_size = 100_000       # positions kept in the replay window (oldest out).
  config.min_replay = 2_000          # positions in the window before learning starts.
  config.value_loss_weight = 1.0
  config.eval_games = 32             # games per evaluation vs random and vs previous (half each colour).
  config.eval_simulations = 32       # search simulations per move in evaluation games.
  config.eval_gnugo_games = 4        # games vs GNU Go per evaluation (half each colour); 0 disables.
  config.gnugo_level = 1             # GNU Go --level (0-10).
  config.eval_explore_moves = 4      # vs GNU Go (deterministic): plies per game in which the agent
                                     # samples its move with self-play noise, so that games differ.
  config.log_every_steps = 20
  config.checkpoint_every_steps = 200
  config.optimizer = optim.default_config()
  config.optimizer.update(dict(name="adamw", learning_rate=1e-3, schedule="constant",
                               weight_decay=1e-4, grad_clip_norm=1.0))
  return config


def make_game(config) -> rules.Go:
  try:
    return rules.Go(size=config.board_size, komi=config.komi, max_moves=config.max_moves or None,
                    superko=config.superko, history_length=config.history_length)
  except ValueError as e:
    raise UserError(f"config.board_size={config.board_size}: {e}") from None


def make_model(config, go: rules.Go) -> GoNet:
  m = config.model
  return GoNet(num_actions=go.num_actions, blocks=m.blocks, channels=m.channels,
               value_hidden=m.value_hidden)


def init_params(model: GoNet, go: rules.Go, rng):
  return model.init(rng, jnp.zeros((1,) + tuple(go.feature_shape), jnp.float32))["params"]


def check_config(config) -> None:
  devices = jax.device_count()
  if config.num_games < 1 or config.num_games * jax.process_count() % devices:
    raise UserError(f"config.num_games={config.num_games} must be a positive multiple of the "
                    f"{devices} devices (self-play games are split across them).")
  for key in ("moves_per_collect", "updates_per_step", "replay_batch_size", "replay_size"):
    if config[key] < 1:
      raise UserError(f"config.{key}={config[key]} must be >= 1.")
  per_step = config.num_games * jax.process_count() * config.moves_per_collect
  if config.replay_size < per_step:
    raise UserError(f"config.replay_size={config.replay_size} must hold at least one train step of "
                    f"self-play positions (num_games x moves_per_collect = {per_step}).")
  if config.min_replay > config.replay_size:
    raise UserError(f"config.min_replay={config.min_replay} exceeds replay_size={config.replay_size}.")
  if config.eval_games < 2 or config.eval_games % 2 or config.eval_gnugo_games < 0:
    raise UserError(f"config.eval_games={config.eval_games} must be even and >= 2 (both colours), "
                    f"config.eval_gnugo_games={config.eval_gnugo_games} >= 0.")


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  """The AlphaZero task (no data facts). Cheap: nothing is played, compiled or started here."""
  check_config(config)
  go = make_game(config)
  model = make_model(config, go)
  searcher = Searcher(go, model, config.search)
  steps = config.num_train_steps
  if steps < 1:
    raise UserError("config.num_train_steps must be >= 1 for alphazero.")
  num_updates = steps * config.updates_per_step  # optimizer updates (the schedule's unit).
  tx = optim.make_optimizer(config.optimizer, num_updates)
  collect_fn = selfplay.make_collect(go, searcher, config.search.num_simulations, config.moves_per_collect)
  every = config.eval_every_steps

  def init(rng) -> TrainState:
    params = init_params(model, go, rng)
    example = {"planes": jnp.zeros(go.feature_shape, selfplay.PLANES_DTYPE),
               "policy": jnp.zeros(go.num_actions, jnp.float32),
               "legal": jnp.zeros(go.num_actions, bool), "value": jnp.zeros((), jnp.float32)}
    return TrainState.create(params, tx, extra={
        "replay": Window.init(config.replay_size, example), "previous_params": params})

  def loss_fn(params, batch):
    logits, value = model.apply({"params": params}, batch["planes"])
    log_p = jax.nn.log_softmax(masked_logits(logits, batch["legal"]))
    log_p = jnp.where(batch["legal"], log_p, 0.0)
    policy_loss = -jnp.mean(jnp.sum(batch["policy"] * log_p, -1))
    value_loss = jnp.mean((value - batch["value"]) ** 2)
    entropy = -jnp.mean(jnp.sum(jnp.exp(log_p) * log_p * batch["legal"], -1))
    return policy_loss + config.value_loss_weight * value_loss, {
        "policy_loss": policy_loss, "value_loss": value_loss, "policy_entropy": entropy}

  def learn(params, opt_state, window: Window, rng):
    # A Python loop, unrolled on purpose: XLA:CPU runs convolution gradients inside loops (and
    # conditionals) far more slowly than at top level.
    stats = []
    for key in jax.random.split(rng, config.updates_per_step):
      batch = window.sample(key, config.replay_batch_size)
      (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
      updates, opt_state = tx.update(grads, opt_state, params)
      params = optax.apply_updates(params, updates)
      stats.append(aux | {"loss": loss, "grad_norm": optax.global_norm(grads)})
    return params, opt_state, jax.tree.map(lambda *x: jnp.mean(jnp.stack(x)), *stats)

  def train_step(state: TrainState, rows, rng):
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), rows)  # (G, T, ...) -> (G*T, ...)
    window = state.extra["replay"].add(flat)
    ready = window.size >= max(config.min_replay, 1)

    # Both outcomes are computed and one kept (no lax.cond: XLA:CPU runs convolution gradients
    # inside conditionals ~10x more slowly); before learning starts the update is discarded.
    new_params, new_opt_state, stats = learn(state.params, state.opt_state, window, rng)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(ready, n, o), new, old)
    params, opt_state = keep(new_params, state.params), keep(new_opt_state, state.opt_state)
    stats = {k: jnp.where(ready, v, 0.0) for k, v in stats.items()}
    # The parameters evaluated at this step (a multiple of eval_every_steps) become the opponent
    # of the next evaluation.
    snapshot = (state.step % every == 0) if every else (state.step == 0)
    previous = jax.tree.map(lambda p, q: jnp.where(snapshot, p, q), state.params,
                            state.extra["previous_params"])
    stats |= {"replay_size": window.size.astype(jnp.float32), "learning": ready.astype(jnp.float32)}
    extra = {"replay": window, "previous_params": previous}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, extra=extra), stats

  def collect(policy, carry, rng):
    return collect_fn(policy["params"], carry, rng)

  return Task(
      name="alphazero", init=init, train_step=train_step, num_train_steps=steps,
      source=CollectionSource(collect, lambda: selfplay.init_carry(go, config.num_games), on_mesh=True),
      evaluators=[arena.make_evaluator(config, go, searcher)]
      + ([gnugo_eval.make_evaluator(config, go, searcher)] if config.eval_gnugo_games else []),
      units_per_step={"selfplay_moves": config.num_games * jax.process_count() * config.moves_per_collect},
      summary=(f"AlphaZero on {go.size}x{go.size} Go (komi {go.komi}): {config.num_games} games x "
               f"{config.moves_per_collect} plies per step, {config.search.policy} search with "
               f"{config.search.num_simulations} simulations, {config.model.blocks}x{config.model.channels} "
               f"residual network, window {config.replay_size}, {steps} train steps ({num_updates} "
               f"optimizer updates of {config.replay_batch_size} positions)"))
