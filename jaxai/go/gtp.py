"""A Go Text Protocol (GTP v2) engine over the JAX rules and any player; served by `python -m jaxai.gtp`.

`Engine` answers GTP commands for a player with `.go` and `select_action(state) -> action` (a random
player here, a trained agent from jaxai.tasks.alphazero); `serve` runs it over stdin/stdout, so GUIs
(GoGui, Sabaki, Lizzie) and match runners (jaxai.go.match, gogui-twogtp) can drive it. This module
knows no training code: the launcher jaxai/gtp.py builds the player.

Commands: protocol_version name version known_command list_commands boardsize clear_board komi play
genmove undo showboard final_score quit. Framing follows the GTP v2 spec: an optional numeric id, answers
`=[id] result` or `?[id] message` ended by a blank line; control characters and `#` comments are stripped.
A malformed or illegal command gets a `?` answer and the engine keeps running. The engine never plays an
illegal move: whatever its player picks is checked against the rules' legal actions (pass if none).

Rules: the JAX engine's (jaxai.go.rules: positional superko, no suicide, Tromp-Taylor area scoring).
`komi` changes only the score reported by final_score; the player keeps the komi it was trained with.
"""
import functools
import inspect
import re
import sys
import traceback

import jax
import numpy as np
from absl import logging

import jaxai
from jaxai.go import coords, rules

COMMANDS = ("protocol_version", "name", "version", "known_command", "list_commands", "boardsize",
            "clear_board", "komi", "play", "genmove", "undo", "showboard", "final_score", "quit")
_COLOURS = {"b": 1, "black": 1, "w": -1, "white": -1}
_VERTEX_SHAPE = re.compile(r"[a-z]\d{1,2}", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # every control character but HT and LF (GTP 3.1)


class GTPError(Exception):
  """A command that fails: the message is what follows `? ` in the answer."""


class Compiled:
  """Jitted step / legal_actions / score of one rules.Go; `compiled(go)` shares them per Go."""

  def __init__(self, go):
    self.go = go
    self._step = jax.jit(go.step)
    self.legal_actions = jax.jit(go.legal_actions)
    self.score = jax.jit(go.score)

  def step(self, state, action):
    return self._step(state, np.int32(action))  # one type for every int: compiled once.

  def legal(self, state) -> np.ndarray:
    return np.asarray(self.legal_actions(state))  # (num_actions,) bool


@functools.lru_cache(maxsize=None)
def compiled(go) -> Compiled:
  return Compiled(go)


class RandomPlayer:
  """Uniform over legal moves except filling its own eyes (points whose neighbours are all its stones).

  Passes only when nothing else is left, so games end by themselves at about the rate of a real game.
  """

  def __init__(self, go, seed: int | np.random.Generator = 0):
    self.go = go
    self._rng = np.random.default_rng(seed)
    self._compiled = compiled(go)
    size = go.size
    # (size*size, 4) neighbour indices; off-board neighbours point at an extra always-own slot.
    rows, cols = np.divmod(np.arange(size * size), size)
    neighbours = []
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
      r, c = rows + dr, cols + dc
      inside = (r >= 0) & (r < size) & (c >= 0) & (c < size)
      neighbours.append(np.where(inside, r * size + c, size * size))
    self._neighbours = np.stack(neighbours, 1)

  def select_action(self, state) -> int:
    legal = self._compiled.legal(state)[:-1]  # (size*size,) without pass
    board = np.asarray(state.board)
    own = np.append(board == np.asarray(state.to_play), True)  # (size*size + 1,) off-board counts as own
    eye = own[self._neighbours].all(1) & (board == 0)
    candidates = np.flatnonzero(legal & ~eye)
    if candidates.size == 0:
      return self.go.pass_action
    return int(self._rng.choice(candidates))


def random_players(seed: int = 0):
  """A factory for Engine: a RandomPlayer on a rules.Go of any size the rules accept (5..19)."""
  rng = np.random.default_rng(seed)  # one stream: every game of a session differs.
  return lambda size: RandomPlayer(shared_rules(size), rng)


@functools.lru_cache(maxsize=None)
def shared_rules(size: int):
  """One default rules.Go per size for the whole process (engines, referee), so it compiles once."""
  return rules.Go(size)  # ValueError outside the rules' sizes.


def fixed_player(player):
  """A factory for Engine that only knows the board size of its player (e.g. a trained agent)."""

  def make(size: int):
    if size != player.go.size:
      raise ValueError(f"this player plays {player.go.size}x{player.go.size} only")
    return player

  return make


class Engine:
  """GTP over a rules.Go and a player with `.go` and `select_action(state) -> action`.

  make_player(size) returns the player for a board size or raises ValueError (-> `? unacceptable size`).
  The board is host-side logic over jitted rules functions; `history` holds earlier states for undo.
  """

  def __init__(self, make_player, size: int = 9, komi: float = 7.5, name: str = "jaxai"):
    self._make_player = make_player
    self.name = name
    self.komi = float(komi)
    self.finished = False  # True after quit
    self.go = None
    self._set_size(size)

  def _set_size(self, size: int):
    if self.go is None or size != self.go.size:
      self.player = self._make_player(size)
    self.go = self.player.go
    self.rules = compiled(self.go)
    self.clear()

  def clear(self):
    self.state = self.go.init()
    self.history = []

  # --- the protocol -----------------------------------------------------------------------------------

  def handle(self, line: str) -> str | None:
    """The full answer (with its blank line) to one input line, or None for a line GTP ignores."""
    line = _CONTROL.sub("", line).replace("\t", " ").split("#", 1)[0]
    words = line.split()
    if not words:
      return None
    command_id = ""
    if words[0].isdigit():
      command_id = words.pop(0)
    if not words:
      return f"?{command_id} missing command\n\n"
    try:
      result = self.execute(words[0].lower(), words[1:])
    except GTPError as e:
      return f"?{command_id} {e}\n\n"
    except Exception as e:  # a bug must not end the session: say so and keep serving.
      traceback.print_exc(file=sys.stderr)
      return f"?{command_id} internal error: {type(e).__name__}\n\n"
    return f"={command_id} {result}\n\n"

  def execute(self, command: str, args: list[str]) -> str:
    """The result text of a command; raises GTPError with the failure message."""
    if command not in COMMANDS:
      raise GTPError("unknown command")
    method = getattr(self, f"cmd_{command}")
    try:
      inspect.signature(method).bind(*args)
    except TypeError:
      raise GTPError(f"syntax error: wrong number of arguments for {command}") from None
    return method(*args)

  def run(self, stdin=sys.stdin, stdout=sys.stdout):
    """Answers commands until `quit` or the end of the input."""
    for line in stdin:
      answer = self.handle(line)
      if answer is not None:
        stdout.write(answer)
        stdout.flush()
      if self.finished:
        break

  # --- commands (each takes its arguments as strings) ---------------------------------------------------

  def cmd_protocol_version(self):
    return "2"

  def cmd_name(self):
    return self.name

  def cmd_version(self):
    return jaxai.__version__

  def cmd_known_command(self, name):
    return "true" if name.lower() in COMMANDS else "false"

  def cmd_list_commands(self):
    return "\n".join(COMMANDS)

  def cmd_boardsize(self, size):
    try:
      size = int(size)
    except ValueError:
      raise GTPError("boardsize is not an integer") from None
    try:
      self._set_size(size)
    except ValueError:
      raise GTPError("unacceptable size") from None
    return ""

  def cmd_clear_board(self):
    self.clear()
    return ""

  def cmd_komi(self, komi):
    try:
      komi = float(komi)
    except ValueError:
      raise GTPError("komi is not a number") from None
    if not np.isfinite(komi):
      raise GTPError("komi is not a number")
    self.komi = komi
    return ""

  def cmd_play(self, colour, vertex):
    colour = _colour(colour)
    action = self._action(vertex)
    state = self._with_turn(colour)
    if bool(state.terminated) or not self.rules.legal(state)[action]:
      raise GTPError("illegal move")
    self._advance(state, action)
    return ""

  def cmd_genmove(self, colour):
    colour = _colour(colour)
    state = self._with_turn(colour)
    legal = self.rules.legal(state)
    if bool(state.terminated) or not legal.any():
      return "pass"  # the game is over; nothing is played.
    action = int(self.player.select_action(state))
    if not (0 <= action < legal.size and legal[action]):
      print(f"warning: the player chose an illegal action {action}; passing instead", file=sys.stderr)
      action = self.go.pass_action
    self._advance(state, action)
    return coords.action_to_gtp(action, self.go.size)

  def cmd_undo(self):
    if not self.history:
      raise GTPError("cannot undo")
    self.state = self.history.pop()
    return ""

  def cmd_showboard(self):
    board = "\n".join(line for line in self.go.to_string(self.state).splitlines() if line.strip())
    return f"\n{board}\nkomi {self.komi:g}"  # no blank line inside: it would end the answer.

  def cmd_final_score(self):
    return format_score(self.score())

  def cmd_quit(self):
    self.finished = True
    return ""

  # --- helpers ------------------------------------------------------------------------------------------

  def score(self) -> float:
    """Tromp-Taylor area score of the current position, black - white - komi (with the GTP komi)."""
    return float(self.rules.score(self.state)) + self.go.komi - self.komi

  def _action(self, vertex: str) -> int:
    try:
      return coords.gtp_to_action(vertex, self.go.size)
    except ValueError:
      if _VERTEX_SHAPE.fullmatch(vertex):
        raise GTPError("illegal move") from None  # well-formed but off this board.
      raise GTPError(f"syntax error: invalid vertex {vertex!r}") from None

  def _with_turn(self, colour: int):
    """The current state with `colour` to move: GTP allows either colour to move at any time.

    Moving out of turn is treated as if the other side had passed, without counting that pass (a simple-ko
    ban, which binds the side to move, is lifted; positional superko still applies).
    """
    if int(self.state.to_play) == colour:
      return self.state
    return self.state.replace(to_play=np.int8(colour), ko_point=np.int32(-1))

  def _advance(self, state, action: int):
    self.history.append(self.state)
    self.state = self.rules.step(state, action)


def format_score(score: float) -> str:
  """GTP/SGF form of a score (black - white): "B+3.5", "W+0.5", "0"."""
  if score == 0:
    return "0"
  return f"{'B' if score > 0 else 'W'}+{abs(score):g}"


def _colour(text: str) -> int:
  try:
    return _COLOURS[text.lower()]
  except KeyError:
    raise GTPError(f"syntax error: invalid colour {text!r}") from None


def serve(engine: Engine, description: str, stdin=sys.stdin, stdout=sys.stdout) -> None:
  """Compiles the player's and the rules' functions (so a match's first genmove is not slowed by it),
  then answers commands until `quit` or the end of the input. Logs go to stderr."""
  engine.player.select_action(engine.state)
  engine.rules.step(engine.state, engine.go.pass_action)
  engine.rules.score(engine.state)
  logging.info("GTP engine ready: %dx%d, komi %g, %s", engine.go.size, engine.go.size, engine.komi, description)
  engine.run(stdin, stdout)
