"""Evaluation matches played in JAX: a searching agent A against a uniform-random player or against
another set of parameters B, both colours, all games at once.

With G games, A is black in games [0, G/2) and white in [G/2, G). All games start together and
colours alternate every ply (passes included), so at each ply A is to move in one half and B in the
other: one search call, vmapped over the two halves with each half's mover's parameters, serves both
players (one compiled function for every kind of opponent).
"""
import jax
import jax.numpy as jnp

from jaxai.go import rules


def random_moves(go: rules.Go, states: rules.State, rng) -> jax.Array:
  """A uniformly random legal move for each position (B, ...) -> (B,)."""
  legal = jax.vmap(go.legal_actions)(states)
  return jax.random.categorical(rng, jnp.where(legal, 0.0, -jnp.inf), axis=-1).astype(jnp.int32)


def make_match(go: rules.Go, search, num_games: int, num_simulations: int):
  """Jitted `match(params_a, params_b, rng, b_random, explore) -> (G,)` A's result per game: 1 win,
  0.5 draw, 0 loss. With `b_random` True, B plays uniformly random legal moves (params_b is then
  unused). `explore` adds the search's self-play noise to both players' moves, so that games between
  two deterministic players differ; games last at most the rules' max_moves."""
  if num_games < 2 or num_games % 2:
    raise ValueError(f"num_games={num_games} must be even and >= 2 (each colour plays half).")
  half = num_games // 2

  @jax.jit
  def match(params_a, params_b, rng, b_random, explore):
    def agent(params, states, rng):
      return search(params, rng, states, num_simulations, explore=explore).action

    def ply(loop):
      states, t, rng = loop
      rng, search_rng, random_rng = jax.random.split(rng, 3)
      a_first = t % 2 == 0  # black moves at even plies, and A is black in the first half.
      movers = jax.tree.map(lambda a, b: jnp.stack([jnp.where(a_first, a, b), jnp.where(a_first, b, a)]),
                            params_a, params_b)                         # leaves (2, ...)
      halves = jax.tree.map(lambda x: x.reshape((2, half) + x.shape[1:]), states)
      actions = jax.vmap(agent)(movers, halves, jax.random.split(search_rng, 2))  # (2, half)
      b_moves = jnp.stack([~a_first, a_first])[:, None]                 # (2, 1) halves where B moves
      random = random_moves(go, states, random_rng).reshape(2, half)
      actions = jnp.where(b_random & b_moves, random, actions).reshape(num_games)
      return jax.vmap(go.step)(states, actions), t + 1, rng

    init = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_games,) + x.shape), go.init())
    states, _, _ = jax.lax.while_loop(
        lambda loop: ~jnp.all(loop[0].terminated), ply, (init, jnp.zeros((), jnp.int32), rng))
    colour = jnp.concatenate([jnp.ones(half), -jnp.ones(half)])
    return (jax.vmap(go.winner)(states) * colour + 1) / 2

  return match

