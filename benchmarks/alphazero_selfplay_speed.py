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
peer ... (--repeats each); each round times --calls collection calls; moves/s = moves per call (8 x games)
/ seconds per call, median over rounds; ratio = project / peer. Every figure is taken both by the wall
clock and in process CPU time (all threads): on a shared machine the wall clock follows the other jobs'
load (three default runs here gave wall-clock ratios of 1.34x, 0.86x and 0.98x for the same pipelines),
CPU time less so (1.01x and 1.11x; it still varies ~10% between rounds).

Where the time goes, per side. Network alone, on that side's own input planes (the same function and
parameters): one batched forward pass of the --num_games positions (jitted, top level) and the
num_simulations + 1 dependent forward passes that one move's search costs (a `lax.fori_loop`, as inside
the search); net share = those passes / the time of one move, the rest is search + rules. And directly:
the same two pipelines again with a near-free network (GoNet with 0 blocks x 1 channel), which leaves the
search, the rules and the bookkeeping (search+rules; its share = that / the full self-play time). The
near-free figure is the sharper of the two (the derived one subtracts two noisy numbers).

Measured on 2 shared CPU cores (jax 0.10.2 CPU, pgx 2.6.0, mctx 0.0.71; other jobs kept the load average
at 4-10), defaults (64 games, 32 simulations, Gumbel, 8 moves per call, 3 rounds of 1 call per side;
23 min in all, ~6 min of it compiling):
  side       moves/s moves/CPU-s  s/call CPU-s/call     CPU-ms/move: all   33 fwd (share)  search+rules (share)
  project       4.89        9.58   104.6       53.4                 6,681   6,287 (97%)       219 (3%)
  pgx+mctx      5.01        8.65   102.1       59.2                 7,395   8,209 (106%)      350 (5%)
  ratio project / pgx+mctx = 0.98x moves/s by the wall clock, 1.11x per CPU-second; the rounds overlap
  (project 8.8-9.9, pgx+mctx 8.3-9.9 moves per CPU-second). Two earlier default runs of the same
  pipelines: 1.34x (wall clock only, load ~10) and 0.86x wall / 1.01x CPU. Search+rules alone:
  project / pgx+mctx = 1.60x per CPU-second (219 vs 350 CPU-ms per move of 64 games; 1.58x wall; the
  earlier run 1.56x). Network: 4.07 GFLOP per batched forward pass of 64 positions (64 MFLOP per
  position), ~200 CPU-ms: 20 GFLOP per CPU-second, 10 GFLOP/s by the wall clock.
So on CPU self-play is the network (~95-97% of the time, the same function on both sides); the project's
search + rules are ~1.6x faster than pgx + mctx's, but that part is 3-5% of the time, so the end-to-end
ratio is ~1.0x: with these figures it cannot exceed (7,395) / (7,395 - 350) = 1.05x even with free
search and rules, and the 1.2x-1.3x single figures are the shared machine's noise. The goal of >= 1.2x
cannot be met on CPU while both sides evaluate the same network (32 + 1) x 64 times per move: it needs
fewer or cheaper network evaluations per move in the project's path.

What a GPU user should expect (stated, not measured): there the same 4 GFLOP batch is well under a
millisecond of math, and a forward pass costs little more than its ~30 kernel launches, while each
simulation also runs the search's while-loops (walk, backup) and the rules as many small kernels; the
network share falls from ~97% to a minority, and the ratio should move from ~1.0x towards the
search+rules ratio (1.6x on CPU; on a GPU it depends on kernel counts rather than FLOPs; see also
benchmarks/mcts_speed.py and benchmarks/go_engine_speed.py). Run this script there (try --num_games=256,
the config's batch) to know.
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
      # A data dependency on the previous pass (as in the search); tanh never exceeds 1, so x stays x0.
      x = jnp.where(value[:, None, None, None] > 2.0, 0.0, x0)
      return x, total + jnp.sum(logits) + jnp.sum(value)

    return jax.lax.fori_loop(0, passes, body, (x0, jnp.float32(0)))[1]

  return once, looped


class Clock:
  """Wall-clock and process CPU seconds (all threads) of a block. On a shared machine the wall time
  grows with the other jobs' load; the CPU time much less (it still grows with cache and memory
  contention, and with the thread pools' spinning)."""

  def __enter__(self):
    self._wall, self._cpu = time.perf_counter(), time.process_time()
    return self

  def __exit__(self, *exc):
    self.wall, self.cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu


def time_it(fn, *args) -> tuple[float, float]:
  """(wall, cpu) seconds of one call."""
  with Clock() as clock:
    jax.block_until_ready(fn(*args))
  return clock.wall, clock.cpu


def forward_gflop(fn, *args) -> float:
  try:
    cost = fn.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) / 1e9
  except Exception:  # cost analysis is optional (backend-dependent)
    return 0.0


# -------------------------------------------------------------------------------------------- main


def build_sides(config, model, params, with_network: bool, label: str = "") -> dict:
  """{name: side}, each compiled and warmed up; with_network: also its network-alone timers."""
  go = task_lib.make_game(config)
  sims = config.search.num_simulations
  sides = {"project": ProjectSide(config, params), "pgx+mctx": PeerSide(config, model, params)}
  for name, side in sides.items():
    start = time.perf_counter()
    side.call()  # compile + first call
    seconds = time.perf_counter() - start
    side.call()  # warm-up
    print(f"  {label}{name}: compile + first call {seconds:.1f} s", flush=True)
    side.network = None
    if with_network:  # on this side's own input planes
      planes = sample_planes_project(go, config.num_games) if name == "project" else sample_planes_pgx(
          config.num_games)
      once, looped = network_timers(model, params, planes, sims + 1)
      side.gflop = forward_gflop(once, params, planes)
      time_it(once, params, planes), time_it(looped, params, planes)  # compile
      side.network = lambda once=once, looped=looped, planes=planes: (
          time_it(once, params, planes), time_it(looped, params, planes))
  return sides


def run_rounds(sides: dict, repeats: int, calls: int, label: str = "") -> dict:
  """Rounds alternate between the sides (A B A B ...); in its turn a side times `calls` collection calls,
  then (if it has them) its network-alone passes, under the same load. {name: [per round: {'call',
  'one', 'loop'}: (wall, cpu) seconds of one collection call, one forward pass, sims + 1 passes]}."""
  times = {name: [] for name in sides}
  for round_index in range(repeats):
    for name, side in sides.items():
      with Clock() as clock:
        for _ in range(calls):
          side.call()
      record = {"call": (clock.wall / calls, clock.cpu / calls)}
      if side.network:
        record["one"], record["loop"] = side.network()
      times[name].append(record)
      print(f"  {label}round {round_index + 1} {name:9s} {side.moves_per_call / record['call'][0]:8.1f} moves/s "
            f"({side.moves_per_call / record['call'][1]:.1f} per CPU-second)", flush=True)
  return times


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

  sides = build_sides(config, model, params, with_network=not args.no_network)
  times = run_rounds(sides, args.repeats, args.calls)
  gflop = getattr(sides["project"], "gflop", 0.0)
  del sides
  med = statistics.median
  WALL, CPU = 0, 1
  per_round = lambda name, key, clock: [r[key][clock] for r in times[name]]
  call = {name: {c: med(per_round(name, "call", c)) for c in (WALL, CPU)} for name in times}
  rate = {name: {c: moves_per_call / call[name][c] for c in (WALL, CPU)} for name in times}

  bare = {}
  if not args.no_split:
    # The same two pipelines with a near-free network (GoNet with no residual block, 1 channel): what
    # is left is the search, the rules and the pipeline's bookkeeping.
    small = go9_config(games, sims, args.policy)
    small.model.update(dict(blocks=0, channels=1, value_hidden=1))
    small_model = task_lib.make_model(small, go)
    small_params = task_lib.init_params(small_model, go, jax.random.key(config.seed))
    label = "near-free network: "
    bare_sides = build_sides(small, small_model, small_params, with_network=False, label=label)
    bare_times = run_rounds(bare_sides, args.repeats, args.calls, label=label)
    bare = {name: {c: med([r["call"][c] for r in rounds]) for c in (WALL, CPU)}
            for name, rounds in bare_times.items()}

  print(f"\nmedians of {args.repeats} rounds x {args.calls} call(s); one call = {moves} moves x {games} games "
        f"= {moves_per_call} moves:")
  print(f"  {'side':9s} {'moves/s':>8s} {'moves/CPU-s':>11s} {'s/call':>7s} {'CPU-s/call':>10s}")
  for name in times:
    print(f"  {name:9s} {rate[name][WALL]:8.2f} {rate[name][CPU]:11.2f} {call[name][WALL]:7.1f} "
          f"{call[name][CPU]:10.1f}")

  if not args.no_network or bare:
    print(f"\nwhere the time of one move of all {games} games goes (one batched search), in CPU-ms (process "
          "CPU time, less sensitive to other jobs than the wall clock):")
    header = f"  {'side':9s} {'CPU-ms/move':>11s}"
    if not args.no_network:
      header += f" | {'fwd':>7s} {f'{sims + 1} fwd':>8s} {'net share':>9s} {'rest':>7s}"
    if bare:
      header += f" | {'search+rules':>12s} {'its share':>9s}"
    print(header)
    for name, rounds in times.items():
      per_move = 1e3 * call[name][CPU] / moves
      line = f"  {name:9s} {per_move:11.0f}"
      if not args.no_network:  # shares per round (same load), then medians
        one, loop = med(per_round(name, "one", CPU)), med(per_round(name, "loop", CPU))
        share = med([r["loop"][CPU] * moves / r["call"][CPU] for r in rounds])
        rest = med([1e3 * (r["call"][CPU] / moves - r["loop"][CPU]) for r in rounds])
        line += f" | {1e3 * one:7.0f} {1e3 * loop:8.0f} {share:9.0%} {rest:7.0f}"
      if bare:
        line += f" | {1e3 * bare[name][CPU] / moves:12.0f} {bare[name][CPU] / call[name][CPU]:9.0%}"
      print(line)
    if not args.no_network:
      print(f"  fwd: one batched forward pass of the {games} positions; {sims + 1} fwd: the network cost of one "
            f"move (root + {sims} simulations, in a loop); net share: that / CPU-ms/move; rest: the difference")
      one_wall, one_cpu = med(per_round("project", "one", WALL)), med(per_round("project", "one", CPU))
      if gflop:
        print(f"  network: {gflop:.2f} GFLOP per batched forward pass ({gflop / games * 1e3:.0f} MFLOP per "
              f"position), {gflop / one_cpu:.0f} GFLOP per CPU-second, {gflop / one_wall:.0f} GFLOP/s by the "
              "wall clock")
    if bare:
      print(f"  search+rules: the same self-play with a near-free network (GoNet 0 blocks x 1 channel); "
            f"project / pgx+mctx = {bare['pgx+mctx'][CPU] / bare['project'][CPU]:.2f}x on that part alone "
            f"({bare['pgx+mctx'][WALL] / bare['project'][WALL]:.2f}x by the wall clock)")

  ratio = {c: rate["project"][c] / rate["pgx+mctx"][c] for c in (WALL, CPU)}
  print(f"\nratio project / pgx+mctx = {ratio[WALL]:.2f}x moves/s by the wall clock, {ratio[CPU]:.2f}x moves "
        f"per CPU-second (goal >= 1.2x)")
  print("  rounds, moves/s (per CPU-s): " + "; ".join(
      f"{name} " + ", ".join(f"{moves_per_call / r['call'][WALL]:.2f} ({moves_per_call / r['call'][CPU]:.2f})"
                             for r in times[name]) for name in times))


if __name__ == "__main__":
  main()
