"""Double DQN on Atari (EnvPool, default Breakout-v5; `--config.env_id=Pong-v5`). Variants: '' and 'tiny'.

CleanRL's `dqn_atari_jax` hyperparameters: 1 env, replay batch 32, lr 1e-4, gamma 0.99, target
copied every 1,000 env steps, epsilon 1 -> 0.01 over the first 10% of 10M steps, learning starts at
80k steps, one gradient step per 4 env steps, Nature-CNN, MSE TD loss (`--config.td_loss=huber` for
the Nature paper's). Differences: Double DQN on, and a 100k-transition buffer by default (CleanRL
keeps 1M; ours stores each observation once but in the train state, ~2.8 GB at 100k, split over the
devices by env: raise `buffer_size` if memory allows).

  python -m jaxai.main --config=configs/atari_dqn.py --workdir=/tmp/breakout_dqn
"""
from jaxai.tasks.rl import dqn


def get_config(variant: str = ""):
  config = dqn.default_config()
  config.env_id = "Breakout-v5"
  config.num_envs = 1
  config.total_env_steps = 10_000_000
  config.replay_batch_size = 32
  config.buffer_size = 100_000
  config.learning_starts = 80_000
  config.train_frequency = 4
  config.target_update_period = 250   # train steps = 1,000 env steps.
  config.epsilon_end = 0.01
  config.epsilon_fraction = 0.1
  config.optimizer.learning_rate = 1e-4
  config.model.update(dict(torso="cnn"))
  config.eval_episodes = 8
  config.eval_max_steps = 27_000
  config.log_every_steps = 1000
  config.eval_every_steps = 50_000
  config.checkpoint_every_steps = 25_000
  if variant == "tiny":
    config.num_envs = 2
    config.total_env_steps = 2 * 4 * 12
    config.buffer_size = 64
    config.learning_starts = 40
    config.replay_batch_size = 8
    config.target_update_period = 4
    config.n_step = 3
    config.dueling = True
    config.eval_episodes = 2
    config.eval_max_steps = 50
    config.log_every_steps = 4
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 6
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of atari_dqn; use '' or 'tiny'.")
  return config
