"""AlphaZero on 9x9 Go (komi 7.5, Tromp-Taylor area scoring, positional superko).
Variants: '' (full) and 'tiny' (5x5, seconds; tests).

A budget for a GPU: 100k train steps x 256 games x 8 plies = 200M positions searched with 32
simulations (~5-10 days on one modern GPU); on 2 CPU cores it is an overnight sketch, not a player.

  python -m jaxai.main --config=configs/go9_alphazero.py --workdir=/tmp/go9
  python -m jaxai.go.gtp --workdir=/tmp/go9        # play it over GTP
"""
from jaxai.tasks import alphazero


def get_config(variant: str = ""):
  config = alphazero.default_config()
  config.board_size = 9
  config.komi = 7.5
  config.num_games = 256
  config.moves_per_collect = 8
  config.search.num_simulations = 32
  config.model.update(dict(blocks=6, channels=64, value_hidden=64))
  config.batch_size = 512
  config.updates_per_step = 2
  config.replay_size = 250_000
  config.min_replay = 20_000
  config.num_train_steps = 100_000
  config.eval_every_steps = 2_000
  config.eval_games = 64
  config.eval_simulations = 64
  config.eval_gnugo_games = 10
  config.gnugo_level = 1
  config.log_every_steps = 50
  config.checkpoint_every_steps = 1_000
  if variant == "tiny":
    import importlib.util, os
    spec = importlib.util.spec_from_file_location(
        "go7_alphazero", os.path.join(os.path.dirname(__file__), "go7_alphazero.py"))
    small = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(small)
    small.tiny(config)
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of go9_alphazero; use '' or 'tiny'.")
  return config
