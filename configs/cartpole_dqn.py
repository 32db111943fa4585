"""Double DQN on CartPole-v1 (EnvPool). Variants: '' (full) and 'tiny'.

Hyperparameters as in CleanRL's `dqn.py`: 500k env steps, buffer 10k, replay batch 128, lr 2.5e-4, target
network copied every 500 env steps, epsilon 1 -> 0.05 over the first half, learning starts after 10k
steps, one gradient step per 10 env steps; 120-84 ReLU network.

  python -m jaxai.main --config=configs/cartpole_dqn.py --workdir=/tmp/cartpole_dqn
"""
from jaxai.tasks.rl import dqn


def get_config(variant: str = ""):
  config = dqn.default_config()
  config.env_id = "CartPole-v1"
  config.num_envs = 1
  config.total_env_steps = 500_000
  config.model.update(dict(torso="mlp", hidden=(120, 84), activation="relu"))
  config.eval_episodes = 20
  config.eval_max_steps = 500
  config.log_every_steps = 1000
  config.eval_every_steps = 10_000
  config.checkpoint_every_steps = 10_000
  if variant == "tiny":
    config.total_env_steps = 600
    config.learning_starts = 200
    config.buffer_size = 300
    config.replay_batch_size = 16
    config.train_frequency = 10
    config.target_update_period = 5
    config.n_step = 3
    config.eval_episodes = 4
    config.log_every_steps = 10
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 20
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of cartpole_dqn; use '' or 'tiny'.")
  return config
