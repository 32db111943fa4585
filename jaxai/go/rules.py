"""Go rules in JAX: one game per `State`, every method pure and jittable; `jax.vmap` for batches.

    game = Go(size=9, komi=7.5)
    state = game.init()
    state = game.step(state, gtp_to_action("E5", 9))
    mask = game.legal_actions(state)          # (82,) bool
    game.score(state), game.features(state)   # () black - white - komi; (9, 9, 17) planes

Rules (Tromp-Taylor, except for the ko options):
  * A stone is placed on an empty point; opponent groups left without liberties are removed, then the
    mover's own group must have a liberty: suicide is illegal (a move that captures is never suicide).
  * Ko. `superko=True` (default): positional superko, a stone placement may not recreate any earlier
    whole-board position (side to move ignored); such moves are masked out of `legal_actions`. This is
    Tromp-Taylor's own ko rule: it forbids every cycle (triple ko, sending two returning one), not only
    the immediate recapture, so self-play cannot loop, and a repetition is known before the move is
    played, which a search needs (legality is all in the mask).
    `superko=False`: simple ko, only the immediate recapture of a single stone that just captured a
    single stone is illegal. With `superko=False, repetition_loses=True`, a placement that repeats an
    earlier position is legal but ends the game, lost by the player who made it (pgx's rule; used to test
    against pgx exactly).
  * Pass is always legal; two consecutive passes end the game, and so does reaching `max_moves` moves
    (passes included; default 2 * size * size).
  * Area scoring: a player's points are their stones plus the empty points that reach only their stones
    through empty points. `score` = black - white - komi; `winner` is its sign (or the repetition rule).

Implementation: the state carries each point's group label (a stone of the group, its representative)
and whether the point's group is in atari. A move then needs only its 4 neighbours to know what it
captures, and the legal mask is a gather over a neighbour table; after each move the labels are merged
with one comparison against the neighbours' labels (O(board)), and the atari flags are refreshed with one
segment-min/max of liberty indices per group (O(board)). Positions are hashed with additive Zobrist
keys (two uint32 words, sums mod 2^32), so the hash of the position after any candidate move is the
current hash + the new stone - the captured groups' hashes; superko looks those up (binary search) in
a table of the hashes of all earlier positions, kept sorted.
"""
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jaxai.go.coords import COLUMNS, action_to_gtp, gtp_to_action  # noqa: F401 (re-exported)

BLACK, WHITE, EMPTY = 1, -1, 0
_OFF_BOARD = 2  # colour read past the edge: neither a stone colour nor empty


@flax.struct.dataclass
class State:
  """One game position. N = size * size, M = max_moves + 1 (1 when no repetition check is needed)."""
  board: jax.Array         # (N,) int8 1 black / -1 white / 0 empty
  to_play: jax.Array       # () int8 1 black / -1 white
  num_moves: jax.Array     # () int32 moves played, passes included
  passes: jax.Array        # () int32 consecutive passes
  terminated: jax.Array    # () bool two passes, max_moves reached, or (repetition_loses) a repetition
  history: jax.Array       # (history_length, N) int8 boards, most recent (= board) first; zeros before move 0
  labels: jax.Array        # (N,) int32 stones: the index of their group's representative stone; empty: own index
  atari: jax.Array         # (N,) bool stones whose group has exactly one liberty
  ko_point: jax.Array      # () int32 point the player to move may not play under simple ko, -1 if none
  captures: jax.Array      # (2,) int32 stones captured so far by black, by white
  hash: jax.Array          # (2,) uint32 Zobrist hash of `board`
  seen_hashes: jax.Array   # (M, 2) uint32 hashes of all positions so far, sorted by word 0; unused rows all ones
  repeated_by: jax.Array   # () int8 colour whose move repeated a position (repetition_loses only), else 0


class Go:
  """Go on a size x size board (5..19). See the module docstring for the rules and options."""

  def __init__(self, size: int = 9, komi: float = 7.5, max_moves: int | None = None, superko: bool = True,
               history_length: int = 8, repetition_loses: bool = False):
    if not isinstance(size, (int, np.integer)) or not 5 <= size <= 19:
      raise ValueError(f"Go board size must be an integer in 5..19, got {size!r}.")
    max_moves = 2 * size * size if max_moves is None else max_moves
    if max_moves < 1:
      raise ValueError(f"max_moves must be >= 1, got {max_moves}.")
    if history_length < 1:
      raise ValueError(f"history_length must be >= 1, got {history_length}.")
    if superko and repetition_loses:
      raise ValueError("repetition_loses=True needs superko=False (under positional superko a repeating move "
                       "is illegal, so it can never be played).")
    self.size = int(size)
    self.komi = float(komi)
    self.max_moves = int(max_moves)
    self.superko = bool(superko)
    self.repetition_loses = bool(repetition_loses)
    self.history_length = int(history_length)
    self.num_points = self.size * self.size
    self.num_actions = self.num_points + 1
    self.pass_action = self.num_points
    n = self.num_points
    # Neighbour table (N, 4): up, down, left, right; N (one past the board) off the edge.
    rows, cols = np.divmod(np.arange(n), self.size)
    neighbours = []
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
      r, c = rows + dr, cols + dc
      on = (r >= 0) & (r < self.size) & (c >= 0) & (c < self.size)
      neighbours.append(np.where(on, r * self.size + c, n))
    self._neighbours = np.stack(neighbours, 1).astype(np.int32)  # (N, 4)
    # Zobrist keys (N, 2) per colour, two uint32 words; empty points add 0. Fixed seed: hashes are
    # comparable across Go instances of the same size.
    keys = np.random.default_rng(20260101 + size).integers(1, 2**32, size=(2, n, 2), dtype=np.uint64)
    self._zobrist_black, self._zobrist_white = keys.astype(np.uint32)
    self._hash_rows = self.max_moves + 1 if (self.superko or self.repetition_loses) else 1
    # Compiled once per game, so host code (GTP, tests) can call them eagerly; inside a caller's jit or
    # vmap they are traced as usual.
    self.step = jax.jit(self.step)
    self.legal_actions = jax.jit(self.legal_actions)

  @property
  def feature_shape(self) -> tuple[int, int, int]:
    return (self.size, self.size, 2 * self.history_length + 1)

  # ----------------------------------------------------------------------------------------- jittable API

  def init(self) -> State:
    """The empty board, black to play."""
    n = self.num_points
    board = jnp.zeros(n, jnp.int8)
    return State(board=board, to_play=jnp.int8(BLACK), num_moves=jnp.int32(0), passes=jnp.int32(0),
                 terminated=jnp.bool_(False), history=jnp.zeros((self.history_length, n), jnp.int8),
                 labels=jnp.arange(n, dtype=jnp.int32), atari=jnp.zeros(n, jnp.bool_),
                 ko_point=jnp.int32(-1), captures=jnp.zeros(2, jnp.int32), hash=jnp.zeros(2, jnp.uint32),
                 seen_hashes=_insert(jnp.full((self._hash_rows, 2), _UNUSED, jnp.uint32), jnp.zeros(2, jnp.uint32)),
                 repeated_by=jnp.int8(0))

  def step(self, state: State, action) -> State:
    """Plays `action` (a legal point, or `pass_action`) for `state.to_play`. A no-op once terminated."""
    n = self.num_points
    action = jnp.asarray(action, jnp.int32)
    is_pass = action == self.pass_action
    point = jnp.minimum(action, n - 1)  # any in-board index for the pass branch, whose result is discarded
    me = state.to_play
    points = jnp.arange(n, dtype=jnp.int32)

    neighbours = jnp.asarray(self._neighbours)[point]  # (4,)
    nb_colour = _pad(state.board, _OFF_BOARD)[neighbours]  # (4,)
    nb_label = _pad(state.labels, -1)[neighbours]  # (4,)
    nb_atari = _pad(state.atari, False)[neighbours]  # (4,)
    # Opponent groups in atari next to an empty point have that point as their only liberty: captured.
    captured = (nb_colour == -me) & nb_atari  # (4,)
    same_group = state.labels[:, None] == nb_label[None, :]  # (N, 4)
    removed = (same_group & captured[None, :]).any(1)  # (N,)
    joined = (same_group & (nb_colour == me)[None, :]).any(1) | (points == point)  # (N,)
    board = jnp.where(removed, EMPTY, state.board)
    board = jnp.where(points == point, me, board).astype(jnp.int8)
    labels = jnp.where(joined, point, jnp.where(removed, points, state.labels))
    num_removed = removed.sum(dtype=jnp.int32)
    # Simple ko: exactly one stone captured by a stone that had no friendly or empty neighbour.
    surrounded = ((nb_colour == -me) | (nb_colour == _OFF_BOARD)).all()
    ko_point = jnp.where((num_removed == 1) & surrounded, jnp.argmax(removed).astype(jnp.int32), -1)
    colour_index = (me == WHITE).astype(jnp.int32)  # 0 black, 1 white
    captures = state.captures.at[colour_index].add(num_removed)
    position_hash = self._hash(board)

    board = jnp.where(is_pass, state.board, board)
    labels = jnp.where(is_pass, state.labels, labels)
    ko_point = jnp.where(is_pass, -1, ko_point)
    captures = jnp.where(is_pass, state.captures, captures)
    position_hash = jnp.where(is_pass, state.hash, position_hash)
    repeated = jnp.bool_(False)
    if self.repetition_loses:
      repeated = ~is_pass & _contains(state.seen_hashes, position_hash[None])[0]
    seen_hashes = state.seen_hashes
    if self._hash_rows > 1:  # max_moves + 1 rows: the start and every move (a pass repeats a row)
      seen_hashes = _insert(seen_hashes, position_hash)
    num_moves = state.num_moves + 1
    passes = jnp.where(is_pass, state.passes + 1, 0)
    new = State(
        board=board, to_play=-me, num_moves=num_moves, passes=passes,
        terminated=(passes >= 2) | (num_moves >= self.max_moves) | repeated,
        history=jnp.concatenate([board[None], state.history[:-1]], 0),
        labels=labels, atari=_atari(board, labels, jnp.asarray(self._neighbours)), ko_point=ko_point,
        captures=captures, hash=position_hash,
        seen_hashes=seen_hashes,
        repeated_by=jnp.where(repeated, me, 0).astype(jnp.int8))
    return jax.tree.map(lambda old, upd: jnp.where(state.terminated, old, upd), state, new)

  def legal_actions(self, state: State) -> jax.Array:
    """(num_actions,) bool legal moves for `state.to_play`; pass is legal; all False once terminated."""
    me = state.to_play
    neighbours = jnp.asarray(self._neighbours)  # (N, 4)
    nb_colour = _pad(state.board, _OFF_BOARD)[neighbours]  # (N, 4)
    nb_atari = _pad(state.atari, False)[neighbours]  # (N, 4)
    captures = (nb_colour == -me) & nb_atari  # (N, 4) neighbour groups the move would capture
    # Legal: empty, and after the move the stone has a liberty: an empty neighbour, a friendly group with
    # another liberty to join, or a captured group whose removal frees points.
    breathes = (nb_colour == EMPTY) | ((nb_colour == me) & ~nb_atari) | captures
    legal = (state.board == EMPTY) & breathes.any(1)
    if self.superko:
      legal &= ~self._repeats(state, captures)
    else:
      legal &= jnp.arange(self.num_points) != state.ko_point
    return jnp.append(legal, True) & ~state.terminated

  def score(self, state: State) -> jax.Array:
    """() float32 Tromp-Taylor area score, black - white - komi."""
    black, white = _areas(state.board, jnp.asarray(self._neighbours))
    return (black - white).astype(jnp.float32) - self.komi

  def winner(self, state: State) -> jax.Array:
    """() int8: 1 black wins, -1 white wins, 0 draw (by score; a repetition under repetition_loses loses)."""
    by_score = jnp.sign(self.score(state)).astype(jnp.int8)
    return jnp.where(state.repeated_by != 0, -state.repeated_by, by_score).astype(jnp.int8)

  def features(self, state: State) -> jax.Array:
    """(size, size, 2 * history_length + 1) float32 AlphaZero input planes for the side to move.

    Planes 2i and 2i+1: the mover's and the opponent's stones i moves ago (i = 0 the current board);
    boards before the start are empty. Last plane: 1 when black is to move, 0 when white is.
    """
    mine = state.history == state.to_play  # (H, N)
    theirs = state.history == -state.to_play  # (H, N)
    planes = jnp.stack([mine, theirs], 1).reshape(2 * self.history_length, self.num_points)  # (2H, N)
    planes = planes.T.reshape(self.size, self.size, 2 * self.history_length)
    colour = jnp.full((self.size, self.size, 1), state.to_play == BLACK)
    return jnp.concatenate([planes, colour], -1).astype(jnp.float32)

  # ---------------------------------------------------------------------------------------- host helpers

  def from_board(self, board, to_play=BLACK) -> State:
    """A State for a given position (no earlier moves): numpy (size, size) or (N,) in {1, -1, 0}, or text.

    Text: one line per row, top row first, 'X' black, 'O' white, '.' or '+' empty; other lines (e.g. the
    coordinate rows of `to_string`) and row numbers are ignored. Raises ValueError for a malformed board
    or a group without liberties. `to_play`: 1 / -1, or "b" / "w".
    """
    points = self._parse_board(board)  # (N,) int8
    if isinstance(to_play, str):
      to_play = {"b": BLACK, "black": BLACK, "w": WHITE, "white": WHITE}.get(to_play.lower())
    if to_play not in (BLACK, WHITE):
      raise ValueError(f"to_play must be 1 (black) or -1 (white), got {to_play!r}.")
    labels = self._label_groups(points)
    board = jnp.asarray(points)
    position_hash = self._hash(board)
    state = self.init()
    return state.replace(
        board=board, to_play=jnp.int8(to_play), history=state.history.at[0].set(board),
        labels=jnp.asarray(labels), atari=_atari(board, jnp.asarray(labels), jnp.asarray(self._neighbours)),
        hash=position_hash, seen_hashes=_insert(jnp.full_like(state.seen_hashes, _UNUSED), position_hash))

  def to_string(self, state: State) -> str:
    """ASCII diagram: 'X' black, 'O' white, '.' empty, GTP coordinates around; then whose move it is."""
    board = np.asarray(jax.device_get(state.board)).reshape(self.size, self.size)
    letters = "   " + " ".join(COLUMNS[:self.size])
    lines = [letters]
    for row in range(self.size):
      number = self.size - row
      cells = " ".join({BLACK: "X", WHITE: "O"}.get(int(v), ".") for v in board[row])
      lines.append(f"{number:2d} {cells} {number:2d}")
    lines.append(letters)
    mover = "black" if int(state.to_play) == BLACK else "white"
    black_caps, white_caps = (int(v) for v in np.asarray(state.captures))
    status = "game over" if bool(state.terminated) else f"{mover} to play"
    lines.append(f"{status}, move {int(state.num_moves)}, captures black {black_caps} white {white_caps}")
    return "\n".join(lines)

  # ------------------------------------------------------------------------------------------- internals

  def _hash(self, board: jax.Array) -> jax.Array:
    """(2,) uint32 additive Zobrist hash of a board (N,)."""
    keys = jnp.where((board == BLACK)[:, None], jnp.asarray(self._zobrist_black),
                     jnp.where((board == WHITE)[:, None], jnp.asarray(self._zobrist_white), jnp.uint32(0)))
    return keys.sum(0, dtype=jnp.uint32)

  def _repeats(self, state: State, captures: jax.Array) -> jax.Array:
    """(N,) bool: placing a stone there would recreate an earlier position. captures: (N, 4) as above."""
    n = self.num_points
    neighbours = jnp.asarray(self._neighbours)
    stone_keys = jnp.where((state.board == BLACK)[:, None], jnp.asarray(self._zobrist_black),
                           jnp.where((state.board == WHITE)[:, None], jnp.asarray(self._zobrist_white),
                                     jnp.uint32(0)))  # (N, 2)
    group_hash = jax.ops.segment_sum(stone_keys, state.labels, num_segments=n)  # (N, 2) by representative
    nb_label = _pad(state.labels, n)[neighbours]  # (N, 4); off the board: n, whose hash is 0
    nb_group_hash = _pad(group_hash, 0)[nb_label]  # (N, 4, 2)
    # A group touching the point from two sides is captured once: keep its first neighbour only.
    first = jnp.stack([captures[:, 0]] + [
        captures[:, k] & ~(captures[:, :k] & (nb_label[:, :k] == nb_label[:, k:k + 1])).any(1)
        for k in range(1, 4)], 1)  # (N, 4)
    removed_hash = jnp.where(first[:, :, None], nb_group_hash, jnp.uint32(0)).sum(1, dtype=jnp.uint32)  # (N, 2)
    own_keys = jnp.where(state.to_play == BLACK, jnp.asarray(self._zobrist_black),
                         jnp.asarray(self._zobrist_white))  # (N, 2)
    candidate = state.hash[None, :] + own_keys - removed_hash  # (N, 2) hash after a stone at each point
    return _contains(state.seen_hashes, candidate)

  def _parse_board(self, board) -> np.ndarray:
    n = self.num_points
    if isinstance(board, str):
      rows = []
      for line in board.splitlines():
        cells = "".join(ch for ch in line if not ch.isspace() and not ch.isdigit())
        if len(cells) == self.size and set(cells) <= set("XxOo.+"):
          rows.append([BLACK if ch in "Xx" else WHITE if ch in "Oo" else EMPTY for ch in cells])
      if len(rows) != self.size:
        raise ValueError(f"found {len(rows)} board rows of {self.size} points ('X', 'O', '.' or '+') in the "
                         f"text, expected {self.size}.")
      board = np.array(rows)
    board = np.asarray(board)
    if board.shape not in ((self.size, self.size), (n,)):
      raise ValueError(f"board has shape {board.shape}, expected ({self.size}, {self.size}) or ({n},).")
    if not np.isin(board, (BLACK, WHITE, EMPTY)).all():
      raise ValueError("board values must be 1 (black), -1 (white) or 0 (empty).")
    return board.reshape(n).astype(np.int8)

  def _label_groups(self, board: np.ndarray) -> np.ndarray:
    """(N,) int32 group labels (smallest index of each group) by flood fill; checks every group breathes."""
    labels = np.arange(self.num_points, dtype=np.int32)
    seen = np.zeros(self.num_points, bool)
    for start in range(self.num_points):
      if board[start] == EMPTY or seen[start]:
        continue
      group, frontier, has_liberty = [start], [start], False
      seen[start] = True
      while frontier:
        p = frontier.pop()
        for q in self._neighbours[p]:
          if q == self.num_points:
            continue
          if board[q] == EMPTY:
            has_liberty = True
          elif board[q] == board[start] and not seen[q]:
            seen[q] = True
            group.append(q)
            frontier.append(q)
      if not has_liberty:
        raise ValueError(f"the group at {action_to_gtp(start, self.size)} has no liberty.")
      labels[group] = start
    return labels


_UNUSED = np.uint32(0xFFFFFFFF)  # fills the unused rows of seen_hashes, which sort last


def _contains(table: jax.Array, keys: jax.Array) -> jax.Array:
  """(K,) bool: which keys (K, 2) are rows of `table` (M, 2), sorted by word 0 (binary search)."""
  rows = jnp.searchsorted(table[:, 0], keys[:, 0], method=_SEARCH)  # (K,) first row with word 0 >= key's
  rows = jnp.minimum(rows, table.shape[0] - 1)
  return (table[rows] == keys).all(-1)


def _insert(table: jax.Array, key: jax.Array) -> jax.Array:
  """table (M, 2) sorted by word 0 with `key` (2,) inserted in order; the last (unused) row drops out."""
  at = jnp.searchsorted(table[:, 0], key[0], method=_SEARCH)
  rows = jnp.arange(table.shape[0])[:, None]
  shifted = jnp.concatenate([table[:1], table[:-1]], 0)  # row i holds row i - 1
  return jnp.where(rows < at, table, jnp.where(rows == at, key[None, :], shifted))


_SEARCH = "scan_unrolled"  # binary search unrolled: the fastest of jnp.searchsorted's methods here (CPU)


def _pad(values: jax.Array, fill) -> jax.Array:
  """values (N, ...) with one more entry, `fill`, at index N (read by off-board neighbours)."""
  return jnp.concatenate([values, jnp.full((1,) + values.shape[1:], fill, values.dtype)], 0)


@jax.jit
def _atari(board: jax.Array, labels: jax.Array, neighbours: jax.Array) -> jax.Array:
  """(N,) bool: stones whose group has exactly one liberty (its smallest and largest liberty coincide)."""
  n = board.shape[0]
  nb_empty = _pad(board == EMPTY, False)[neighbours]  # (N, 4)
  lowest = jnp.where(nb_empty, neighbours, n).min(1)  # (N,) each point's smallest empty neighbour
  highest = jnp.where(nb_empty, neighbours, -1).max(1)
  group_lowest = jax.ops.segment_min(lowest, labels, num_segments=n)  # (N,) by representative
  group_highest = jax.ops.segment_max(highest, labels, num_segments=n)
  return (board != EMPTY) & (group_lowest[labels] == group_highest[labels])


@jax.jit
def _areas(board: jax.Array, neighbours: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Tromp-Taylor areas () int32 (black, white): stones + empty points reaching only that colour."""
  empty = board == EMPTY

  def spread(reach):  # (N,) bool -> also the empty points next to it
    return reach | (empty & _pad(reach, False)[neighbours].any(1))

  def body(carry):
    black, white, _ = carry
    new_black, new_white = spread(black), spread(white)
    changed = (new_black != black).any() | (new_white != white).any()
    return new_black, new_white, changed

  black, white, _ = jax.lax.while_loop(lambda c: c[2], body, (board == BLACK, board == WHITE, jnp.bool_(True)))
  black_area = (board == BLACK).sum() + (empty & black & ~white).sum()
  white_area = (board == WHITE).sum() + (empty & white & ~black).sum()
  return black_area.astype(jnp.int32), white_area.astype(jnp.int32)
