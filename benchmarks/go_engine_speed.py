"""Go engine speed: random-playout game steps/s of jaxai.go.rules against pgx 2.6.0, same batch, same machine.

  python benchmarks/go_engine_speed.py                          # 9x9, batch 1024, ~2 min on 2 CPU cores
  python benchmarks/go_engine_speed.py --batch=256 --size=19

Every engine runs the same loop, one jitted `lax.scan` of --steps steps over a batch of games: the
legal-move mask, a uniformly random legal move (pass included), the step, and a reset of finished games
to the start (so every step is a game step). pgx's `env.step` also returns its legal mask and its
observation planes, so our engine is timed both without and with its input planes (`features`) for a
like-for-like figure. Rules: ours with positional superko (the default; superko-violating moves masked
out, which compares every candidate's position hash with all earlier positions), with simple ko, and
with pgx's rule (simple ko, a repetition loses); pgx: simple ko + repetition loses.

The machine may be shared, so the engines are timed in turns for --repeats rounds and the median round
is reported (compilation excluded: each loop runs once before timing).

Measured on 2 CPU cores shared with other jobs (load average ~10; jax 0.10.2, CPU backend), steps/s,
ranges over two runs:
                                       9x9, batch 1024       19x19, batch 128 (one run)
  ours, superko (default)               40,000 - 50,000        10,600
  ours, simple ko                       96,000 - 115,000       23,600
  ours, pgx rule                        77,000 - 96,000        21,500
  ours, superko + planes                39,000 - 42,000        10,700
  ours, pgx rule + planes               99,000 - 112,000       26,100
  pgx 2.6.0 env.step (mask + planes)    13,400 - 16,700         1,480
Like for like (same rule, planes included) ours is ~7x pgx on 9x9 and ~18x on 19x19 (pgx's legal mask
and liberty counts are O(board^2) per step, ours O(board)); with positional superko, ~3x and ~7x.
Superko costs a hash per candidate move and a binary search per candidate in the table of earlier
positions, about halving the rate.
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp

from jaxai.go.rules import Go


def ours_loop(game: Go, batch: int, steps: int, with_features: bool):
  """A jitted function (states, key) -> (states, checksum) running `steps` random-playout steps."""
  start = game.init()

  def one_step(states, key):
    legal = jax.vmap(game.legal_actions)(states)  # (B, A)
    action = jax.random.categorical(key, jnp.where(legal, 0.0, -jnp.inf))  # (B,)
    states = jax.vmap(game.step)(states, action)
    checksum = action.sum()
    if with_features:
      checksum += jax.vmap(game.features)(states)[..., 0].sum().astype(jnp.int32)
    states = jax.tree.map(lambda s, s0: jnp.where(_bcast(states.terminated, s), s0, s), states, start)
    return states, checksum

  @jax.jit
  def run(states, key):
    return jax.lax.scan(one_step, states, jax.random.split(key, steps))

  states = jax.tree.map(lambda x: jnp.broadcast_to(x, (batch,) + x.shape), start)
  return run, states


def pgx_loop(size: int, batch: int, steps: int):
  import pgx.go  # a development dependency (pip install pgx==2.6.0)
  env = pgx.go.Go(size=size)

  def one_step(states, key):
    action_key, reset_key = jax.random.split(key)
    action = jax.random.categorical(action_key, jnp.where(states.legal_action_mask, 0.0, -jnp.inf))
    states = jax.vmap(env.step)(states, action)
    fresh = jax.vmap(env.init)(jax.random.split(reset_key, batch))
    states = jax.tree.map(lambda s, s0: jnp.where(_bcast(states.terminated, s), s0, s), states, fresh)
    return states, action.sum()

  @jax.jit
  def run(states, key):
    return jax.lax.scan(one_step, states, jax.random.split(key, steps))

  return run, jax.vmap(env.init)(jax.random.split(jax.random.key(0), batch))


def _bcast(flag, like):
  return flag.reshape(flag.shape + (1,) * (like.ndim - flag.ndim))


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--size", type=int, default=9)
  parser.add_argument("--batch", type=int, default=1024, help="games stepped together (vmap)")
  parser.add_argument("--steps", type=int, default=200, help="steps per timed call (one lax.scan)")
  parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the median is reported")
  parser.add_argument("--no_pgx", action="store_true", help="time our engine only")
  args = parser.parse_args()

  engines = {
      "ours, superko (default)": ours_loop(Go(args.size), args.batch, args.steps, False),
      "ours, simple ko": ours_loop(Go(args.size, superko=False), args.batch, args.steps, False),
      "ours, pgx rule": ours_loop(Go(args.size, superko=False, repetition_loses=True), args.batch,
                                  args.steps, False),
      "ours, superko + planes": ours_loop(Go(args.size), args.batch, args.steps, True),
      "ours, pgx rule + planes": ours_loop(Go(args.size, superko=False, repetition_loses=True), args.batch,
                                           args.steps, True),
  }
  if not args.no_pgx:
    engines["pgx 2.6.0 env.step (mask + planes)"] = pgx_loop(args.size, args.batch, args.steps)

  states, rates = {}, {name: [] for name in engines}
  for name, (run, initial) in engines.items():
    start = time.perf_counter()
    states[name], _ = jax.block_until_ready(run(initial, jax.random.key(0)))
    print(f"compiled and ran {name} in {time.perf_counter() - start:.1f}s", flush=True)
  for round_ in range(args.repeats):
    for name, (run, _) in engines.items():
      start = time.perf_counter()
      states[name], _ = jax.block_until_ready(run(states[name], jax.random.key(round_ + 1)))
      rates[name].append(args.batch * args.steps / (time.perf_counter() - start))

  print(f"\n{args.size}x{args.size}, batch {args.batch}, {args.steps} steps per call, "
        f"median of {args.repeats} rounds, {jax.devices()[0].platform}:")
  reference = statistics.median(rates["pgx 2.6.0 env.step (mask + planes)"]) if not args.no_pgx else None
  for name, values in rates.items():
    rate = statistics.median(values)
    versus = f"  ({rate / reference:.1f}x pgx)" if reference else ""
    print(f"  {name:38s} {rate:12,.0f} steps/s{versus}")


if __name__ == "__main__":
  main()
