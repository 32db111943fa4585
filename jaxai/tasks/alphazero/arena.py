"""Evaluation matches played in JAX: a searching agent A against a uniform-random player or against
another set of parameters B, both colours, all games at once.

With G games, A is black in games [0, G/2) and white in [G/2, G). All games start together and
colours alternate every ply (passes included), so at each ply A is to move in one half and B in the
other: one search call, vmapped over the two halves with each half's mover's parameters, serves both
players (one compiled function for every kind of opponent).
"""
import jax
import jax.numpy as jnp

from jaxai.core.evaluators import Evaluator
from jaxai.go import rules


def random_moves(go: rules.Go, states: rules.State, rng) -> jax.Array:
  """A uniformly random legal move for each position (B, ...) -> (B,)."""
  legal = jax.vmap(go.legal_actions)(states)
  return jax.random.categorical(rng, jnp.where(legal, 0.0, -jnp.inf), axis=-1).astype(jnp.int32)


def make_match(go: rules.Go, search, num_games: int, num_simulations: int):
  """A pure `match(params_a, params_b, rng, b_random, explore) -> (G,)` A's result per game: 1 win,
  0.5 draw, 0 loss. With `b_random` True, B plays uniformly random legal moves (params_b is then
  unused). `explore` adds the search's self-play noise to both players' moves, so that games between
  two deterministic players differ; games last at most the rules' max_moves. `b_random` and
  `explore` may be traced: one compilation serves every kind of opponent."""
  if num_games < 2 or num_games % 2:
    raise ValueError(f"num_games={num_games} must be even and >= 2 (each colour plays half).")
  half = num_games // 2

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


def make_evaluator(config, go: rules.Go, search) -> Evaluator:
  """Win rates of the search (`eval_simulations`) against a uniform-random player (deterministic
  search) and against the previous evaluation's parameters (both sides keep the self-play noise:
  two deterministic players would replay the same two games), `eval_games` games each. Played on
  this process's first device with its copy of the parameters; rng fold_in(key(seed + 2), step)."""
  num_games = config.eval_games
  match = make_match(go, search, num_games, config.eval_simulations)

  def play(players, rng):  # players: {'params', 'previous'} -> (2, G) scores vs random, vs previous.
    opponents = {"params": jax.tree.map(lambda a, b: jnp.stack([a, b]), players["params"], players["previous"]),
                 "random": jnp.array([True, False]), "explore": jnp.array([False, True])}
    # lax.map: both matches run one compiled loop, one after the other, with the same rng.
    return jax.lax.map(lambda b: match(players["params"], b["params"], rng, b["random"], b["explore"]),
                       opponents)

  def finish(scores, step) -> dict:
    return {"eval/win_rate_vs_random": float(scores[0].mean()),
            "eval/win_rate_vs_previous": float(scores[1].mean()), "eval/games": float(num_games)}

  return Evaluator(play, finish=finish, placement="local", seed=config.seed + 2,
                   view=lambda state: {"params": state.params, "previous": state.extra["previous_params"]})
