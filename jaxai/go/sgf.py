"""SGF (Smart Game Format, FF[4]) for Go: read a record's main line, write one from a list of moves.

Kept: the root's properties, setup stones (AB/AW, including `aa:cc` rectangles), the main line (the first
variation at every branch) of B/W moves, with passes written `B[]` or, on boards up to 19x19, `B[tt]`.
Dropped: comments and other properties of move nodes, side variations.

Quirks of real records handled here (all seen in the 324 AlphaGo-era records of shared/data/go_sgf):
- KM[375]: the Chinese notation of 3 3/4 stones for 7.5 points. A komi of 100 or more is read as hundredths
  of a stone, one stone being two points. KM[7.500000] and KM[7.50] are plain numbers.
- No KM at all (the Fan Hui games): `komi` is None and the caller picks a default.
- No SZ: 19, the SGF default. Upper-case `.SGF` names and non-UTF-8 bytes (decoded as CA says, else Latin-1).
- FF[3]-style property names with lower-case letters (`AddBlack` = AB), which the spec says to ignore.

Points: SGF 'pd' is column p, row d counted from the top, so it maps straight to the rules' action
row * size + col (row 0 = the top row).
"""
import dataclasses
import functools
import re
from pathlib import Path

import numpy as np

BLACK, WHITE = 1, -1
_COLOURS = {"B": BLACK, "W": WHITE}
# Root properties `Game` holds in fields; `Game.properties` keeps every other root property.
_MANAGED = ("GM", "FF", "CA", "SZ", "KM", "HA", "RE", "AB", "AW", "AE", "PL")


class SGFError(ValueError):
  """A record that is not valid SGF, not Go, or not supported (the message says which and where)."""


class IllegalMoveError(ValueError):
  """A recorded move that the rules engine does not allow."""

  def __init__(self, message: str, move_number: int):
    super().__init__(message)
    self.move_number = move_number  # 1-based index into Game.moves


@dataclasses.dataclass
class Game:
  size: int = 19
  komi: float | None = None  # points; None when the record gives none
  moves: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # (colour 1/-1, action; size*size = pass)
  black_setup: list[int] = dataclasses.field(default_factory=list)  # AB points (handicap or setup stones)
  white_setup: list[int] = dataclasses.field(default_factory=list)  # AW points
  handicap: int = 0
  result: str | None = None  # RE as written: "W+R", "B+3.5", "0", ...
  first_player: int | None = None  # PL (colour to move first) when the record says
  properties: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # other root properties (PB, PW, DT, ...)

  @property
  def winner(self) -> int | None:
    """1 black won, -1 white won, 0 draw, None unknown/void (from RE)."""
    return result_winner(self.result)

  @property
  def to_play(self) -> int:
    """Colour to move first: that of the first move, else PL, else white after setup stones, else black."""
    if self.moves:
      return self.moves[0][0]
    if self.first_player is not None:
      return self.first_player
    return WHITE if self.black_setup and not self.white_setup else BLACK

  def prop(self, name: str, default: str | None = None) -> str | None:
    """The first value of a root property, e.g. game.prop("PB")."""
    values = self.properties.get(name)
    return values[0] if values else default


def result_winner(result: str | None) -> int | None:
  if not result:
    return None
  text = result.strip().upper()
  if text in ("0", "DRAW", "JIGO"):
    return 0
  if text.startswith("B+"):
    return BLACK
  if text.startswith("W+"):
    return WHITE
  return None  # "?", "Void", unfinished.


# ---------------------------------------------------------------------------------------------------------
# Reading.


def load(path) -> Game:
  """Reads an .sgf/.SGF file (its first game tree)."""
  data = Path(path).read_bytes()
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError:
    charset = re.search(rb"CA\s*\[([^\]]*)\]", data)
    try:
      text = data.decode(charset.group(1).decode("ascii").strip() if charset else "latin-1")
    except (LookupError, UnicodeDecodeError):
      text = data.decode("latin-1")
  try:
    return loads(text)
  except SGFError as e:
    raise SGFError(f"{path}: {e}") from None


def loads(text: str) -> Game:
  """Parses SGF text (its first game tree) into a Game."""
  start = text.find("(")
  if start < 0:
    raise SGFError("no game tree: an SGF record starts with '(;'")
  nodes = _main_line(text, start)
  if not nodes:
    raise SGFError("empty game tree")
  root = nodes[0]
  if root.get("GM", ["1"])[0].strip() != "1":
    raise SGFError(f"GM[{root['GM'][0]}] is not Go (GM[1])")
  size = _size(root.get("SZ", ["19"])[0])
  game = Game(size=size, komi=_komi(root.get("KM", [None])[0]),
              handicap=_int(root.get("HA", ["0"])[0], "HA"),
              result=root["RE"][0].strip() if "RE" in root else None,
              properties={k: v for k, v in root.items() if k not in _MANAGED})
  for number, node in enumerate(nodes):
    if "PL" in node and not game.moves:
      game.first_player = _colour(node["PL"][0])
    setup = [key for key in ("AB", "AW", "AE") if key in node]
    if setup and game.moves:
      raise SGFError(f"node {number}: setup stones ({', '.join(setup)}) after the first move are not supported")
    for point in (p for value in node.get("AE", []) for p in _points(value, size)):
      for stones in (game.black_setup, game.white_setup):
        if point in stones:
          stones.remove(point)
    game.black_setup += [p for value in node.get("AB", []) for p in _points(value, size)]
    game.white_setup += [p for value in node.get("AW", []) for p in _points(value, size)]
    for key in ("B", "W"):
      if key in node:
        game.moves.append((_COLOURS[key], _move(node[key][0], size)))
  return game


def _main_line(text: str, start: int) -> list[dict[str, list[str]]]:
  """The nodes of the first variation of the game tree opening at text[start] == '('.

  Side variations are scanned (to find where the tree ends) but not kept.
  """
  nodes = []
  depth = 0  # open '(' of the tree being read
  keep = True  # inside the main line
  closed_main = False  # the main line's innermost variation ended: later variations are side lines
  i = start
  while i < len(text):
    c = text[i]
    if c == "(":
      depth += 1
      keep = not closed_main
      i += 1
    elif c == ")":
      depth -= 1
      closed_main = True
      keep = False
      i += 1
      if depth == 0:
        return nodes
    elif c == ";":
      node, i = _node(text, i + 1)
      if keep:
        nodes.append(node)
    elif c.isspace():
      i += 1
    else:
      raise SGFError(f"unexpected {c!r} at offset {i} (expected '(', ';' or ')')")
  raise SGFError("unterminated game tree: missing ')'")


_IDENT = re.compile(r"\s*([A-Za-z]+)\s*\[")


def _node(text: str, i: int) -> tuple[dict[str, list[str]], int]:
  """Properties of the node starting at text[i] (just after ';'), and the offset after them."""
  node = {}
  while True:
    match = _IDENT.match(text, i)
    if not match:
      return node, _skip_space(text, i)
    # FF[3] names may hold lower-case letters (AddBlack): only the capitals count.
    name = "".join(ch for ch in match.group(1) if ch.isupper())
    values = node.setdefault(name, [])
    i = match.end() - 1
    while i < len(text) and text[i] == "[":
      value, i = _value(text, i + 1)
      values.append(value)
      i = _skip_space(text, i)


def _value(text: str, i: int) -> tuple[str, int]:
  """The unescaped value starting at text[i] (just after '['), and the offset after its ']'."""
  out = []
  while i < len(text):
    c = text[i]
    if c == "\\":
      if text.startswith("\r\n", i + 1):  # a soft line break: removed.
        i += 3
      elif i + 1 < len(text) and text[i + 1] in "\r\n":
        i += 2
      else:
        out.append(text[i + 1:i + 2])
        i += 2
    elif c == "]":
      return "".join(out), i + 1
    else:
      out.append(c)
      i += 1
  raise SGFError("unterminated property value: missing ']'")


def _skip_space(text: str, i: int) -> int:
  while i < len(text) and text[i].isspace():
    i += 1
  return i


def _int(value: str, name: str) -> int:
  try:
    return int(value.strip() or 0)
  except ValueError:
    raise SGFError(f"{name}[{value}] is not an integer") from None


def _size(value: str) -> int:
  cols, _, rows = value.partition(":")
  size = _int(cols, "SZ")
  if rows and _int(rows, "SZ") != size:
    raise SGFError(f"SZ[{value}]: rectangular boards are not supported")
  if not 1 <= size <= 25:
    raise SGFError(f"SZ[{value}]: board sizes 1..25 are supported")
  return size


def _komi(value: str | None) -> float | None:
  if value is None or not value.strip():
    return None
  try:
    komi = float(value)
  except ValueError:
    raise SGFError(f"KM[{value}] is not a number") from None
  if abs(komi) >= 100:  # KM[375]: 3.75 stones (Chinese notation) = 7.5 points.
    komi = komi / 100 * 2
  return komi


def _colour(value: str) -> int:
  key = value.strip().upper()[:1]
  if key not in _COLOURS:
    raise SGFError(f"PL[{value}] is not B or W")
  return _COLOURS[key]


def _point(value: str, size: int) -> int:
  if len(value) != 2 or not value.isalpha() or not value.islower():
    raise SGFError(f"[{value}] is not a point")
  col, row = ord(value[0]) - ord("a"), ord(value[1]) - ord("a")
  if not (0 <= col < size and 0 <= row < size):
    raise SGFError(f"[{value}] is off the {size}x{size} board")
  return row * size + col


def _move(value: str, size: int) -> int:
  value = value.strip()
  if not value or (value == "tt" and size <= 19):
    return size * size  # pass
  return _point(value, size)


def _points(value: str, size: int) -> list[int]:
  """A point, or a rectangle 'aa:cc' of points (compressed point list)."""
  first, colon, last = value.strip().partition(":")
  if not colon:
    return [_point(first, size)]
  (r0, c0), (r1, c1) = divmod(_point(first, size), size), divmod(_point(last, size), size)
  return [r * size + c for r in range(min(r0, r1), max(r0, r1) + 1) for c in range(min(c0, c1), max(c0, c1) + 1)]


# ---------------------------------------------------------------------------------------------------------
# Writing.


def dumps(game: Game) -> str:
  """SGF text for a game: root properties, setup stones, then one node per move (passes as `B[]`)."""
  root = [("GM", ["1"]), ("FF", ["4"]), ("CA", ["UTF-8"]), ("SZ", [str(game.size)])]
  if game.komi is not None:
    root.append(("KM", [f"{game.komi:g}"]))
  if game.handicap:
    root.append(("HA", [str(game.handicap)]))
  if game.result is not None:
    root.append(("RE", [game.result]))
  root += list(game.properties.items())
  if game.first_player is not None:
    root.append(("PL", ["B" if game.first_player == BLACK else "W"]))
  for name, stones in (("AB", game.black_setup), ("AW", game.white_setup)):
    if stones:
      root.append((name, [_sgf_point(p, game.size) for p in stones]))
  lines = ["(;" + "".join(name + "".join(f"[{_escape(v)}]" for v in values) for name, values in root)]
  nodes = [f";{'B' if colour == BLACK else 'W'}[{_sgf_move(action, game.size)}]" for colour, action in game.moves]
  lines += ["".join(nodes[i:i + 12]) for i in range(0, len(nodes), 12)]
  return "\n".join(lines) + ")\n"


def dump(game: Game, path) -> None:
  Path(path).write_text(dumps(game), encoding="utf-8")


def _escape(value: str) -> str:
  return value.replace("\\", "\\\\").replace("]", "\\]")


def _sgf_point(point: int, size: int) -> str:
  row, col = divmod(point, size)
  return chr(ord("a") + col) + chr(ord("a") + row)


def _sgf_move(action: int, size: int) -> str:
  if not 0 <= action <= size * size:
    raise ValueError(f"action {action} is off the {size}x{size} board (pass is {size * size})")
  return "" if action == size * size else _sgf_point(action, size)


# ---------------------------------------------------------------------------------------------------------
# Replaying through the rules engine.


def replay(game: Game, go=None):
  """The final rules.State of the game, checking that every move is legal (raises IllegalMoveError)."""
  return replay_all([game], go)[0]


def replay_all(games, go=None) -> list:
  """Final states of several games of one board size, replayed in one jitted call (vmap over games).

  go: a rules.Go of the games' size; default rules.Go(size, komi of the first game or 7.5) with room for
  the longest game. When one colour moves twice in a row (some servers leave passes out of their records:
  seven of the 324 records here), the other colour is taken to have passed in between. Raises
  IllegalMoveError for the first illegal move.
  """
  from jaxai.go import coords, rules  # parsing and writing need no JAX.
  games = list(games)
  sizes = {g.size for g in games}
  if len(sizes) != 1:
    raise ValueError(f"replay_all needs games of one board size, got sizes {sorted(sizes)}")
  size = sizes.pop()
  sequences = [_actions(game) for game in games]  # per game: (actions, move number of each action)
  longest = max(len(actions) for actions, _ in sequences)
  if go is None:
    komi = games[0].komi if games[0].komi is not None else 7.5
    go = rules.Go(size, komi, max_moves=max(2 * size * size, longest))
  elif go.size != size:
    raise ValueError(f"the games are {size}x{size} but go is {go.size}x{go.size}")
  length = max(64, -(-longest // 64) * 64)  # padded, so few distinct lengths compile.
  actions = np.full((len(games), length), size * size, np.int32)  # (G, T)
  valid = np.zeros((len(games), length), bool)  # (G, T)
  for index, (game_actions, _) in enumerate(sequences):
    actions[index, :len(game_actions)] = game_actions
    valid[index, :len(game_actions)] = True
  starts = [_start_state(go, game) for game in games]
  import jax
  start = jax.tree.map(lambda *xs: np.stack(xs), *starts)
  final, legal = _replay_fn(go)(start, actions, valid)
  legal = np.asarray(legal)  # (G, T)
  for index, game in enumerate(games):
    bad = np.flatnonzero(~legal[index])
    if bad.size:
      number = sequences[index][1][bad[0]]
      colour, action = game.moves[number - 1]
      raise IllegalMoveError(f"game {index}, move {number} ({'B' if colour == BLACK else 'W'} "
                             f"{coords.action_to_gtp(action, size)}) is illegal", number)
  return [jax.tree.map(lambda x, i=i: x[i], final) for i in range(len(games))]


def _actions(game: Game) -> tuple[list[int], list[int]]:
  """The game's actions with a pass inserted wherever a colour moves twice in a row, and for each action
  the (1-based) number of the recorded move it is or precedes."""
  pass_action = game.size * game.size
  actions, numbers = [], []
  to_play = game.to_play
  for number, (colour, action) in enumerate(game.moves, 1):
    if colour != to_play:
      actions.append(pass_action)
      numbers.append(number)
    actions.append(action)
    numbers.append(number)
    to_play = -colour
  return actions, numbers


def _start_state(go, game: Game):
  """The initial state of a record: the empty board, or its setup stones with the right colour to move."""
  if not game.black_setup and not game.white_setup and game.to_play == BLACK:
    return go.init()
  board = np.zeros(game.size * game.size, np.int8)
  board[game.black_setup] = BLACK
  board[game.white_setup] = WHITE
  return go.from_board(board, game.to_play)


@functools.lru_cache(maxsize=8)
def _replay_fn(go):
  """jit(vmap over games of scan over moves): (start (G,...), actions (G, T), valid (G, T)) -> (final, legal (G, T))."""
  import jax
  import jax.numpy as jnp

  def one_game(state, actions, valid):
    def move(state, x):
      action, valid = x
      legal = go.legal_actions(state)[action]
      stepped = go.step(state, action)
      state = jax.tree.map(lambda new, old: jnp.where(valid, new, old), stepped, state)
      return state, legal | ~valid

    return jax.lax.scan(move, state, (actions, valid))

  return jax.jit(jax.vmap(one_game))
