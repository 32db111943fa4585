"""The GTP engine (jaxai.go.gtp): GTP v2 framing and commands, in process and through `python -m jaxai.gtp`.

Expected scores are counted by hand (Tromp-Taylor area: stones + empty regions reaching one colour only).
"""
import subprocess
import sys

import numpy as np
import pytest

import jaxai
from jaxai.go import coords, gtp
from tests.helpers import REPO_ROOT, cli_env


@pytest.fixture
def engine():
  return gtp.Engine(gtp.random_players(0), size=9, komi=7.5)


def ask(engine, line):
  """The answer to one line: ('=' or '?', text), after checking the framing."""
  answer = engine.handle(line)
  assert answer.endswith("\n\n") and "\n\n" not in answer[:-2], repr(answer)
  assert answer[0] in "=?" and answer[1] == " ", repr(answer)  # no id given: '=' or '?' then a space
  return answer[0], answer[2:-2]


def ok(engine, line):
  status, text = ask(engine, line)
  assert status == "=", f"{line!r} -> ?{text}"
  return text


def fails(engine, line):
  status, text = ask(engine, line)
  assert status == "?", f"{line!r} -> ={text}"
  return text


def board(engine):
  return np.asarray(engine.state.board).reshape(engine.go.size, engine.go.size)


def test_framing_ids_comments_and_blank_lines(engine):
  assert engine.handle("7 protocol_version") == "=7 2\n\n"
  assert engine.handle("protocol_version") == "= 2\n\n"
  assert engine.handle("  \t ") is None and engine.handle("# only a comment") is None
  assert engine.handle("12\tname # the engine's name\r") == "=12 jaxai\n\n"
  assert engine.handle("na\x01me") == "= jaxai\n\n"  # control characters are dropped (GTP 3.1)
  assert engine.handle("3 frobnicate") == "?3 unknown command\n\n"
  assert engine.handle("4 clear_board") == "=4 \n\n"  # an empty result


def test_administrative_commands(engine):
  assert ok(engine, "version") == jaxai.__version__
  assert ok(engine, "list_commands").split("\n") == list(gtp.COMMANDS)
  assert set(gtp.COMMANDS) >= {"protocol_version", "name", "version", "known_command", "list_commands",
                               "boardsize", "clear_board", "komi", "play", "genmove", "undo", "showboard",
                               "final_score", "quit"}
  assert ok(engine, "known_command genmove") == "true"
  assert ok(engine, "known_command frobnicate") == "false"


def test_boardsize(engine):
  assert fails(engine, "boardsize 25") == "unacceptable size"
  assert fails(engine, "boardsize 4") == "unacceptable size"
  assert fails(engine, "boardsize nine").startswith("boardsize is not an integer")
  ok(engine, "play b e5")
  ok(engine, "boardsize 7")
  assert engine.go.size == 7 and not board(engine).any()  # a new, empty board
  rows = [line for line in ok(engine, "showboard").split("\n") if line.strip()[:1].isdigit()]
  assert len(rows) == 7 and rows[0].split()[0] == "7"


def test_malformed_commands_answer_and_keep_running(engine):
  for line in ["play", "play b", "play b e5 e6", "play x e5", "play b e", "play b 5e", "genmove",
               "genmove purple", "komi", "komi seven", "komi nan", "boardsize", "clear_board now", "undo 2",
               "known_command", "final_score please"]:
    fails(engine, line)
  assert ok(engine, "name") == "jaxai" and not board(engine).any()


def test_play_and_illegal_moves(engine):
  ok(engine, "play b E5")
  ok(engine, "play white d4")
  assert board(engine)[4, 4] == 1 and board(engine)[5, 3] == -1  # row 0 is the top (GTP row 9)
  assert fails(engine, "play b e5") == "illegal move"  # occupied
  assert fails(engine, "play b k5") == "illegal move"  # off a 9x9 board
  assert fails(engine, "play b a10") == "illegal move"
  # Suicide: white A1 inside black B1, A2.
  ok(engine, "clear_board")
  for move in ["b b1", "b a2"]:
    ok(engine, f"play {move}")
  assert fails(engine, "play w a1") == "illegal move"
  # Ko: black captures at D5; white may not retake at E5 at once, but may after a move elsewhere.
  ok(engine, "clear_board")
  for move in ["b e6", "b e4", "b f5", "w e5", "w d6", "w c5", "w d4", "b d5"]:  # black d5 captures e5
    ok(engine, f"play {move}")
  assert board(engine)[4, 4] == 0
  assert fails(engine, "play w e5") == "illegal move"
  ok(engine, "play w a1")
  ok(engine, "play b a9")
  ok(engine, "play w e5")  # now legal: it captures d5
  assert board(engine)[4, 3] == 0 and board(engine)[4, 4] == -1


def test_undo_restores_the_position(engine):
  assert fails(engine, "undo") == "cannot undo"
  ok(engine, "play b c3")
  before = ok(engine, "showboard")
  ok(engine, "play w d4")
  ok(engine, "play b e5")
  ok(engine, "undo")
  ok(engine, "undo")
  assert ok(engine, "showboard") == before
  ok(engine, "undo")
  assert not board(engine).any() and int(engine.state.to_play) == 1
  assert fails(engine, "undo") == "cannot undo"


def test_final_score_and_komi(engine):
  assert ok(engine, "final_score") == "W+7.5"  # an empty board: 0 - 0 - 7.5
  ok(engine, "play b e5")
  assert ok(engine, "final_score") == "B+73.5"  # the whole board (81) reaches black only
  ok(engine, "play w a1")
  assert ok(engine, "final_score") == "W+7.5"  # one stone each; the empty region touches both
  ok(engine, "komi 0")
  assert ok(engine, "final_score") == "0"
  ok(engine, "komi -2.5")
  assert ok(engine, "final_score") == "B+2.5"


def test_genmove_plays_legal_moves_to_the_end(engine):
  """A whole game of genmoves: every answer a legal vertex for the colour asked, then passes."""
  passes, colour, moves = 0, "b", 0
  while passes < 2 and moves < 2 * 81:
    legal = engine.rules.legal(engine.state)
    vertex = ok(engine, f"genmove {colour}")
    action = coords.gtp_to_action(vertex, 9)
    assert legal[action], vertex
    if vertex == "pass":
      passes += 1
    else:
      passes = 0
      assert board(engine).reshape(-1)[action] == (1 if colour == "b" else -1)
    colour, moves = ("w" if colour == "b" else "b"), moves + 1
  assert passes == 2 and bool(engine.state.terminated)
  before = engine.state
  assert ok(engine, "genmove b") == "pass" and engine.state is before  # over: nothing played
  assert fails(engine, "play b a1") == "illegal move"


def test_genmove_for_the_colour_not_to_move(engine):
  ok(engine, "play b e5")
  vertex = ok(engine, "genmove b")  # black again: as if white had passed
  assert board(engine).reshape(-1)[coords.gtp_to_action(vertex, 9)] == 1
  assert (board(engine) == 1).sum() == 2 and int(engine.state.to_play) == -1


class _IllegalPlayer:
  """Always proposes E5, legal or not."""

  def __init__(self, go):
    self.go = go

  def select_action(self, state):
    return coords.gtp_to_action("E5", self.go.size)


def test_engine_never_plays_an_illegal_move():
  engine = gtp.Engine(gtp.fixed_player(_IllegalPlayer(gtp.shared_rules(9))), size=9)
  assert ok(engine, "genmove b") == "E5"
  assert ok(engine, "genmove w") == "pass"  # E5 is taken: the engine passes instead
  assert (board(engine) != 0).sum() == 1
  assert fails(engine, "boardsize 13") == "unacceptable size"  # this player knows 9x9 only
  assert ok(engine, "boardsize 9") == ""


def test_cli_over_stdin_stdout():
  commands = ["1 protocol_version", "2 name", "", "# a comment", "3 boardsize 30", "4 boardsize 7", "5 play b d4",
              "6 play w d4", "7 genmove w", "8 final_score", "9 undo", "10 undo", "11 undo", "bogus", "12 showboard",
              "13 quit", "14 name"]
  proc = subprocess.run([sys.executable, "-m", "jaxai.gtp", "--size=9", "--seed=3"], input="\n".join(commands) + "\n",
                        capture_output=True, text=True, env=cli_env(), cwd=REPO_ROOT, timeout=120)
  assert proc.returncode == 0, proc.stderr[-3000:]
  answers = proc.stdout.split("\n\n")
  assert answers[-1] == ""  # every answer ends with a blank line, and nothing follows the last
  answers = answers[:-1]
  assert len(answers) == 14  # one per command up to quit; none for blank or comment lines, none after quit
  assert answers[:6] == ["=1 2", "=2 jaxai", "?3 unacceptable size", "=4 ", "=5 ", "?6 illegal move"]
  assert answers[6].startswith("=7 ") and coords.gtp_to_action(answers[6][3:], 7) != coords.gtp_to_action("d4", 7)
  assert answers[7] == "=8 W+7.5"  # one stone each, one empty region touching both
  assert answers[8:11] == ["=9 ", "=10 ", "?11 cannot undo"]
  assert answers[11] == "? unknown command"
  assert answers[12].startswith("=12 \n") and answers[12].count("\n") >= 9  # 7 rows, 2 letter rows, status
  assert answers[13] == "=13 "


def test_cli_workdir_that_is_not_a_run(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "jaxai.gtp", f"--workdir={tmp_path}"], input="name\n",
                        capture_output=True, text=True, env=cli_env(), cwd=REPO_ROOT, timeout=120)
  assert proc.returncode == 2 and "error:" in proc.stderr and "config.json" in proc.stderr, proc.stderr[-2000:]
  assert proc.stdout == ""
