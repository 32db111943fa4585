"""Hand-written positions for jaxai.go.rules: captures, suicide, ko and superko, seki, scoring, game end.

Boards are ASCII diagrams read by `Go.from_board` ('X' black, 'O' white, '.' empty, top row first);
moves are GTP vertices (column letters skip 'I', row 1 at the bottom).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.go import rules
from jaxai.go.rules import Go, action_to_gtp, gtp_to_action


def legal_moves(game, state):
  mask = np.asarray(game.legal_actions(state))
  return {action_to_gtp(a, game.size) for a in np.nonzero(mask)[0]}


def play(game, state, *moves):
  """Plays GTP moves in turn, each required to be legal."""
  for move in moves:
    action = gtp_to_action(move, game.size)
    assert game.legal_actions(state)[action], f"{move} should be legal:\n{game.to_string(state)}"
    state = game.step(state, action)
  return state


def board_of(game, text):
  return np.asarray(game.from_board(text).board)


GO9 = Go(9, komi=0.5)
GO9_SIMPLE_KO = Go(9, komi=0.5, superko=False)
GO9_REPETITION_LOSES = Go(9, komi=0.5, superko=False, repetition_loses=True)
GO7 = Go(7, komi=0.5)
GO5 = Go(5)
GO5_SIMPLE_KO = Go(5, superko=False)


# ------------------------------------------------------------------------------------------- construction

def test_sizes_and_shapes():
  for size in (5, 13, 19):
    game = Go(size, history_length=4)
    assert (game.num_actions, game.pass_action, game.feature_shape) == (size * size + 1, size * size,
                                                                        (size, size, 9))
    assert game.max_moves == 2 * size * size
  for size in (4, 20, 9.0):
    with pytest.raises(ValueError, match="5..19"):
      Go(size)
  with pytest.raises(ValueError, match="superko=False"):
    Go(9, repetition_loses=True)


def test_gtp_coordinates():
  assert [action_to_gtp(a, 9) for a in (0, 8, 72, 80, 81)] == ["A9", "J9", "A1", "J1", "pass"]
  assert gtp_to_action("e5", 9) == 40 and gtp_to_action(" PASS ", 19) == 361 and gtp_to_action("T19", 19) == 18
  for size in (5, 19):
    assert all(gtp_to_action(action_to_gtp(a, size), size) == a for a in range(size * size + 1))
  for bad in ("I5", "Z1", "K1", "A10", "A0", "", "5", "resign", "A-1"):
    with pytest.raises(ValueError):
      gtp_to_action(bad, 9)


def test_from_board_to_string_round_trip_and_errors():
  state = play(GO9, GO9.init(), "C3", "D4", "pass", "J9")
  again = GO9.from_board(GO9.to_string(state), to_play=state.to_play)
  np.testing.assert_array_equal(again.board, state.board)
  np.testing.assert_array_equal(again.labels == again.labels[gtp_to_action("C3", 9)],
                                state.labels == state.labels[gtp_to_action("C3", 9)])
  with pytest.raises(ValueError, match="no liberty"):
    GO5.from_board("X O . . .\nO . . . .\n. . . . .\n. . . . .\n. . . . .")
  with pytest.raises(ValueError, match="rows"):
    GO5.from_board("X . . . .\n. . . . .")
  with pytest.raises(ValueError, match="shape"):
    GO5.from_board(np.zeros((6, 6)))


# ------------------------------------------------------------------------------------------------ captures

def test_single_captures_in_the_corner_on_the_edge_and_in_the_centre():
  state = GO9.from_board("""
      O X . . . . . . .
      . . . . . . . . .
      . . . . X . . . .
      . . . X O X . . .
      . . . . . . . . .
      . . . . . . . . .
      . . . . . . . . .
      . . . . . . . . .
      X O X . . . . . .""")
  state = play(GO9, state, "A8", "pass", "B2", "pass", "E5")
  np.testing.assert_array_equal(state.board, board_of(GO9, """
      . X . . . . . . .
      X . . . . . . . .
      . . . . X . . . .
      . . . X . X . . .
      . . . . X . . . .
      . . . . . . . . .
      . . . . . . . . .
      . X . . . . . . .
      X . X . . . . . ."""))
  assert state.captures.tolist() == [3, 0]


def test_multi_stone_capture_and_two_groups_at_once():
  state = GO9.from_board("""
      . . . . . . . . .
      . X X X . . . . .
      X O O O X . . . .
      . X X . X . . . .
      . . X O X . . . .
      . . . X . . . . .
      . . . . . . . . .
      . . . . . . . . .
      . . . . . . . . .""")
  # D6 takes away the last liberty of the three-stone string and of the lone stone below it.
  state = play(GO9, state, "D6")
  assert state.captures.tolist() == [4, 0]
  assert (np.asarray(state.board) == -1).sum() == 0
  for vertex in ("B7", "C7", "D7", "D5"):
    assert state.board[gtp_to_action(vertex, 9)] == 0


def test_suicide_is_illegal_unless_it_captures():
  state = GO9.from_board("""
      . X . . . . . . .
      X . . . . . . . .
      . . . . . . . . .
      . . . . O O O . .
      . . . O X X . O .
      . . . . O O O . .
      . . . . . . . . .
      . . . . . . . . .
      . . . . . . . . .""", to_play="w")
  legal = legal_moves(GO9, state)
  assert "A9" not in legal                # single-stone suicide in black's corner eye
  assert {"B8", "G5", "pass"} <= legal
  # Black filling its own string's last liberty is a multi-stone suicide; white capturing there is fine.
  state = play(GO9, state, "pass")
  assert "G5" not in legal_moves(GO9, state)
  state = play(GO9, state, "J1", "G5")
  assert state.captures.tolist() == [0, 2]
  # A move that would have no liberty but captures is legal.
  state = GO9.from_board("""
      . O X . . . . . .
      O X . . . . . . .
      X . . . . . . . .
      . . . . . . . . .
      . . . . . . . . .
      . . . . . . . . .
      . . . . . . . . .
      . . . . . . . . .
      . . . . . . . . .""")
  state = play(GO9, state, "A9")
  assert state.captures.tolist() == [2, 0]


# ------------------------------------------------------------------------------------------------------ ko

KO = """
    . . . . . . . . .
    . . X O . . . . .
    . X O . O . . . .
    . . X O . . . . .
    . . . . . . . . .
    . . . . . . . . .
    . . . . . . . . .
    . . . . . . . . .
    . . . . . . . . ."""


@pytest.mark.parametrize("game", [GO9, GO9_SIMPLE_KO], ids=["superko", "simple_ko"])
def test_ko_forbids_the_immediate_recapture_only(game):
  state = play(game, game.from_board(KO), "D7")  # black takes the white stone at C7
  assert state.captures.tolist() == [1, 0]
  assert "C7" not in legal_moves(game, state)
  state = play(game, state, "G3", "G7")  # a threat and its answer lift the ban
  state = play(game, state, "C7")
  assert state.captures.tolist() == [1, 1]
  assert "D7" not in legal_moves(game, state)


@pytest.mark.parametrize("superko", [True, False])
def test_snapback_is_not_ko(superko):
  game = GO5 if superko else GO5_SIMPLE_KO
  state = game.from_board("""
      . . X O .
      X X X O .
      O O O . .
      . . . . .
      . . . . .""", to_play="w")
  # White throws in at B5; black takes it at A5 and is left with one liberty, B5, where white
  # immediately takes the five black stones (not a ko: more than one stone).
  state = play(game, state, "B5", "A5")
  assert state.captures.tolist() == [1, 0]
  state = play(game, state, "B5")
  assert state.captures.tolist() == [1, 5]
  assert (np.asarray(state.board) == 1).sum() == 0


# Three kos: each alternately taken by black and white; 6 captures bring the whole board back.
TRIPLE_KO = """
    . X O . . . X O .
    X O . O . X . X O
    . X O . . . X O .
    . . . . . . . . .
    . . . . . . . . .
    . X O . . . . . .
    X O . O . . . . .
    . X O . . . . . .
    . . . . . . . . ."""
TRIPLE_KO_CYCLE = ("C8", "G8", "C3", "B8", "H8")  # then white's B3 recreates the start


def test_triple_ko_positional_superko_forbids_the_repetition():
  start = GO9.from_board(TRIPLE_KO)
  state = play(GO9, start, *TRIPLE_KO_CYCLE)
  assert state.captures.tolist() == [3, 2]
  assert "B3" not in legal_moves(GO9, state)  # would recreate the start position
  assert len(legal_moves(GO9, state)) > 50


def test_triple_ko_simple_ko_allows_the_cycle():
  start = GO9_SIMPLE_KO.from_board(TRIPLE_KO)
  state = play(GO9_SIMPLE_KO, start, *TRIPLE_KO_CYCLE, "B3")
  np.testing.assert_array_equal(state.board, start.board)
  assert not state.terminated
  state = play(GO9_SIMPLE_KO, state, *TRIPLE_KO_CYCLE, "B3")  # and again
  np.testing.assert_array_equal(state.board, start.board)


def test_triple_ko_repetition_loses():
  game = GO9_REPETITION_LOSES
  state = play(game, game.from_board(TRIPLE_KO), *TRIPLE_KO_CYCLE)
  assert not state.terminated
  state = play(game, state, "B3")
  assert state.terminated and int(state.repeated_by) == -1
  assert int(game.winner(state)) == 1  # white repeated the position: black wins whatever the score
  assert float(game.score(state)) == 12 - 14 - 0.5  # the start position: white ahead on the board


# --------------------------------------------------------------------------------------- seki and scoring

# Inner white string (column C) and inner black string (columns D-E) share the liberties D7 and D1, and
# have no other; the outer walls live with three eyes each. Whoever fills a shared liberty is captured.
SEKI = """
    X X O . X O O
    . X O X X O .
    X X O X X O O
    . X O X X O .
    X X O X X O O
    . X O X X O .
    X X O . X O O"""


def test_seki_shared_liberties_are_neutral_and_filling_them_loses_the_string():
  game = GO7
  state = game.from_board(SEKI)
  # Area: black 23 stones + 3 eyes, white 18 stones + 3 eyes, D7 and D1 count for nobody.
  assert float(game.score(state)) == 26 - 21 - 0.5
  assert int(game.winner(state)) == 1
  legal = legal_moves(game, state)
  assert {"D7", "D1", "A6", "pass"} <= legal and "G6" not in legal  # own eye legal, opponent's eye suicide
  state = play(game, state, "D7", "D1")  # black self-ataris; white captures 13 black stones
  assert state.captures.tolist() == [0, 13]
  # Black: 11 stones + 3 eyes; white: 19 stones + 3 eyes + the 13 points freed.
  assert float(game.score(state)) == 14 - 35 - 0.5


def test_area_score_and_komi():
  text = """
      . X . O .
      X X . O O
      . X . O .
      X X O O O
      . X O . O"""
  # Black: 7 stones + 3 eyes = 10; white: 9 stones + 3 empty points = 12; column C's 3 empty are dame.
  for komi, expected, winner in ((0.0, -2.0, -1), (-2.0, 0.0, 0), (-6.5, 4.5, 1)):
    game = Go(5, komi=komi)
    state = game.from_board(text)
    assert float(game.score(state)) == expected and int(game.winner(state)) == winner
  game = Go(5, komi=7.5)
  assert float(game.score(game.init())) == -7.5  # empty board: no point reaches a stone
  assert float(game.score(game.from_board(np.eye(1, 25, 12)[0]))) == 25 - 7.5  # one stone owns the board


# --------------------------------------------------------------------------------------------- game end

def test_two_passes_end_the_game_and_a_move_resets_the_count():
  game = GO9
  state = play(game, game.init(), "pass", "E5", "pass")
  assert not state.terminated and int(state.passes) == 1
  state = play(game, state, "pass")
  assert state.terminated and int(state.num_moves) == 4
  assert not np.asarray(game.legal_actions(state)).any()  # no legal action once over
  after = game.step(state, gtp_to_action("A1", 9))  # stepping a finished game changes nothing
  jax.tree.map(np.testing.assert_array_equal, after, state)


def test_max_moves_ends_the_game():
  game = Go(5, max_moves=3)
  state = play(game, game.init(), "A1", "B2")
  assert not state.terminated
  state = play(game, state, "C3")
  assert state.terminated and int(state.num_moves) == 3


# --------------------------------------------------------------------------------- features and batching

def test_features_history_and_side_to_move():
  game = Go(5, history_length=2)
  state = play(game, game.init(), "A5", "E1")  # black at (row 0, col 0), white at (row 4, col 4)
  planes = np.asarray(game.features(state))  # black to move
  assert planes.shape == (5, 5, 5)
  assert planes[0, 0, 0] == 1 and planes[4, 4, 1] == 1 and planes[..., :2].sum() == 2  # now: mine, theirs
  assert planes[0, 0, 2] == 1 and planes[..., 2:4].sum() == 1  # one move ago: black's stone only
  assert (planes[..., 4] == 1).all()  # black to move
  state = play(game, state, "C3")
  planes = np.asarray(game.features(state))  # white to move
  assert planes[4, 4, 0] == 1 and planes[0, 0, 1] == 1 and planes[2, 2, 1] == 1 and planes[..., :2].sum() == 3
  assert planes[2, 2, 3] == 0 and planes[..., 2:4].sum() == 2
  assert (planes[..., 4] == 0).all()


def test_vmap_matches_single_games_and_compiles_once():
  game = GO7
  traces = []

  def batch_step(states, actions):
    traces.append(1)
    states = jax.vmap(game.step)(states, actions)
    return states, jax.vmap(game.legal_actions)(states)

  batch_step = jax.jit(batch_step)
  moves = [["D4", "C3", "pass"], ["A1", "G7", "B2"], ["pass", "pass", "A1"]]  # (game, move)
  states = jax.vmap(lambda _: game.init())(jnp.arange(3))
  for t in range(3):
    actions = jnp.array([gtp_to_action(m[t], 7) for m in moves])
    states, masks = batch_step(states, actions)
  assert len(traces) == 1
  for i, game_moves in enumerate(moves):
    single = play(game, game.init(), *[m for m in game_moves if not (i == 2 and m == "A1")])
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(lambda x: x[i], states), single)
    np.testing.assert_array_equal(masks[i], game.legal_actions(single))


def test_superko_counts_a_group_captured_from_two_sides_once():
  """The position after C3 (taking three white stones that touch C3 from two sides) was seen before."""
  before = GO5.from_board("""
      . X X . .
      X O O X .
      X O . X .
      . X X . .
      . . . . .""")
  after = GO5.step(before, gtp_to_action("C3", 5))
  assert after.captures.tolist() == [3, 0]
  assert "C3" in legal_moves(GO5, before)
  seen = before.replace(seen_hashes=rules._insert(before.seen_hashes, after.hash))  # as if played earlier
  assert "C3" not in legal_moves(GO5, seen)
  assert legal_moves(GO5, seen) == legal_moves(GO5, before) - {"C3"}


def test_superko_mask_equals_brute_force_on_random_games():
  """Superko legal == simple-ko legal minus moves whose resulting board equals an earlier board.

  The engine finds repeats from hashes computed before moving (current hash + stone - captured groups,
  looked up in a sorted table); here every candidate is played out and its board compared with all
  earlier boards of the game.
  """
  game, simple = GO9, GO9_SIMPLE_KO
  num_games, num_moves = 16, 120

  def one_move(states, key):
    legal = jax.vmap(game.legal_actions)(states)
    action = jax.random.categorical(key, jnp.where(legal, 0.0, -jnp.inf))
    return jax.vmap(game.step)(states, action), states

  @jax.jit
  def check(key):
    start = jax.vmap(lambda _: game.init())(jnp.arange(num_games))
    _, states = jax.lax.scan(one_move, start, jax.random.split(key, num_moves))  # (T, G, ...) before each move
    boards = states.board  # (T, G, N)

    def mismatches(state, t, g):
      after = jax.vmap(lambda a: game.step(state, a).board)(jnp.arange(game.num_points))  # (N, N)
      earlier = jnp.arange(num_moves) <= t
      repeats = ((after[:, None, :] == boards[:, g][None]).all(-1) & earlier[None]).any(1)  # (N,)
      expected = simple.legal_actions(state)[:-1] & ~repeats
      live = ~state.terminated
      return live & (game.legal_actions(state)[:-1] != expected).any(), live & repeats.any()

    t, g = jnp.meshgrid(jnp.arange(num_moves), jnp.arange(num_games), indexing="ij")
    bad, repeated = jax.vmap(jax.vmap(mismatches))(states, t, g)
    return bad.sum(), repeated.sum(), (~states.terminated).sum()

  bad, repeated, live = (int(x) for x in check(jax.random.key(3)))
  assert bad == 0 and live > num_games * num_moves // 2
  assert repeated > 10  # positions where some move (a simple-ko recapture at least) would repeat
