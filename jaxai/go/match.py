"""Matches between two GTP engines, refereed by the JAX rules:

  python -m jaxai.go.match --black="python -m jaxai.gtp --workdir=runs/az" \\
      --white="gnugo --level 1" --games=20 --size=9 --komi=7.5 --sgf_dir=/tmp/games

Engine A is the --black command and B the --white one in game 1; colours alternate from game to game.
The referee (a rules.Go) asks the side to move for `genmove`, checks the move, and tells the other side with
`play`. A game ends on resignation, an illegal or unparsable move (a loss), a timeout or a crashed engine
(a loss), two passes in a row or the referee's move limit; the last two are scored by Tromp-Taylor area
(all stones on the board count as alive). Both engines are asked for `final_score`, which is recorded.
Each game is written as SGF; the summary gives A's win rate with a Wilson 95% interval (draws count half).

A command whose program is the bare word `gnugo` finds GNU Go where Debian puts it (/usr/games/gnugo)
when it is not on PATH, and gets `--mode gtp --chinese-rules --positional-superko --capture-all-dead`
unless given: the options that suit this referee (see jaxai.go.gnugo).
"""
import contextlib
import dataclasses
import datetime
import functools
import math
import queue
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from jaxai.errors import UserError
from jaxai.go import coords, gnugo, gtp, rules, sgf


class EngineFailure(Exception):
  """An engine that exited (or did not answer in time: EngineTimeout)."""


class EngineTimeout(EngineFailure):
  """An engine that did not answer in time."""


class GTPClient:
  """A GTP engine in a subprocess. send() returns the answer text, raises gtp.GTPError for `?` answers.

  The engine runs until close(), which every owner must call on every path: use `with GTPClient(...) as
  engine:` (the engine only sees the end of its input once close() shuts the pipe).
  """

  def __init__(self, argv, name: str | None = None, stderr=subprocess.DEVNULL):
    argv = shlex.split(argv) if isinstance(argv, str) else list(argv)
    if not argv:
      raise UserError("an engine command is empty")
    if argv[0] == "gnugo":
      argv = gnugo.complete(argv)
    self.argv = argv
    try:
      self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                       text=True, bufsize=1)
    except OSError as e:
      raise UserError(f"cannot start engine {shlex.join(argv)!r}: {e}") from None
    self._lines = queue.Queue()
    self._reader = threading.Thread(target=_read, args=(self._process.stdout, self._lines), daemon=True)
    self._reader.start()
    self.name = name or shlex.join(argv)
    self.broken = False  # it timed out or exited: unusable
    self._closed = False

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def send(self, command: str, timeout: float | None = None) -> str:
    """The answer to one command; EngineFailure (and `broken` set) on timeout or exit."""
    if self.broken or self._closed:
      raise EngineFailure(f"{self.name} failed earlier" if self.broken else f"{self.name} is closed")
    try:
      return self._send(command, timeout)
    except EngineFailure:
      self.broken = True
      raise

  def _send(self, command: str, timeout: float | None) -> str:
    try:
      self._process.stdin.write(command + "\n")
      self._process.stdin.flush()
    except (BrokenPipeError, OSError):
      raise EngineFailure(f"{self.name} exited") from None
    deadline = None if timeout is None else time.monotonic() + timeout
    lines = []
    while True:
      try:
        line = self._lines.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
      except queue.Empty:
        raise EngineTimeout(f"{self.name} gave no answer to {command!r} within {timeout:g} s") from None
      if line is None:
        self._lines.put(None)
        raise EngineFailure(f"{self.name} exited while answering {command!r}")
      line = line.rstrip("\r\n")
      if not lines and not line.startswith(("=", "?")):
        continue  # noise before an answer.
      if not line.strip() and lines:
        break
      lines.append(line)
    return _result(lines)

  def close(self, timeout: float = 5.0):
    """Ends the engine and reaps it; idempotent, and it ends the engine even when interrupted (Ctrl-C).

    A working engine gets `quit` and the end of its input, and `timeout` seconds to exit; a broken one (or
    one still running after that) is killed.
    """
    if self._closed:
      return
    self._closed = True
    try:
      if self._process.poll() is None and not self.broken:
        try:
          self._send("quit", timeout)
        except (EngineFailure, gtp.GTPError):
          pass
        _close_quietly(self._process.stdin)
        try:
          self._process.wait(timeout)
        except subprocess.TimeoutExpired:
          pass
    finally:
      if self._process.poll() is None:
        self._process.kill()
      self._process.wait()
      _close_quietly(self._process.stdin)
      self._reader.join(1.0)  # it closes stdout at the end of the output, which a dead engine has reached.


def _read(stdout, lines: queue.Queue):
  """The reader thread: the engine's output lines, then None once it exited; it closes the pipe."""
  with stdout:
    for line in stdout:
      lines.put(line)
  lines.put(None)


def _close_quietly(pipe):
  try:
    pipe.close()
  except OSError:  # unwritten input of an engine that exited.
    pass


class LocalClient:
  """A gtp.Engine in this process, behind the same send() as GTPClient (fast for tests and sweeps)."""

  def __init__(self, engine: gtp.Engine, name: str | None = None):
    self.engine = engine
    self.name = name or engine.name
    self._closed = False

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()

  def send(self, command: str, timeout: float | None = None) -> str:
    del timeout
    return _result(self.engine.handle(command).rstrip("\n").split("\n"))

  def close(self):
    if not self._closed:
      self._closed = True
      self.engine.handle("quit")


def _result(lines: list[str]) -> str:
  """The text of a GTP answer (lines of `=[id] text` / `?[id] message`); raises GTPError for `?`."""
  first = lines[0]
  head, _, rest = first.partition(" ")
  text = "\n".join([rest] + lines[1:]).strip()
  if head.startswith("?"):
    raise gtp.GTPError(text)
  return text


@dataclasses.dataclass
class GameResult:
  winner: int  # 1 black, -1 white, 0 draw
  reason: str  # "score", "resign", "time", "forfeit" (illegal move, crash, rejected a legal move)
  detail: str  # one line for people
  score: float | None  # Tromp-Taylor black - white - komi when the game was scored
  moves: list[tuple[int, int]]  # (colour, action)
  final_scores: dict[str, str]  # each engine's final_score answer ("black", "white")

  @property
  def result(self) -> str:
    """SGF RE: "B+3.5", "W+R", "B+T", "W+F", "0"."""
    if self.reason == "score":
      return gtp.format_score(self.score)
    if self.winner == 0:
      return "0"
    return ("B+" if self.winner == 1 else "W+") + {"resign": "R", "time": "T"}.get(self.reason, "F")


def play_game(black, white, size: int = 9, komi: float = 7.5, max_moves: int | None = None,
              timeout: float | None = 60.0, setup_timeout: float | None = 300.0) -> GameResult:
  """One game between two clients (GTPClient / LocalClient).

  timeout: seconds per move command (genmove, play, final_score); setup_timeout: for the commands before
  the game, which a freshly started engine answers only once it has loaded (and compiled) its player.
  """
  go = _referee(size, max_moves)
  referee = gtp.compiled(go)
  for client in (black, white):
    for command in (f"boardsize {size}", "clear_board", f"komi {komi:g}"):
      try:
        client.send(command, setup_timeout)
      except gtp.GTPError as e:
        raise UserError(f"{client.name} refused {command!r}: {e}") from None
      except EngineFailure as e:
        raise UserError(f"{client.name} failed before the game started: {e}") from None
  state, moves = go.init(), []
  clients = {1: black, -1: white}

  def end(winner, reason, detail, score=None):
    finals = {}
    for colour_name, client in (("black", black), ("white", white)):
      if getattr(client, "broken", False):
        continue
      try:
        finals[colour_name] = client.send("final_score", timeout)
      except (gtp.GTPError, EngineFailure) as e:
        finals[colour_name] = f"? {e}"
    return GameResult(winner, reason, detail, score, moves, finals)

  while not bool(state.terminated):
    colour = int(state.to_play)
    mover, other = clients[colour], clients[-colour]
    letter, side = ("b", "black") if colour == 1 else ("w", "white")
    try:
      answer = mover.send(f"genmove {letter}", timeout).strip()
    except EngineFailure as e:
      return end(-colour, "time" if isinstance(e, EngineTimeout) else "forfeit", f"{side} ({mover.name}): {e}")
    except gtp.GTPError as e:
      return end(-colour, "forfeit", f"{side} ({mover.name}) failed genmove: {e}")
    if answer.lower() == "resign":
      return end(-colour, "resign", f"{side} resigned")
    try:
      action = coords.gtp_to_action(answer, size)
    except ValueError:
      return end(-colour, "forfeit", f"{side} ({mover.name}) answered genmove with {answer!r}")
    if not referee.legal(state)[action]:
      return end(-colour, "forfeit", f"{side} ({mover.name}) played the illegal move {answer}")
    try:
      other.send(f"play {letter} {answer}", timeout)
    except (gtp.GTPError, EngineFailure) as e:
      return end(colour, "forfeit", f"{'white' if colour == 1 else 'black'} ({other.name}) failed "
                 f"`play {letter} {answer}`: {e}")
    state = referee.step(state, action)
    moves.append((colour, action))
  score = float(referee.score(state)) + go.komi - komi  # the referee's own komi replaced by the match's
  winner = int(np.sign(score))
  how = "two passes" if int(state.passes) >= 2 else f"move limit {int(state.num_moves)}"
  return end(winner, "score", f"{how}; Tromp-Taylor {gtp.format_score(score)}", score)


@functools.lru_cache(maxsize=None)
def _referee(size, max_moves):
  """The rules.Go of a setting, made once so its jitted functions compile once (komi: see play_game)."""
  try:
    if max_moves is None or max_moves == 2 * size * size:  # the rules' default: share the engines' Go.
      return gtp.shared_rules(size)
    return rules.Go(size, max_moves=max_moves)
  except ValueError as e:
    raise UserError(f"no game on this board: {e}") from None


def to_sgf(game: GameResult, size: int, komi: float, black_name: str, white_name: str) -> sgf.Game:
  comment = [game.detail] + [f"{colour} engine's final_score: {text}" for colour, text in game.final_scores.items()]
  properties = {"PB": [black_name], "PW": [white_name], "RU": ["Tromp-Taylor (positional superko, no suicide)"],
                "DT": [datetime.date.today().isoformat()], "AP": ["jaxai.go.match"], "C": ["\n".join(comment)]}
  return sgf.Game(size=size, komi=komi, moves=list(game.moves), result=game.result, properties=properties)


@dataclasses.dataclass
class MatchResult:
  games: int = 0
  a_wins: float = 0.0  # draws count half
  a_black_wins: float = 0.0
  a_black_games: int = 0
  results: list = dataclasses.field(default_factory=list)  # (a_colour, GameResult) per game

  @property
  def win_rate(self) -> float:
    return self.a_wins / self.games if self.games else math.nan

  def interval(self, z: float = 1.96) -> tuple[float, float]:
    return wilson_interval(self.a_wins, self.games, z)


def wilson_interval(wins: float, games: int, z: float = 1.96) -> tuple[float, float]:
  """Wilson score interval of a win rate (z = 1.96: 95%); (0, 1) with no games."""
  if games == 0:
    return 0.0, 1.0
  p = wins / games
  centre = (p + z * z / (2 * games)) / (1 + z * z / games)
  half = z / (1 + z * z / games) * math.sqrt(p * (1 - p) / games + z * z / (4 * games * games))
  return max(0.0, centre - half), min(1.0, centre + half)


def run_match(a, b, games: int, size: int = 9, komi: float = 7.5, max_moves: int | None = None,
              timeout: float | None = 60.0, sgf_dir=None, log=print, restart=None) -> MatchResult:
  """Plays `games` games, A black in the odd-numbered ones (1, 3, ...), and writes game_NNN.sgf files.

  a, b: clients, which stay the caller's to close. restart(name) -> client, if given, replaces an engine that
  failed (timeout, crash); the clients it returns are closed here, however the match ends.
  """
  if sgf_dir is not None:
    Path(sgf_dir).mkdir(parents=True, exist_ok=True)
  match = MatchResult()
  clients = {"A": a, "B": b}
  with contextlib.ExitStack() as restarted:  # closes them on every path: normal end, exception, Ctrl-C.
    for number in range(1, games + 1):
      a_colour = 1 if number % 2 == 1 else -1
      black, white = (clients["A"], clients["B"]) if a_colour == 1 else (clients["B"], clients["A"])
      game = play_game(black, white, size, komi, max_moves, timeout)
      a_points = 0.5 if game.winner == 0 else float(game.winner == a_colour)
      match.games += 1
      match.a_wins += a_points
      match.a_black_games += a_colour == 1
      match.a_black_wins += a_points if a_colour == 1 else 0.0
      match.results.append((a_colour, game))
      if sgf_dir is not None:
        record = to_sgf(game, size, komi, _identify(black), _identify(white))
        sgf.dump(record, Path(sgf_dir) / f"game_{number:03d}.sgf")
      log(f"game {number}: black {'A' if a_colour == 1 else 'B'}, white {'B' if a_colour == 1 else 'A'}: "
          f"{game.result} after {len(game.moves)} moves ({game.detail})")
      for name, client in clients.items():
        if getattr(client, "broken", False):  # its state (or a late answer) would spoil the next game.
          client.close()
          if restart is None:
            log(f"engine {name} failed; the match stops after {number} games")
            return match
          if number < games:  # (an engine may take minutes to start)
            clients[name] = restart(name)
            restarted.callback(clients[name].close)
  return match


def _identify(client) -> str:
  """ "<name> <version>" as the engine reports them, else the client's name."""
  try:
    return f"{client.send('name', 10)} {client.send('version', 10)}".strip() or client.name
  except (gtp.GTPError, EngineFailure):
    return client.name


def summary(match: MatchResult, a_name: str, b_name: str) -> str:
  low, high = match.interval()
  white_games = match.games - match.a_black_games
  return (f"A = {a_name}\nB = {b_name}\n"
          f"A wins {match.a_wins:g} of {match.games} games: {100 * match.win_rate:.1f}% "
          f"(95% Wilson interval {100 * low:.1f}%-{100 * high:.1f}%); "
          f"as black {match.a_black_wins:g}/{match.a_black_games}, "
          f"as white {match.a_wins - match.a_black_wins:g}/{white_games}")


def main(argv):
  del argv
  from absl import flags
  FLAGS = flags.FLAGS
  clients = contextlib.ExitStack()  # closes every engine started, even when one close is interrupted.
  try:
    if FLAGS.games < 1:
      raise UserError(f"--games must be at least 1, got {FLAGS.games}")
    for flag in ("black", "white"):
      if not getattr(FLAGS, flag):
        raise UserError(f"--{flag} is required: the command line of a GTP engine")
    stderr = None if FLAGS.engine_stderr else subprocess.DEVNULL
    commands = {"A": FLAGS.black, "B": FLAGS.white}

    def start(name):
      return clients.enter_context(GTPClient(commands[name], stderr=stderr))

    a, b = start("A"), start("B")
    names = a.name, b.name
    match = run_match(a, b, games=FLAGS.games, size=FLAGS.size, komi=FLAGS.komi, max_moves=FLAGS.max_moves,
                      timeout=FLAGS.timeout, sgf_dir=FLAGS.sgf_dir, restart=start)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  finally:
    clients.close()
  print(summary(match, *names))


def _define_flags():
  from absl import flags
  flags.DEFINE_string("black", None, "Command of engine A (black in game 1), e.g. 'python -m jaxai.gtp'.")
  flags.DEFINE_string("white", None, "Command of engine B (white in game 1), e.g. 'gnugo --level 1'.")
  flags.DEFINE_integer("games", 10, "Games to play; colours alternate.")
  flags.DEFINE_integer("size", 9, "Board size.")
  flags.DEFINE_float("komi", 7.5, "Komi (points for white).")
  flags.DEFINE_integer("max_moves", None, "Referee's move limit, passes included (default 2 * size * size); "
                       "games reaching it are scored as they stand.")
  flags.DEFINE_float("timeout", 120.0, "Seconds an engine may take for one move (genmove, play) before it "
                     "loses on time; engines get 300 s to start up (answer the first commands of a game).")
  flags.DEFINE_string("sgf_dir", None, "Directory for game_NNN.sgf records (unset: none written).")
  flags.DEFINE_bool("engine_stderr", False, "Show the engines' stderr (logs) instead of discarding it.")


if __name__ == "__main__":
  from absl import app
  _define_flags()
  app.run(main)
