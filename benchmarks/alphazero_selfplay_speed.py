"""AlphaZero self-play speed, end to end (rules + MCTS search + network): moves/s of the project's
self-play pipeline against pgx 2.6.0 + mctx 0.0.71, same network, batch and simulations, in one run.

  python benchmarks/alphazero_selfplay_speed.py                    # 64 games, 32 simulations, 3 rounds
  python benchmarks/alphazero_selfplay_speed.py --num_games=256 --repeats=5   # the config's batch

Both sides play 9x9 Go (komi 7.5, games capped at 162 plies) with the go9 network of
configs/go9_alphazero.py (jaxai.models.go.GoNet: 6 residual blocks x 64 channels, value head 64; 17 input
planes = 8 past boards x 2 colours + side to move, which is also pgx's go_9x9 observation, so the very same
Flax module and the very same (randomly initialized) parameters run on both sides; pgx's planes are bool,
cast to float32 by GoNet) and the config's search policy (Gumbel MuZero, 16 considered actions, Gumbel
scale 1 in self-play; --policy=muzero switches both sides to PUCT with Dirichlet root noise).

  project  the trainer's own path: `alphazero.make_task(config)` with the go9 config (--num_games,
           --num_simulations), its CollectionSource opened on the run's placement and called as
           `source.rows(step, state)` exactly as jaxai.core.trainer does (jitted on the mesh, carry
           donated). One call = `moves_per_collect` (8) plies of every game: Searcher (jaxai.mcts
           gumbel_muzero_policy, recurrent_fn = jaxai.go.rules step + legal mask + feature planes +
           GoNet), the move, finished games restarted, positions written into the outcome ring and the
           ended positions read out as training rows (selfplay.make_collect). Rules: positional superko
           (the config's default; every candidate's position hash is looked up among earlier positions).
  peer     pgx `go_9x9` + mctx, written here after the pattern of pgx's examples/alphazero self-play: the
           root from GoNet on `state.observation`, mctx.gumbel_muzero_policy (same simulations, considered
           actions, qtransform_completed_by_mix_value, invalid_actions = ~legal_action_mask), recurrent_fn
           = vmapped `env.step` + GoNet with illegal logits masked, reward of the player who moved,
           discount -1 (0 once terminated); then all games step one move (pgx.experimental.auto_reset), a
           `lax.scan` of the same 8 moves per call, carrying the games across calls like the project (pgx's
           example restarts them per call), rows out (observation, search policy, legal mask, reward,
           terminated). Jitted, carry donated. Rules: pgx's simple ko, a repeating move loses.
Each side is compiled and run twice before timing (warm-up). Rounds alternate project, peer, project,
peer ... (--repeats each); each round times --calls collection calls; moves/s = moves per call x games x
calls / seconds, median over rounds; ratio = project / peer.

Network alone, per side, on that side's own input planes (the same function and parameters): one batched
forward pass of the --num_games positions (jitted, top level), and the num_simulations + 1 forward passes a
search costs (a `lax.fori_loop` of dependent passes, as inside the search, where XLA:CPU's convolutions may
run differently than at top level). network share of self-play = moves x (sims + 1) x (loop pass time) /
self-play time; search + rules (+ the pipeline's bookkeeping) is the rest.

Measured on 2 shared CPU cores (jax 0.10.2 CPU, pgx 2.6.0, mctx 0.0.71), defaults (64 games, 32 simulations,
gumbel, 8 moves per call, 3 rounds of 1 call per side):
  FIGURES_PLACEHOLDER

What a GPU user should expect (stated, not measured): on a GPU the network's batched convolutions are cheap
(64-256 positions x ~0.14 GFLOP per forward pass is microseconds to a millisecond of an accelerator), so
the network share falls from most of the time (CPU) to a minority, and self-play time becomes the
sequential chain of search-loop and rules kernels per simulation (32 simulations x the walk, expansion and
backup loops per move): there the comparison is between the two searches and the two Go engines, which
benchmarks/mcts_speed.py and benchmarks/go_engine_speed.py measure separately (on CPU: jaxai.mcts 2.6x
mctx for Gumbel; our engine with superko ~3x pgx's step). Expect the project's ratio on a GPU to be at
least the CPU ratio, rising with the batch; run this script there to know.
"""
import argparse
import os
import statistics
import sys
import time
import types

import jax
import jax.numpy as jnp

from jaxai.core import sharding
from jaxai.models.go import GoNet
from jaxai.tasks import alphazero
from jaxai.tasks.alphazero import task as task_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from configs import go9_alphazero  # noqa: E402


def go9_config(num_games: int, num_simulations: int, policy: str | None):
  config = go9_alphazero.get_config()
  config.num_games = num_games
  config.search.num_simulations = num_simulations
  if policy:
    config.search.policy = policy
  return config


# ----------------------------------------------------------------------------------------- the project


class ProjectSide:
  """The trainer's self-play: the task's CollectionSource, called as jaxai.core.trainer calls it."""

  def __init__(self, config, params, seed: int = 0):
    self.task = alphazero.make_task(config)
    self.moves_per_call = config.moves_per_collect * config.num_games
    placement = sharding.placement(config, self.task.sharding_rules)
    self.params = jax.device_put(params, placement.replicated)
    self.task.source.open(placement, jax.random.fold_in(jax.random.key(seed), 1))
    self.step = 0

  def call(self):
    state = types.SimpleNamespace(params=self.params, step=jnp.asarray(self.step, jnp.int32))
    rows, metrics = self.task.source.rows(self.step, state)
    jax.block_until_ready((rows, metrics))
    self.step += 1
    return metrics


def sample_planes_project(go, num_games: int):
  """The network input of `num_games` positions of the project's rules, 6 random moves in."""
  states = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_games,) + x.shape), go.init())
  key = jax.random.key(1)
  for _ in range(6):
    key, sub = jax.random.split(key)
    legal = jax.vmap(go.legal_actions)(states)
    states = jax.vmap(go.step)(states, jax.random.categorical(sub, jnp.where(legal, 0.0, -jnp.inf)))
  return jax.vmap(go.features)(states)


# -------------------------------------------------------------------------------------- pgx + mctx


class PeerSide:
  """pgx go_9x9 + mctx self-play with the same GoNet, after pgx's examples/alphazero."""

  def __init__(self, config, model: GoNet, params, seed: int = 0):
    import mctx
    import pgx
    import pgx.experimental

    self.env = env = pgx.make("go_9x9")
    cfg = config.search
    num_games, num_simulations, moves = config.num_games, cfg.num_simulations, config.moves_per_collect
    self.moves_per_call = moves * num_games
    games = jnp.arange(num_games)

    def forward(params, observation):
      return model.apply({"params": params}, observation)

    def recurrent_fn(params, rng, action, state):
      del rng
      mover = state.current_player
      state = jax.vmap(env.step)(state, action)
      logits, value = forward(params, state.observation)
      logits = logits - jnp.max(logits, axis=-1, keepdims=True)
      logits = jnp.where(state.legal_action_mask, logits, jnp.finfo(logits.dtype).min)
      value = jnp.where(state.terminated, 0.0, value)
      discount = jnp.where(state.terminated, 0.0, -1.0)
      reward = state.rewards[games, mover]
      return mctx.RecurrentFnOutput(reward=reward, discount=discount, prior_logits=logits,
                                    value=value), state

    def search(params, rng, state):
      logits, value = forward(params, state.observation)
      root = mctx.RootFnOutput(prior_logits=logits, value=value, embedding=state)
      invalid = ~state.legal_action_mask
      if cfg.policy == "gumbel":
        return mctx.gumbel_muzero_policy(
            params, rng, root, recurrent_fn, num_simulations, invalid_actions=invalid,
            max_num_considered_actions=cfg.max_num_considered_actions, gumbel_scale=1.0,
            qtransform=mctx.qtransform_completed_by_mix_value)
      # mctx takes one scalar temperature: visit-count sampling in every move (the project samples for
      # the first `temperature_moves` moves, then plays the most visited: the same cost).
      return mctx.muzero_policy(
          params, rng, root, recurrent_fn, num_simulations, invalid_actions=invalid,
          dirichlet_fraction=cfg.dirichlet_fraction, dirichlet_alpha=cfg.dirichlet_alpha, temperature=1.0)

    step = jax.vmap(pgx.experimental.auto_reset(env.step, env.init))

    def one_move(params, state, rng):
      search_key, reset_key = jax.random.split(rng)
      out = search(params, search_key, state)
      mover = state.current_player
      nxt = step(state, out.action, jax.random.split(reset_key, num_games))
      row = {"observation": state.observation, "policy": out.action_weights,
             "legal": state.legal_action_mask, "reward": nxt.rewards[games, mover],
             "terminated": nxt.terminated}
      return nxt, row

    def collect(params, state, rng):
      state, rows = jax.lax.scan(lambda s, k: one_move(params, s, k), state, jax.random.split(rng, moves))
      return state, jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), rows)  # (G, moves, ...)

    self._collect = jax.jit(collect, donate_argnums=(1,))
    self.params = params
    self.state = jax.vmap(env.init)(jax.random.split(jax.random.key(seed), num_games))
    self.rng = jax.random.fold_in(jax.random.key(seed), 1)
    self.step = 0

  def call(self):
    self.state, rows = self._collect(self.params, self.state, jax.random.fold_in(self.rng, self.step))
    jax.block_until_ready(rows)
    self.step += 1
    return {"selfplay/games": jnp.sum(rows["terminated"])}


def sample_planes_pgx(num_games: int):
  """pgx go_9x9 observations of `num_games` positions, 6 random moves in."""
  import pgx
  env = pgx.make("go_9x9")
  states = jax.vmap(env.init)(jax.random.split(jax.random.key(2), num_games))
  key = jax.random.key(1)
  for _ in range(6):
    key, sub = jax.random.split(key)
    action = jax.random.categorical(sub, jnp.where(states.legal_action_mask, 0.0, -jnp.inf))
    states = jax.vmap(env.step)(states, action)
  return states.observation


# ----------------------------------------------------------------------------------------- network


def network_timers(model: GoNet, params, planes, passes: int):
  """Jitted (one forward pass at top level, `passes` dependent passes in a fori_loop) on `planes`."""

  @jax.jit
  def once(params, planes):
    return model.apply({"params": params}, planes)

  @jax.jit
  def looped(params, planes):
    x0 = planes.astype(jnp.float32)

    def body(_, carry):
      x, total = carry
      logits, value = model.apply({"params": params}, x)
      # A data dependency on the previous pass (as in the search), far below any effect on the work.
      x = x0 + 1e-30 * value[:, None, None, None]
      return x, total + jnp.sum(logits) + jnp.sum(value)

    return jax.lax.fori_loop(0, passes, body, (x0, jnp.float32(0)))[1]

  return once, looped


def time_it(fn, *args) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  return time.perf_counter() - start


def forward_gflop(fn, *args) -> float:
  try:
    cost = fn.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) / 1e9
  except Exception:  # cost analysis is optional (backend-dependent)
    return 0.0


# -------------------------------------------------------------------------------------------- main


def median_seconds_per_call(sides: dict, repeats: int, calls: int, label: str = "") -> dict:
  """{name: [seconds per call of each round]}: rounds alternate between the sides (A B A B ...)."""
  seconds = {name: [] for name in sides}
  for round_index in range(repeats):
    for name, side in sides.items():
      start = time.perf_counter()
      for _ in range(calls):
        side.call()
      seconds[name].append((time.perf_counter() - start) / calls)
      print(f"  {label}round {round_index + 1} {name:9s} {side.moves_per_call / seconds[name][-1]:8.1f} moves/s",
            flush=True)
  return seconds


def build_sides(config, model, params, label: str = "") -> dict:
  sides = {"project": ProjectSide(config, params), "pgx+mctx": PeerSide(config, model, params)}
  for name, side in sides.items():
    start = time.perf_counter()
    side.call()  # compile + first call
    seconds = time.perf_counter() - start
    side.call()  # warm-up
    print(f"  {label}{name}: compile + first call {seconds:.1f} s", flush=True)
  return sides


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_games", type=int, default=64, help="games stepped together (config: 256)")
  parser.add_argument("--num_simulations", type=int, default=32)
  parser.add_argument("--policy", choices=("gumbel", "muzero"), default=None,
                      help="search policy of both sides (default: the config's)")
  parser.add_argument("--repeats", type=int, default=3, help="timed rounds per side (alternating)")
  parser.add_argument("--calls", type=int, default=1, help="collection calls timed per round")
  parser.add_argument("--no_network", action="store_true", help="skip the network-alone timings")
  parser.add_argument("--no_split", action="store_true",
                      help="skip the self-play rounds with a near-free network (search + rules alone)")
  args = parser.parse_args()

  config = go9_config(args.num_games, args.num_simulations, args.policy)
  go = task_lib.make_game(config)
  model = task_lib.make_model(config, go)
  params = task_lib.init_params(model, go, jax.random.key(config.seed))
  sims, moves, games = config.search.num_simulations, config.moves_per_collect, config.num_games
  moves_per_call = moves * games
  print(f"9x9 Go, {games} games, {sims} simulations, {config.search.policy} search "
        f"({config.search.max_num_considered_actions} considered actions), GoNet {config.model.blocks}x"
        f"{config.model.channels} (value {config.model.value_hidden}), {moves} moves per call, "
        f"{jax.device_count()} {jax.default_backend()} device(s)", flush=True)

  sides = build_sides(config, model, params)
  seconds = median_seconds_per_call(sides, args.repeats, args.calls)
  call_s = {name: statistics.median(s) for name, s in seconds.items()}
  rate = {name: moves_per_call / s for name, s in call_s.items()}
  del sides

  net = {}
  if not args.no_network:
    for name in ("project", "pgx+mctx"):
      planes = (sample_planes_project(go, games) if name == "project" else sample_planes_pgx(games))
      once, looped = network_timers(model, params, planes, sims + 1)
      gflop = forward_gflop(once, params, planes)
      time_it(once, params, planes), time_it(looped, params, planes)  # compile
      ones, loops = [], []
      for _ in range(args.repeats):
        ones.append(time_it(once, params, planes))
        loops.append(time_it(looped, params, planes))
      net[name] = (statistics.median(ones), statistics.median(loops), gflop)

  bare = {}
  if not args.no_split:
    # The same two pipelines with a near-free network (GoNet with no residual block, 1 channel): what
    # is left is the search, the rules and the pipeline's bookkeeping.
    small = go9_config(games, sims, args.policy)
    small.model.update(dict(blocks=0, channels=1, value_hidden=1))
    small_model = task_lib.make_model(small, go)
    small_params = task_lib.init_params(small_model, go, jax.random.key(config.seed))
    bare_sides = build_sides(small, small_model, small_params, label="near-free network: ")
    bare_seconds = median_seconds_per_call(bare_sides, args.repeats, args.calls, label="near-free network: ")
    bare = {name: statistics.median(s) for name, s in bare_seconds.items()}

  print(f"\nmedian of {args.repeats} rounds x {args.calls} call(s); one call = {moves} moves x {games} "
        f"games = {moves_per_call} moves; per move = one search over the batch of {games} games:")
  header = f"  {'side':9s} {'moves/s':>8s} {'s/call':>7s} {'ms/move':>8s}"
  if net:
    header += f" | {'fwd ms':>7s} {f'{sims + 1} fwd ms':>10s} {'net share':>9s} {'rest ms/move':>12s}"
  if bare:
    header += f" | {'search+rules ms/move':>20s} {'moves/s':>8s}"
  print(header)
  for name in call_s:
    per_move = 1e3 * call_s[name] / moves
    line = f"  {name:9s} {rate[name]:8.1f} {call_s[name]:7.2f} {per_move:8.1f}"
    if net:
      one, loop, _ = net[name]
      line += f" | {1e3 * one:7.1f} {1e3 * loop:10.1f} {1e3 * loop / per_move:9.0%} {per_move - 1e3 * loop:12.1f}"
    if bare:
      line += f" | {1e3 * bare[name] / moves:20.1f} {moves_per_call / bare[name]:8.1f}"
    print(line)
  if net:
    one, loop, gflop = net["project"]
    if gflop:
      print(f"  network: {gflop:.2f} GFLOP per batched forward pass ({gflop / games * 1e3:.0f} MFLOP per "
            f"position); {gflop / one:.0f} GFLOP/s at top level, {gflop * (sims + 1) / loop:.0f} GFLOP/s "
            "in the loop")
    print("  net share = (sims + 1) looped forward passes / the time of one move; rest = the difference")
  if bare:
    print(f"  search+rules = self-play with a near-free network (GoNet 0 blocks x 1 channel); "
          f"project / pgx+mctx = {bare['pgx+mctx'] / bare['project']:.2f}x on that part alone")
  ratio = rate["project"] / rate["pgx+mctx"]
  print(f"\nratio project / pgx+mctx = {ratio:.2f}x moves/s (goal >= 1.2x: "
        f"{'met' if ratio >= 1.2 else 'not met'})")
  print("  rounds (moves/s): " + "; ".join(
      f"{name} " + ", ".join(f"{moves_per_call / s:.1f}" for s in seconds[name]) for name in seconds))


if __name__ == "__main__":
  main()
