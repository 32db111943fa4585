"""Serve a Go player over GTP v2: python -m jaxai.gtp [--workdir=RUN] [--size=9 --komi=7.5 ...]

With --workdir it plays the latest checkpoint of an AlphaZero run (jaxai.tasks.alphazero.load_agent);
without, a random player (uniform over legal moves that do not fill its own eyes). Commands come on
stdin, answers go to stdout, logs to stderr; the engine is jaxai.go.gtp.Engine (the commands it knows
and its framing are described there).
"""
import sys

from absl import app, flags

_WORKDIR = flags.DEFINE_string("workdir", None, "An AlphaZero run's workdir: plays its latest checkpoint. "
                               "Unset: a random player.")
_SIZE = flags.DEFINE_integer("size", 9, "Board size at start (the random player accepts boardsize 5..19; an "
                             "agent plays its own size only).")
_KOMI = flags.DEFINE_float("komi", 7.5, "Komi at start (GTP `komi` changes it); used by final_score.")
_SIMULATIONS = flags.DEFINE_integer("num_simulations", None,
                                    "MCTS simulations per move for --workdir (default: the run's).")
_SEED = flags.DEFINE_integer("seed", 0, "Random player's seed.")


def make_engine():
  """The engine of the flags: an agent restored from --workdir, else a random player."""
  from jaxai.errors import UserError
  from jaxai.go import gtp
  if not _WORKDIR.value:
    return gtp.Engine(gtp.random_players(_SEED.value), _SIZE.value, _KOMI.value), "random player"
  from jaxai.tasks import alphazero  # only here: the random player needs no training code.
  options = {} if _SIMULATIONS.value is None else {"num_simulations": _SIMULATIONS.value}
  player = alphazero.load_agent(_WORKDIR.value, **options)
  if flags.FLAGS["size"].present and _SIZE.value != player.go.size:
    raise UserError(f"--size={_SIZE.value}, but the run in {_WORKDIR.value} plays "
                    f"{player.go.size}x{player.go.size}: leave --size out.")
  return gtp.Engine(gtp.fixed_player(player), player.go.size, _KOMI.value), f"agent from {_WORKDIR.value}"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
  from absl import logging
  from jaxai.core import logs
  from jaxai.errors import UserError
  from jaxai.go import gtp
  logs.quiet_libraries()
  logging.use_absl_handler()
  try:
    engine, description = make_engine()
  except (UserError, ValueError) as e:  # ValueError: a board size the rules do not support.
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  gtp.serve(engine, description)


if __name__ == "__main__":
  app.run(main)
