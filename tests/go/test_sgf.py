"""SGF reading and writing (jaxai.go.sgf) on the 324 real 19x19 records of ../shared/data/go_sgf.

References: the dataset's index.csv (written with the sgfmill parser) for each record's RE, PB, PW and
main-line move count; GNU Go (`loadsgf`, `list_stones`) for the final position of replayed games.
"""
import csv
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from jaxai.go import coords, gnugo, rules, sgf

SGF_DIR = Path(os.environ.get("GO_SGF_DIR") or Path(__file__).resolve().parents[3] / "shared" / "data" / "go_sgf")
if not SGF_DIR.is_dir():
  pytest.fail(f"{SGF_DIR} not found: put the shared data beside the checkout (../shared/data/go_sgf) "
              "or point $GO_SGF_DIR at the records.", pytrace=False)

PATHS = sorted(p for p in SGF_DIR.rglob("*") if p.suffix.lower() == ".sgf")
GAMES = {str(p.relative_to(SGF_DIR)): sgf.load(p) for p in PATHS}
INDEX = {row["path"]: row for row in csv.DictReader(open(SGF_DIR / "index.csv", encoding="utf-8"))}


def test_every_record_parses_and_matches_the_index():
  assert len(GAMES) == 324 and set(GAMES) == set(INDEX)
  for name, game in GAMES.items():
    row = INDEX[name]
    assert game.size == 19, name
    assert game.result == row["RE"] and game.prop("PB") == row["PB"] and game.prop("PW") == row["PW"], name
    # The index's reader counted `tt` (our pass on boards up to 19x19) as a point, and `[]` as a pass.
    tt_moves = (SGF_DIR / name).read_text(encoding="utf-8").count("[tt]")
    played = sum(action != 19 * 19 for _, action in game.moves)
    assert played == int(row["moves"]) - tt_moves, name
    assert game.winner == (1 if row["RE"].startswith("B+") else -1), name


def test_komi_quirks():
  komis = {name: game.komi for name, game in GAMES.items()}
  raw = {name: (SGF_DIR / name).read_text(encoding="utf-8") for name in GAMES}
  chinese = [name for name in GAMES if "KM[375]" in raw[name]]
  assert len(chinese) == 8 and all(komis[name] == 7.5 for name in chinese)  # 3 3/4 stones
  missing = [name for name in GAMES if "KM[" not in raw[name]]
  assert len(missing) == 5 and all(komis[name] is None for name in missing)  # the Fan Hui games
  assert all(name.startswith("AI/AlphaGo/FH vs AG") for name in missing)
  assert sorted(set(komis.values()) - {None}) == [6.5, 7.5]
  assert sum(name.endswith(".SGF") for name in GAMES) == 108


def test_passes_variations_and_missing_size():
  for name, game in GAMES.items():  # passes are written B[tt] here (B[] is covered below).
    recorded = len(re.findall(r";\s*[BW]\[(?:tt)?\]", (SGF_DIR / name).read_text(encoding="utf-8")))
    assert sum(action == 19 * 19 for _, action in game.moves) == recorded, name
  assert sum(any(action == 19 * 19 for _, action in game.moves) for game in GAMES.values()) == 2
  # Main line only: the Meng Tailing game's side variations ("Operator error. See variation.") are dropped.
  game = GAMES["AI/master/09-2016.12.29-Meng_Tailing-Magist.sgf"]
  assert len(game.moves) == int(INDEX["AI/master/09-2016.12.29-Meng_Tailing-Magist.sgf"]["moves"])
  no_size = [n for n in GAMES if "SZ[" not in (SGF_DIR / n).read_text()]
  assert no_size and all(GAMES[n].size == 19 for n in no_size)


def test_syntax_edge_cases():
  text = ("(;GM[1]FF[3]SZ[9]KM[0.5]HA[2]AddBlack[cc:cd][gg]AW[ee]PL[W]PB[a \\] b\\\\]C[soft\\\nbreak]"
          ";W[aa];B[tt]\n(;W[]C[main];B[ii])(;W[bb]))")
  game = sgf.loads(text)
  assert game.size == 9 and game.komi == 0.5 and game.handicap == 2
  assert game.black_setup == [2 * 9 + 2, 3 * 9 + 2, 6 * 9 + 6] and game.white_setup == [4 * 9 + 4]
  assert game.to_play == -1 and game.first_player == -1
  assert game.prop("PB") == "a ] b\\" and game.prop("C") == "softbreak"
  assert game.moves == [(-1, 0), (1, 81), (-1, 81), (1, 80)]  # tt = pass on 9x9; the first variation
  assert sgf.loads(sgf.dumps(game)) == game
  with pytest.raises(sgf.SGFError, match="off the 9x9"):
    sgf.loads("(;SZ[9];B[jj])")
  with pytest.raises(sgf.SGFError, match="not Go"):
    sgf.loads("(;GM[3];B[aa])")
  with pytest.raises(sgf.SGFError, match="missing"):
    sgf.loads("(;SZ[9];B[aa]")


def test_non_utf8_records_decode_as_their_charset_says(tmp_path):
  (tmp_path / "gb.sgf").write_bytes("(;CA[GB2312]SZ[9]PB[柯洁];B[ee])".encode("gb2312"))
  assert sgf.load(tmp_path / "gb.sgf").prop("PB") == "柯洁"
  (tmp_path / "latin.sgf").write_bytes("(;SZ[9]PW[Müller];B[ee])".encode("latin-1"))
  assert sgf.load(tmp_path / "latin.sgf").prop("PW") == "Müller"


def test_round_trip_of_every_record():
  for name, game in GAMES.items():
    assert sgf.loads(sgf.dumps(game)) == game, name


def test_write_from_moves_reads_back(tmp_path):
  moves = [(1, 40), (-1, 81), (1, 0), (-1, 80), (1, 81), (-1, 81)]
  game = sgf.Game(size=9, komi=7.5, moves=moves, result="W+7.5", properties={"PB": ["jaxai"], "C": ["x]y"]})
  sgf.dump(game, tmp_path / "g.sgf")
  text = (tmp_path / "g.sgf").read_text()
  assert text.startswith("(;GM[1]FF[4]CA[UTF-8]SZ[9]KM[7.5]RE[W+7.5]") and ";B[ee];W[];B[aa];W[ii]" in text
  assert sgf.load(tmp_path / "g.sgf") == game


def test_every_record_replays_legally_under_simple_ko():
  """All 324 games in one vmapped scan: compiling it is most of the time (positional superko, whose scan
  costs ~4x more to run, on the quirky records below; all 324 pass under it too, ~30 s)."""
  go = rules.Go(19, 7.5, max_moves=2 * 19 * 19, superko=False)
  states = sgf.replay_all(list(GAMES.values()), go)
  for (name, game), state in zip(GAMES.items(), states):
    assert int(state.num_moves) >= len(game.moves), name
    assert not bool(state.terminated), name  # resignations and agreed scores, no two passes in a row


# Records with quirks: passes as B[] and as B[tt], variations, non-alternating moves, KM[375].
QUIRKY = ["AI/AlphaGo Zero/Figure 5 - AlphaGo Zero Timeline/Fig5c_Game1.sgf",
          "AI/AlphaGo Zero/Extended Data Figure 5 - AlphaGo Zero 40 block self-play games/Game_001.sgf",
          "AI/master/09-2016.12.29-Meng_Tailing-Magist.sgf",
          "AI/2018 Tencent World AI WEIQI Competition/R 4-1-1 Dolbaram vs AQ.SGF",
          "AI/2018 Tencent World AI WEIQI Competition/S 1-4 Golaxy vs ELFOpenGo.SGF",
          "AI/AlphaGo/LS vs AG - G4 - English.sgf"]


def test_quirky_records_replay_under_positional_superko_and_match_gnugo(tmp_path):
  states = sgf.replay_all([GAMES[name] for name in QUIRKY])
  if not gnugo.available():
    pytest.skip("GNU Go is not installed (apt-get install gnugo): final positions not cross-checked")
  for number, (name, state) in enumerate(zip(QUIRKY, states)):
    path = tmp_path / f"{number}.sgf"  # our writer's output: GNU Go cannot open names with spaces.
    sgf.dump(GAMES[name], path)
    answer = subprocess.run([gnugo.find(), "--mode", "gtp"], input=f"loadsgf {path}\nlist_stones black\n"
                            "list_stones white\nquit\n", capture_output=True, text=True, timeout=60).stdout
    blocks = [block for block in answer.split("\n\n") if block.strip()]
    assert len(blocks) == 4 and all(block.startswith("=") for block in blocks), answer
    board = np.asarray(state.board)
    for colour, block in ((1, blocks[1]), (-1, blocks[2])):
      expected = sorted(coords.gtp_to_action(v, 19) for v in block[1:].split())
      assert sorted(np.flatnonzero(board == colour).tolist()) == expected, (name, colour)


def test_illegal_record_is_reported_with_its_move_number():
  game = sgf.loads("(;SZ[9];B[ee];W[ee])")
  with pytest.raises(sgf.IllegalMoveError, match="move 2") as info:
    sgf.replay(game)
  assert info.value.move_number == 2
