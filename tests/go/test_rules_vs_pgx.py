"""Differential test of jaxai.go.rules against pgx 2.6.0's Go (`pgx.go.Go`), the reference, on 9x9.

Hundreds of random games are played in lockstep by both engines (one batch, `vmap` + a jitted
`lax.scan` over moves); each move is drawn uniformly from our legal moves, pass included. At every step
of every game still running, the engines must agree on the legal-move mask, the board (so every
capture), the capture counts, whether the game is over, the area score (black - white - komi) and the
input planes; at the end, on the winner.

Rules compared. pgx: simple ko in its legal mask, and a stone placement that repeats an earlier
position (positional superko) is allowed but ends the game, lost by its player; a game ends after two
consecutive passes or 2 * 9 * 9 = 162 moves (passes included); area scoring (stones + empty regions
reaching only one colour; pgx also credits an empty region reaching no stone to both players, which
leaves black - white unchanged), komi 7.5, a draw counting as a white win (impossible with komi 7.5).
Ours is configured to match: `Go(9, komi=7.5, superko=False, repetition_loses=True)` (our default,
`superko=True`, masks superko-violating moves instead). pgx indexes points row-major like us; its
observation planes are ours except that its last plane is 1 when *white* is to move (ours: black).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

pgx_go = pytest.importorskip("pgx.go", reason="pgx (a dev dependency: pip install pgx==2.6.0)")
pgx_game = pytest.importorskip("pgx._src.games.go")

from jaxai.go.rules import Go  # noqa: E402

SIZE, KOMI = 9, 7.5
NUM_GAMES = 512  # seed 0: ~120 moves, ~40 captures a game; ~80% end by passes, ~16% by length
NUM_STEPS = 2 * SIZE * SIZE + 1  # one more than the longest game: the last step only checks stillness
SCORE_EVERY = 8  # moves between whole-batch score comparisons (plus the start and the final positions)

CHECKS = ("legal", "board", "captures", "terminated", "score", "features", "winner")


def play(num_games, num_steps, seed):
  """Random games in both engines; per step, how many live games disagree on each check, and statistics."""
  ours = Go(SIZE, komi=KOMI, superko=False, repetition_loses=True)
  ref = pgx_go.Go(size=SIZE, komi=KOMI)

  def ref_scores(state):  # black - white - komi from pgx's area count (b, w)
    areas = pgx_game._count_scores(state._x, SIZE)
    return (areas[0] - areas[1]).astype(jnp.float32) - KOMI

  def ref_winner(state):  # +1 black, -1 white, 0 game not over; colour rewards are (black, white)
    rewards = ref._game.rewards(state._x)
    return jnp.sign(rewards[0]).astype(jnp.int8)

  def compare(mine_before, mine, theirs_before, theirs):
    """Per game: True where the engines disagree after a move (the `before` states are the move's inputs)."""
    obs = theirs.observation.astype(jnp.float32)
    obs = obs.at[..., -1].set(1.0 - obs[..., -1])  # pgx: white-to-move plane; ours: black-to-move plane
    live = ~mine.terminated
    # Stones the move removed. (pgx's own capture counter counts a group twice when the move touches it
    # from two sides, so the count is taken from its boards.)
    opponent = -mine_before.to_play
    ref_captured = ((jnp.sign(theirs_before._x.board) == opponent).sum()
                    - (jnp.sign(theirs._x.board) == opponent).sum())
    return {
        "legal": live & (ours.legal_actions(mine) != theirs.legal_action_mask).any(),
        "board": (mine.board != jnp.sign(theirs._x.board)).any(),
        "captures": ~mine_before.terminated & ((mine.captures - mine_before.captures).sum() != ref_captured),
        "terminated": mine.terminated != theirs.terminated,
        "features": live & (ours.features(mine) != obs).any(),
        "winner": mine.terminated & (ours.winner(mine) != ref_winner(theirs)),
    }

  def compare_scores(mine, theirs):  # (B,) bool
    return jax.vmap(ours.score)(mine) != jax.vmap(ref_scores)(theirs)

  def stats(before, after, action):
    placed = ~before.terminated & (action != ours.pass_action)
    return {
        "moves": (~before.terminated).astype(jnp.int32),
        "captures": jnp.where(placed, (after.captures - before.captures).sum(), 0),
        "ko_points": (after.ko_point >= 0).astype(jnp.int32) * ~after.terminated,
        "ended_by_passes": (after.terminated & ~before.terminated & (after.passes >= 2)).astype(jnp.int32),
        "ended_by_repetition": (after.terminated & ~before.terminated & (after.repeated_by != 0)).astype(jnp.int32),
        "ended_by_length": (after.terminated & ~before.terminated & (after.num_moves >= ours.max_moves)
                            & (after.passes < 2) & (after.repeated_by == 0)).astype(jnp.int32),
    }

  def body(carry, inputs):
    mine, theirs = carry
    index, key = inputs
    legal = jax.vmap(ours.legal_actions)(mine)  # (B, A)
    action = jax.random.categorical(key, jnp.where(legal, 0.0, -jnp.inf))  # (B,)
    action = jnp.where(mine.terminated, ours.pass_action, action)  # finished games: ignored by both engines
    new_mine = jax.vmap(ours.step)(mine, action)
    new_theirs = jax.vmap(ref.step)(theirs, action)
    mismatch = jax.vmap(compare)(mine, new_mine, theirs, new_theirs)
    # Scores (a flood fill in both engines) every SCORE_EVERY moves, and on the final positions below.
    mismatch["score"] = jax.lax.cond(index % SCORE_EVERY == 0, compare_scores, lambda *_: jnp.zeros_like(
        mismatch["board"]), new_mine, new_theirs)
    counts = {k: v.sum(dtype=jnp.int32) for k, v in mismatch.items()}
    step_stats = {k: v.sum(dtype=jnp.int32) for k, v in jax.vmap(stats)(mine, new_mine, action).items()}
    return (new_mine, new_theirs), (counts, step_stats)

  @jax.jit
  def run(mine, theirs, play_key):  # start states are arguments, not constants XLA would try to fold
    initial = jax.vmap(compare)(mine, mine, theirs, theirs)
    initial["score"] = compare_scores(mine, theirs)
    (mine, theirs), (counts, step_stats) = jax.lax.scan(
        body, (mine, theirs), (jnp.arange(num_steps), jax.random.split(play_key, num_steps)))
    final_scores = compare_scores(mine, theirs).sum()
    return initial, counts, final_scores, step_stats, mine.terminated

  init_key, play_key = jax.random.split(jax.random.key(seed))
  mine = jax.vmap(lambda _: ours.init())(jnp.arange(num_games))
  theirs = jax.vmap(ref.init)(jax.random.split(init_key, num_games))
  initial, counts, final_scores, step_stats, finished = jax.device_get(run(mine, theirs, play_key))
  return initial, counts, int(final_scores), {k: int(v.sum()) for k, v in step_stats.items()}, finished


def test_random_games_agree_with_pgx_at_every_step():
  initial, counts, final_scores, stats, finished = play(NUM_GAMES, NUM_STEPS, seed=0)
  assert final_scores == 0, f"final scores differ from pgx in {final_scores} games"
  for name in CHECKS:
    assert not np.asarray(initial[name]).any(), f"start position: {name} differs from pgx"
    per_step = np.asarray(counts[name])
    bad = np.nonzero(per_step)[0]
    assert bad.size == 0, (f"{name} differs from pgx in {per_step.sum()} game-steps, first at move "
                           f"{bad[0] + 1 if bad.size else 0} ({per_step[bad[:5]]} games)")
  assert finished.all(), "every game ends within 2 * 9 * 9 moves"
  # The games exercise what is being compared.
  assert stats["moves"] > 80 * NUM_GAMES, stats
  assert stats["captures"] > 10 * NUM_GAMES, stats
  assert stats["ko_points"] > NUM_GAMES // 10, stats
  assert stats["ended_by_passes"] > 0 and stats["ended_by_length"] > 0, stats
  print(f"\n{NUM_GAMES} games, {stats['moves']} moves agree with pgx: {stats}")
