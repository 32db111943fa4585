"""PPO on CartPole-v1 (EnvPool). Variants: '' (full: reaches 500 within ~150k env steps) and 'tiny'.

Hyperparameters as in CleanRL's `ppo.py` / PureJaxRL's CartPole PPO: 4 envs x 128 steps, 4 epochs of
4 minibatches, clip 0.2, lr 2.5e-4 annealed, separate 64-64 tanh policy and value networks.

  python -m jaxai.main --config=configs/cartpole_ppo.py --workdir=/tmp/cartpole_ppo
"""
from jaxai.tasks.rl import ppo


def get_config(variant: str = ""):
  config = ppo.default_config()
  config.env_id = "CartPole-v1"
  config.num_envs = 4
  config.num_steps = 128
  config.total_env_steps = 500_000
  config.clip_coef = 0.2
  config.model.update(dict(torso="mlp", hidden=(64, 64), activation="tanh", separate_torsos=True))
  config.eval_episodes = 20
  config.eval_max_steps = 500
  config.log_every_steps = 20
  config.eval_every_steps = 200
  config.checkpoint_every_steps = 200
  if variant == "tiny":
    config.total_env_steps = 4 * 32 * 6
    config.num_steps = 32
    config.unroll_updates = False  # compiles ~3x faster: this run is mostly compilation.
    config.eval_episodes = 4
    config.log_every_steps = 2
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 3
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of cartpole_ppo; use '' or 'tiny'.")
  return config
