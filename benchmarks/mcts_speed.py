"""Search speed: simulations/s of jaxai.mcts against mctx 0.0.71 (the reference) with the same network.

  python benchmarks/mcts_speed.py                       # batch 64, 82 actions (9x9 Go), 64 simulations
  python benchmarks/mcts_speed.py --num_simulations=16 --repeats=3

Network: a small MuZero-style MLP in Flax (embedding 64; dynamics Dense 128 -> Dense 64 on the embedding
and a one-hot action; prediction Dense 128 -> policy (A) logits, value, reward), random weights, two-player
discount -1. Both libraries run the same recurrent_fn and root for each policy (muzero_policy with Dirichlet
noise, gumbel_muzero_policy with 16 considered actions), each jitted once, on the same machine. Rounds
alternate between the libraries; each round times --calls searches (fresh keys) after a warm-up and the
figure is the median over rounds. simulations/s = batch * num_simulations * calls / seconds.

Measured on 2 CPU cores shared with other jobs (load average ~10; jax 0.10.2, CPU backend), batch 64,
82 actions, 64 simulations, default arguments (medians of 5 rounds of 5 searches; single rounds vary 2-3x):
  muzero_policy         jaxai.mcts  21,061 sims/s (195 ms/search)   mctx 3,432 sims/s (1,193 ms)   ratio 6.1
  gumbel_muzero_policy  jaxai.mcts 186,751 sims/s ( 22 ms/search)   mctx 71,444 sims/s (57 ms)     ratio 2.6
  (another run: ratios 6.5 and 2.9). Compile + first call: 10-20 s for either library under that load.
Both produce the same trees on the same inputs (tests/mcts/test_against_mctx.py), so the difference is
only in how the loops run:
  - backward: mctx vmaps a while_loop whose carry is the whole tree, so under vmap every step of every
    backup selects over all (B, N, A) arrays; here the loop runs over the batch with scatters whose
    finished games write out of bounds (dropped): B element updates per step.
  - PUCT tie-break: mctx splits a key and draws A uniforms per game at every step of every walk; here the
    walk runs without the jitter and is redone with it only if it met a near tie (never, on this network).
The random-weight network makes PUCT trees deep (max depth ~25-30), which is why muzero_policy is the
slower of the two and gains most; Gumbel trees stay 2-5 deep.
"""
import argparse
import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import mctx

import jaxai.mcts


class Prediction(nn.Module):
  num_actions: int
  hidden: int = 128

  @nn.compact
  def __call__(self, embedding):  # (B, E) -> logits (B, A), value (B,), reward (B,)
    x = nn.relu(nn.Dense(self.hidden)(embedding))
    return nn.Dense(self.num_actions)(x), jnp.tanh(nn.Dense(1)(x)[:, 0]), nn.Dense(1)(x)[:, 0]


class Dynamics(nn.Module):
  embed: int = 64
  hidden: int = 128

  @nn.compact
  def __call__(self, embedding, action_one_hot):  # (B, E), (B, A) -> (B, E)
    x = nn.relu(nn.Dense(self.hidden)(jnp.concatenate([embedding, action_one_hot], -1)))
    return jnp.tanh(nn.Dense(self.embed)(x))


def make_model(num_actions: int, embed: int, batch_size: int, seed: int = 0):
  """(params, root arrays (logits, value, embedding), recurrent_fn factory taking the output class)."""
  prediction, dynamics = Prediction(num_actions), Dynamics(embed)
  keys = jax.random.split(jax.random.key(seed), 3)
  embedding = jax.random.normal(keys[0], (batch_size, embed))
  params = {"prediction": prediction.init(keys[1], embedding),
            "dynamics": dynamics.init(keys[2], embedding, jnp.zeros((batch_size, num_actions)))}
  logits, value, _ = prediction.apply(params["prediction"], embedding)

  def recurrent_fn_for(output_cls):
    def recurrent_fn(params, rng, action, embedding):
      del rng
      embedding = dynamics.apply(params["dynamics"], embedding, jax.nn.one_hot(action, num_actions))
      logits, value, reward = prediction.apply(params["prediction"], embedding)
      discount = jnp.full_like(value, -1.0)
      return output_cls(reward=reward, discount=discount, prior_logits=logits, value=value), embedding
    return recurrent_fn

  return params, (logits, value, embedding), recurrent_fn_for


def make_search(library, policy_name, params, root_arrays, recurrent_fn_for, num_simulations):
  logits, value, embedding = root_arrays
  recurrent_fn = recurrent_fn_for(library.RecurrentFnOutput)
  options = {"gumbel_muzero_policy": {"max_num_considered_actions": 16}}.get(policy_name, {})

  @jax.jit
  def search(rng):
    root = library.RootFnOutput(prior_logits=logits, value=value, embedding=embedding)
    out = getattr(library, policy_name)(params, rng, root, recurrent_fn, num_simulations, **options)
    return out.action, out.action_weights

  return search


def time_calls(search, calls: int, first_key: int) -> float:
  start = time.perf_counter()
  for i in range(calls):
    jax.block_until_ready(search(jax.random.key(first_key + i)))
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--num_actions", type=int, default=82)
  parser.add_argument("--num_simulations", type=int, default=64)
  parser.add_argument("--embed", type=int, default=64)
  parser.add_argument("--calls", type=int, default=5, help="searches timed per round")
  parser.add_argument("--repeats", type=int, default=5, help="rounds per library (alternating)")
  args = parser.parse_args()

  params, root_arrays, recurrent_fn_for = make_model(args.num_actions, args.embed, args.batch_size)
  sims_per_call = args.batch_size * args.num_simulations
  print(f"batch {args.batch_size}, {args.num_actions} actions, {args.num_simulations} simulations, "
        f"{jax.device_count()} {jax.default_backend()} device(s)")
  for policy_name in ("muzero_policy", "gumbel_muzero_policy"):
    searches = {name: make_search(library, policy_name, params, root_arrays, recurrent_fn_for,
                                  args.num_simulations)
                for name, library in (("jaxai.mcts", jaxai.mcts), ("mctx", mctx))}
    compile_seconds = {}
    for name, search in searches.items():
      start = time.perf_counter()
      jax.block_until_ready(search(jax.random.key(0)))  # compile + first run
      compile_seconds[name] = time.perf_counter() - start
    rates = {name: [] for name in searches}
    for round_index in range(args.repeats):
      order = list(searches) if round_index % 2 == 0 else list(searches)[::-1]
      for name in order:
        seconds = time_calls(searches[name], args.calls, first_key=1 + round_index * args.calls)
        rates[name].append(sims_per_call * args.calls / seconds)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, rate in medians.items():
      print(f"  {policy_name:22s} {name:11s} {rate:10,.0f} simulations/s  "
            f"({1e3 * sims_per_call / rate:7.1f} ms per search; compile+first {compile_seconds[name]:.1f} s; "
            f"rounds {', '.join(f'{r:,.0f}' for r in rates[name])})")
    print(f"  {policy_name:22s} speed ratio jaxai.mcts / mctx = {medians['jaxai.mcts'] / medians['mctx']:.2f}")


if __name__ == "__main__":
  main()
