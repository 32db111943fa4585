"""Match runner (jaxai.go.match): games between GTP engines, refereeing, SGF records, win-rate intervals.

Engines: the in-process random engine, small scripted GTP programs (pass, resign, illegal or unparsable
moves, silence, crashes), GNU Go when installed, and the CLIs of both jaxai.gtp and jaxai.go.match.
Tests with engine processes count this process's children to check that no engine outlives its game.
"""
import contextlib
import os
import shlex
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
from absl import flags

from jaxai.core.errors import UserError
from jaxai.go import gnugo, gtp, match, rules, sgf
from tests.helpers import REPO_ROOT, cli_env

# A GTP program that agrees to everything and answers genmove as its first argument says.
SCRIPTED = textwrap.dedent("""
    import sys, time
    mode = sys.argv[1]
    if mode == "dead":
      sys.exit(1)
    for line in sys.stdin:
      command = line.split()[0] if line.split() else ""
      if command == "genmove":
        if mode == "silent":
          time.sleep(60)
        if mode == "crash":
          sys.exit(1)
        answer = {"resign": "resign", "a1": "A1", "garbage": "hello", "pass": "pass"}[mode]
        print(f"= {answer}", end="\\n\\n", flush=True)
      elif command == "final_score":
        print("? cannot score", end="\\n\\n", flush=True)
      elif command:
        print("= ", end="\\n\\n", flush=True)
      if command == "quit" and mode != "stubborn":
        break
    if mode == "stubborn":  # deaf to quit and to the end of its input
      time.sleep(60)
""")


@pytest.fixture
def engine_script(tmp_path):
  path = tmp_path / "scripted_engine.py"
  path.write_text(SCRIPTED)
  return lambda mode: [sys.executable, str(path), mode]


@pytest.fixture
def scripted(engine_script):
  """Starts scripted engines; those a (failing) test left open are closed after it."""
  started = []

  def start(mode):
    started.append(match.GTPClient(engine_script(mode), name=f"scripted-{mode}"))
    return started[-1]

  yield start
  for client in started:
    client.close()


def children() -> set[int]:
  """The pids of this process's children, zombies (exited, not yet waited for) included: from /proc."""
  pids = set()
  for stat in Path("/proc").glob("[0-9]*/stat"):
    try:
      text = stat.read_text()
    except OSError:  # it exited meanwhile
      continue
    if int(text[text.rindex(")") + 1:].split()[1]) == os.getpid():  # "pid (name) state ppid ..."
      pids.add(int(stat.parent.name))
  return pids


@contextlib.contextmanager
def no_new_children():
  before = children()
  yield
  assert children() - before == set(), "engine processes left behind"


def random_client(seed):
  return match.LocalClient(gtp.Engine(gtp.random_players(seed)), name=f"random-{seed}")


def test_wilson_interval_known_values():
  # Reference values: Wilson score intervals (z = 1.96) as tabulated e.g. by Newcombe (1998), method 3.
  low, high = match.wilson_interval(7, 10)
  assert low == pytest.approx(0.3968, abs=1e-4) and high == pytest.approx(0.8922, abs=1e-4)
  low, high = match.wilson_interval(0, 10)
  assert low == 0 and high == pytest.approx(0.2775, abs=1e-4)
  low, high = match.wilson_interval(81, 263)
  assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
  assert match.wilson_interval(0, 0) == (0.0, 1.0)


def test_random_match_alternates_colours_and_writes_sgf_that_replays(tmp_path):
  a, b = random_client(1), random_client(2)
  lines = []
  result = match.run_match(a, b, games=3, size=9, komi=6.5, sgf_dir=tmp_path, log=lines.append)
  assert result.games == 3 and len(lines) == 3 and result.a_black_games == 2
  files = sorted(tmp_path.glob("*.sgf"))
  assert [f.name for f in files] == ["game_001.sgf", "game_002.sgf", "game_003.sgf"]
  go = rules.Go(9, 6.5)
  records = [sgf.load(path) for path in files]
  finals = sgf.replay_all(records, go)  # every recorded move is legal
  a_wins = 0.0
  for number, (record, final, (a_colour, game)) in enumerate(zip(records, finals, result.results), 1):
    assert a_colour == (1 if number % 2 else -1)
    assert record.size == 9 and record.komi == 6.5 and record.result == game.result
    assert record.moves == game.moves and record.prop("PB") == record.prop("PW") == "jaxai 0.1.0"
    assert game.reason == "score"  # random players neither resign nor play illegal moves
    assert bool(final.terminated)  # two passes or the move limit
    assert record.result == gtp.format_score(float(go.score(final)))  # the referee's Tromp-Taylor score
    assert game.final_scores == {"black": record.result, "white": record.result}  # both engines agree
    a_wins += (game.winner == a_colour) + 0.5 * (game.winner == 0)
  assert result.a_wins == a_wins and result.win_rate == a_wins / 3
  text = match.summary(result, a.name, b.name)
  low, high = result.interval()
  assert f"A wins {a_wins:g} of 3 games" in text and f"{100 * low:.1f}%-{100 * high:.1f}%" in text


@pytest.mark.parametrize("mode, reason, result", [
    ("resign", "resign", "W+R"),
    ("garbage", "forfeit", "W+F"),  # an answer that is not a vertex
    ("crash", "forfeit", "W+F"),
])
def test_scripted_black_loses(scripted, mode, reason, result):
  with no_new_children(), scripted(mode) as black:
    game = match.play_game(black, random_client(0), size=9, timeout=30)
  assert (game.winner, game.reason, game.result) == (-1, reason, result)
  assert game.moves == []


def test_illegal_move_loses(scripted):
  with no_new_children(), scripted("a1") as white:
    game = match.play_game(random_client(0), white, size=9, timeout=30)
  # White's first A1 is legal unless black took it; its second A1 is not: white forfeits.
  assert (game.winner, game.reason, game.result) == (1, "forfeit", "B+F")
  assert "illegal move A1" in game.detail and len(game.moves) in (1, 3)
  assert game.final_scores["white"].startswith("?")  # the scripted engine cannot score


def test_timeout_loses_on_time_and_the_engine_is_replaced(scripted):
  started = []

  def restart(name):
    started.append(name)
    return scripted("resign")

  with no_new_children():  # run_match closed the silent engine that failed, and the one it started.
    silent = scripted("silent")
    result = match.run_match(random_client(0), silent, games=2, size=9, timeout=1.5, log=lambda _: None,
                             restart=restart)
  (colour_1, game_1), (colour_2, game_2) = result.results
  assert (game_1.reason, game_1.result) == ("time", "B+T") and silent.broken
  assert started == ["B"]  # the silent engine was replaced after game 1
  assert (game_2.reason, game_2.result) == ("resign", "W+R")  # B, now black, resigned
  assert result.a_wins == 2


@pytest.mark.parametrize("mode, reason", [
    ("pass", "score"), ("resign", "resign"), ("a1", "forfeit"), ("garbage", "forfeit"), ("silent", "time"),
    ("crash", "forfeit"),
])
def test_a_match_ends_every_engine_it_started(scripted, mode, reason):
  # B crashes in game 1; run_match restarts it as `mode`, black in game 2 (and again if that one fails).
  before = children()
  with scripted("pass") as a, scripted("crash") as b:
    result = match.run_match(a, b, games=3, size=9, timeout=1.0, log=lambda _: None,
                             restart=lambda name: scripted(mode))
    assert children() - before == {a._process.pid}  # only A, the caller's to close, is left
  assert children() - before == set()
  assert [game.reason for _, game in result.results] == ["forfeit", reason, reason]


@pytest.mark.parametrize("failure", ["engine that dies at once", "ctrl-c"])
def test_a_failed_match_ends_every_engine_it_started(scripted, monkeypatch, failure):
  if failure == "ctrl-c":
    play_game, games = match.play_game, []

    def interrupted_in_game_2(*args, **kwargs):
      games.append(None)
      if len(games) == 2:
        raise KeyboardInterrupt
      return play_game(*args, **kwargs)

    monkeypatch.setattr(match, "play_game", interrupted_in_game_2)
  before = children()
  with scripted("pass") as a, scripted("crash") as b:
    with pytest.raises(KeyboardInterrupt if failure == "ctrl-c" else UserError):
      match.run_match(a, b, games=3, size=9, timeout=1.0, log=lambda _: None,
                      restart=lambda name: scripted("pass" if failure == "ctrl-c" else "dead"))
    assert children() - before == {a._process.pid}
  assert children() - before == set()


def test_close_ends_an_engine_deaf_to_quit_and_is_idempotent(scripted):
  with no_new_children():
    engine = scripted("stubborn")
    assert engine.send("name", 10) == ""
    engine.close(timeout=0.2)  # killed once `quit` and the end of its input did not end it
    assert engine._process.returncode is not None and engine._process.stdin.closed
    engine.close()
    with pytest.raises(match.EngineFailure, match="closed"):
      engine.send("name", 10)


def test_main_ends_its_engines_on_ctrl_c(engine_script, monkeypatch):
  options = dict(black=shlex.join(engine_script("pass")), white=shlex.join(engine_script("crash")), games=3,
                 size=9, komi=7.5, max_moves=None, timeout=1.0, sgf_dir=None, engine_stderr=False)
  monkeypatch.setattr(flags, "FLAGS", types.SimpleNamespace(**options))
  run_match = match.run_match

  def interrupted(*args, **kwargs):
    kwargs["restart"]("B")  # a third engine, started through main
    run_match(*args, **kwargs)
    raise KeyboardInterrupt

  monkeypatch.setattr(match, "run_match", interrupted)
  with no_new_children(), pytest.raises(KeyboardInterrupt):
    match.main([])


def test_unplayable_board_size_is_a_user_error():
  with pytest.raises(UserError, match="board"):
    match.play_game(random_client(0), random_client(1), size=25)
  with pytest.raises(UserError, match="refused 'boardsize 13'"):  # the engine knows 9x9 only
    match.play_game(match.LocalClient(gtp.Engine(gtp.fixed_player(gtp.RandomPlayer(rules.Go(9))))),
                    random_client(1), size=13)


@pytest.mark.skipif(not gnugo.available(), reason="GNU Go is not installed (apt-get install gnugo)")
def test_a_game_against_gnugo(tmp_path):
  with no_new_children(), match.GTPClient(gnugo.command(level=0, komi=7.5)) as client:
    result = match.run_match(client, random_client(0), games=1, size=9, sgf_dir=tmp_path, log=lambda _: None)
  (_, game), = result.results
  assert game.reason == "score" and game.winner == 1  # GNU Go (black) beats a random player
  assert game.final_scores["black"] == game.result  # GNU Go counts the same score as the referee
  record = sgf.load(tmp_path / "game_001.sgf")
  assert record.prop("PB").startswith("GNU Go") and record.result == game.result
  sgf.replay(record, rules.Go(9, 7.5))


def test_match_cli(tmp_path):
  ours = f"{sys.executable} -m jaxai.gtp --seed=1"
  other = "gnugo --level 0" if gnugo.available() else f"{sys.executable} -m jaxai.gtp --seed=2"
  proc = subprocess.run([sys.executable, "-m", "jaxai.go.match", f"--black={ours}", f"--white={other}",
                         "--games=2", "--size=7", f"--sgf_dir={tmp_path}", "--timeout=60"],
                        capture_output=True, text=True, env=cli_env(), cwd=REPO_ROOT, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "game 1: black A, white B" in proc.stdout and "game 2: black B, white A" in proc.stdout
  assert "A wins" in proc.stdout and "95% Wilson interval" in proc.stdout
  records = [sgf.load(tmp_path / f"game_00{n}.sgf") for n in (1, 2)]  # replays are checked above
  assert records[0].prop("PB") == records[1].prop("PW") == "jaxai 0.1.0"
  assert all(record.size == 7 and record.moves and record.winner in (1, -1) for record in records)


@pytest.mark.skipif(not gnugo.available(), reason="GNU Go is not installed (apt-get install gnugo)")
def test_gnugo_shorthand_gets_the_referee_options():
  argv = gnugo.complete(["gnugo", "--level", "3", "--capture-all-dead"])
  assert argv[1:] == ["--level", "3", "--capture-all-dead", "--mode", "gtp", "--chinese-rules",
                      "--positional-superko"]
  assert gnugo.complete(["gnugo", "--mode", "gtp"]).count("--mode") == 1


def test_missing_engine_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match="cannot start engine"):
    match.GTPClient(f"{tmp_path}/no_such_engine")
  with pytest.raises(UserError, match="empty"):
    match.GTPClient("")


def test_missing_gnugo_says_how_to_install_it(monkeypatch, tmp_path):
  monkeypatch.setenv("PATH", str(tmp_path))
  monkeypatch.setattr(gnugo, "DEBIAN_PATH", str(tmp_path / "gnugo"))
  assert not gnugo.available()
  with pytest.raises(UserError, match="apt-get install gnugo"):
    match.GTPClient("gnugo --level 1")
