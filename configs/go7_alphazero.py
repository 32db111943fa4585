"""AlphaZero on 7x7 Go (komi 7.5, Tromp-Taylor): the small board for quick experiments.
Variants: '' (~25 min on 2 shared CPU cores: beats a random player 100/100, loses to GNU Go;
benchmarks/go_strength.py) and 'tiny' (5x5, seconds; tests).

  python -m jaxai.main --config=configs/go7_alphazero.py --workdir=/tmp/go7
  python -m jaxai.gtp --workdir=/tmp/go7           # play it over GTP
"""
from jaxai.tasks import alphazero


def get_config(variant: str = ""):
  config = alphazero.default_config()
  config.board_size = 7
  config.komi = 7.5
  config.num_games = 64
  config.moves_per_collect = 8
  config.search.num_simulations = 16
  config.model.update(dict(blocks=4, channels=32, value_hidden=32))
  config.replay_batch_size = 256
  config.updates_per_step = 2
  config.replay_size = 40_000
  config.min_replay = 2_000
  config.num_train_steps = 800
  config.eval_every_steps = 200
  config.eval_games = 32
  config.eval_simulations = 32
  config.eval_gnugo_games = 2
  config.gnugo_level = 1
  config.log_every_steps = 10
  config.checkpoint_every_steps = 200
  if variant == "tiny":
    tiny(config)
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of go7_alphazero; use '' or 'tiny'.")
  return config


def tiny(config):
  """5x5, a one-block network, games cut at 12 plies: a few seconds end to end."""
  config.board_size = 5
  config.max_moves = 12
  config.history_length = 2
  config.num_games = 4
  config.moves_per_collect = 4
  config.search.update(dict(num_simulations=4, max_num_considered_actions=4))
  config.model.update(dict(blocks=1, channels=8, value_hidden=8))
  config.replay_batch_size = 16
  config.replay_size = 256
  config.min_replay = 16
  config.num_train_steps = 8
  config.eval_every_steps = 4
  config.eval_games = 4
  config.eval_simulations = 2
  config.eval_gnugo_games = 0
  config.log_every_steps = 2
  config.checkpoint_every_steps = 4
