"""AlphaZero on 9x9 Go (komi 7.5, Tromp-Taylor area scoring, positional superko).
Variants: '' (full) and 'tiny' (5x5, seconds; tests).

A budget for a GPU: 100k train steps x 256 games x 8 plies = 205M moves, each searched with 32
simulations: ~6.8G evaluations of a ~80 MFLOP network (~10 h of network time at 15 TFLOP/s achieved)
and 26M sequential search iterations (~1 ms each): about a day on one GPU (an estimate, not measured).
On 2 CPU cores a step costs ~80x a 7x7 step (~100 s; months in all): use configs/go7_alphazero.py there.

  python -m jaxai.main --config=configs/go9_alphazero.py --workdir=/tmp/go9
  python -m jaxai.gtp --workdir=/tmp/go9           # play it over GTP
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
  config.replay_batch_size = 512
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
  if variant == "tiny":  # 5x5, a one-block network, games cut at 12 plies: seconds end to end.
    config.update(dict(board_size=5, max_moves=12, history_length=2, num_games=4, moves_per_collect=4,
                       replay_batch_size=16, replay_size=256, min_replay=16, num_train_steps=8,
                       eval_every_steps=4, eval_games=4, eval_simulations=2, eval_gnugo_games=0,
                       log_every_steps=2, checkpoint_every_steps=4, updates_per_step=1))
    config.search.update(dict(num_simulations=4, max_num_considered_actions=4))
    config.model.update(dict(blocks=1, channels=8, value_hidden=8))
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of go9_alphazero; use '' or 'tiny'.")
  return config
