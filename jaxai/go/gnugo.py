"""GNU Go as a GTP opponent: where the binary is and the command line that starts it.

Debian/Ubuntu install it with `apt-get install gnugo` as /usr/games/gnugo, which is often not on PATH.
The command line adds two options to the usual `--mode gtp --chinese-rules --komi K --level N` so that
its games are judged fairly by jaxai.go.match's Tromp-Taylor referee:
- `--positional-superko`: the referee's ko rule (GNU Go forbids only simple ko by default, and a move
  that repeats an earlier position would count as an illegal move, hence a loss);
- `--capture-all-dead`: it removes dead stones before passing, as area scoring without agreement needs
  (otherwise its dead stones count as alive).
"""
import os
import shlex
import shutil

from jaxai.errors import UserError

DEBIAN_PATH = "/usr/games/gnugo"


def find() -> str:
  """The path of the gnugo binary (PATH first, then Debian's /usr/games); UserError if there is none."""
  path = shutil.which("gnugo")
  if path:
    return path
  if os.access(DEBIAN_PATH, os.X_OK):
    return DEBIAN_PATH
  raise UserError("GNU Go is not installed: install it with `apt-get install gnugo` (Debian/Ubuntu; the binary "
                  f"lands in {DEBIAN_PATH}) or put a `gnugo` binary on PATH.")


def available() -> bool:
  try:
    find()
  except UserError:
    return False
  return True


def command(level: int = 1, komi: float = 7.5, size: int | None = None, referee_options: bool = True) -> list[str]:
  """argv of GNU Go speaking GTP. level: 0 (fastest) .. 10 (default, strongest)."""
  if not 0 <= level <= 10:
    raise UserError(f"GNU Go's level goes from 0 to 10, got {level}")
  argv = [find(), "--mode", "gtp", "--chinese-rules", "--komi", f"{komi:g}", "--level", str(level)]
  if size is not None:
    argv += ["--boardsize", str(size)]
  if referee_options:
    argv += ["--positional-superko", "--capture-all-dead"]
  return argv


def command_line(**kwargs) -> str:
  """command(**kwargs) as one shell-quoted string, e.g. for `python -m jaxai.go.match --white=...`."""
  return shlex.join(command(**kwargs))


def complete(argv: list[str]) -> list[str]:
  """A user's `gnugo ...` argv with the binary located and, if absent, GTP mode and the options above."""
  argv = [find()] + list(argv[1:])
  if "--mode" not in argv:
    argv += ["--mode", "gtp"]
  for option in ("--chinese-rules", "--positional-superko", "--capture-all-dead"):
    if option not in argv:
      argv.append(option)
  return argv
