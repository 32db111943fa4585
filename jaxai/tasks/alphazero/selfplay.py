"""Self-play in JAX: all games step together (`vmap`), `lax.scan` over a segment of moves.

Each collect plays `moves_per_collect` moves in every one of the `num_games` games; a game that
ends restarts at once, so every collect has the same shapes.

Value targets are final outcomes, so a position can only be emitted once its game has ended. The
carry keeps every position in a ring of `max_moves` slots per game: the move played at ply t writes
slot t mod max_moves, and reads out what that slot held, the position written `max_moves` plies
earlier. A game lasts at most `max_moves` plies, so that position's game has ended and its outcome
has been filled in (when a game ends, every ring entry of that game gets the outcome from its side
to move's perspective). Nothing is lost or masked except the first `max_moves` plies after the
carry starts (the ring is still empty: those rows have `valid` = False). The price is a delay of
`max_moves` plies between playing a position and training on it.
"""
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from jaxai.core.metrics import Ratio
from jaxai.go import rules

PLANES_DTYPE = jnp.int8  # feature planes are 0/1 (and +-1 colour) values: stored exactly in int8.


@flax.struct.dataclass
class Ring:
  """Positions waiting for their game's outcome. Leaves (G, L, ...): G games, L = max_moves slots."""
  planes: jax.Array    # (G, L, size, size, C) int8 network input of the position.
  policy: jax.Array    # (G, L, A) float32 search policy (the policy target).
  legal: jax.Array     # (G, L, A) bool legal moves of the position.
  to_play: jax.Array   # (G, L) int8 side to move (1 black, -1 white).
  game: jax.Array      # (G, L) int32 which game of this slot the position belongs to.
  value: jax.Array     # (G, L) float32 outcome for the side to move: 1 win, -1 loss, 0 draw.
  done: jax.Array      # (G, L) bool the outcome is known (so `value` is the target).


@flax.struct.dataclass
class Carry:
  games: Any           # rules.State with leaves (G, ...): the current positions.
  game: jax.Array      # (G,) int32 games started in each slot.
  ring: Ring
  ply: jax.Array       # (G,) int32 plies played since the carry started (ring slot = ply % L; the
                       # same in every game, kept per game so that every leaf leads with G).


def init_carry(go: rules.Go, num_games: int) -> Carry:
  init = go.init()
  games = jax.tree.map(lambda x: jnp.broadcast_to(x, (num_games,) + x.shape), init)
  length = go.max_moves
  planes = go.features(init)
  ring = Ring(
      planes=jnp.zeros((num_games, length) + planes.shape, PLANES_DTYPE),
      policy=jnp.zeros((num_games, length, go.num_actions), jnp.float32),
      legal=jnp.zeros((num_games, length, go.num_actions), bool),
      to_play=jnp.zeros((num_games, length), jnp.int8),
      game=jnp.full((num_games, length), -1, jnp.int32),
      value=jnp.zeros((num_games, length), jnp.float32),
      done=jnp.zeros((num_games, length), bool))
  return Carry(games=games, game=jnp.zeros((num_games,), jnp.int32), ring=ring,
               ply=jnp.zeros((num_games,), jnp.int32))


def make_collect(go: rules.Go, search, num_simulations: int, moves: int):
  """`collect(params, carry, rng) -> (carry, rows, metrics)`; rows have leaves (G, moves, ...):
  planes, policy, legal, value, valid (see `Ring`)."""

  def one_move(params, carry: Carry, rng):
    games, ring = carry.games, carry.ring
    out = search(params, rng, games, num_simulations, explore=True)
    rows = jnp.arange(carry.ply.shape[0])
    slot = carry.ply % go.max_moves                                    # (G,)
    read = lambda x: x[rows, slot]
    row = {"planes": read(ring.planes), "policy": read(ring.policy), "legal": read(ring.legal),
           "value": read(ring.value), "valid": read(ring.done)}
    legal = jax.vmap(go.legal_actions)(games)
    write = lambda buf, x: buf.at[rows, slot].set(x.astype(buf.dtype))
    ring = ring.replace(
        planes=write(ring.planes, jax.vmap(go.features)(games)), policy=write(ring.policy, out.action_weights),
        legal=write(ring.legal, legal), to_play=write(ring.to_play, games.to_play),
        game=write(ring.game, carry.game), done=write(ring.done, jnp.zeros_like(carry.game, bool)))

    games = jax.vmap(go.step)(games, out.action)
    ended = games.terminated                                           # (G,)
    winner = jax.vmap(go.winner)(games)                                # (G,) int8
    mine = ended[:, None] & (ring.game == carry.game[:, None])         # (G, L) this game's entries.
    outcome = (winner[:, None] * ring.to_play).astype(jnp.float32)
    ring = ring.replace(value=jnp.where(mine, outcome, ring.value), done=ring.done | mine)

    length = games.num_moves
    reset = lambda new, old: jnp.where(ended.reshape((-1,) + (1,) * (old.ndim - 1)), new, old)
    games = jax.tree.map(lambda i, g: reset(jnp.broadcast_to(i, g.shape), g), go.init(), games)
    stats = {"ended": ended, "length": jnp.where(ended, length, 0), "black_won": ended & (winner == 1)}
    return Carry(games=games, game=carry.game + ended, ring=ring, ply=carry.ply + 1), (row, stats)

  def collect(params, carry: Carry, rng):
    carry, (rows, stats) = jax.lax.scan(
        lambda c, r: one_move(params, c, r), carry, jax.random.split(rng, moves))
    rows = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), rows)  # (moves, G, ...) -> (G, moves, ...)
    finished = jnp.sum(stats["ended"]).astype(jnp.float32)
    metrics = {
        "selfplay/games": finished,
        "selfplay/game_length": Ratio(jnp.sum(stats["length"]).astype(jnp.float32), finished),
        "selfplay/black_win_rate": Ratio(jnp.sum(stats["black_won"]).astype(jnp.float32), finished),
        "selfplay/valid_positions": jnp.mean(rows["valid"].astype(jnp.float32)),
    }
    return carry, rows, metrics

  return collect
