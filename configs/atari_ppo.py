"""PPO on Atari (EnvPool, default Breakout-v5; `--config.env_id=Pong-v5`). Variants: '' and 'tiny'.

The full config is CleanRL's `ppo_atari_envpool_xla_jax` with its published hyperparameters: 8 envs
x 128 steps, 4 minibatches, 4 epochs, clip 0.1, lr 2.5e-4 annealed to 0, entropy 0.01, value 0.5,
gradient clipping 0.5, gamma 0.99, GAE lambda 0.95, unclipped value loss, Nature-CNN shared by policy
and value, 10M agent
steps (40M frames). CleanRL reports Pong 20.8 and Breakout ~421 at 10M steps. Preprocessing: see
`jaxai.envs.envpool.ATARI_DEFAULTS`.

  python -m jaxai.main --config=configs/atari_ppo.py --workdir=/tmp/breakout_ppo
"""
from jaxai.tasks.rl import ppo


def get_config(variant: str = ""):
  config = ppo.default_config()
  config.env_id = "Breakout-v5"
  config.num_envs = 8
  config.num_steps = 128
  config.total_env_steps = 10_000_000
  config.clip_coef = 0.1
  config.clip_value_loss = False   # CleanRL's envpool-XLA script uses the plain squared error.
  config.model.update(dict(torso="cnn", separate_torsos=False))
  # The update's convolutions as matmuls over patches (the same parameters and numbers to float
  # rounding): fast inside lax.scan on XLA:CPU, so the update scans stay rolled and compile quickly
  # (benchmarks/ppo_vs_cleanrl.py).
  config.model.conv_as_matmul = True
  config.unroll_updates = False
  config.eval_episodes = 8
  config.eval_max_steps = 27_000
  config.log_every_steps = 10
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 100
  if variant == "tiny":
    config.num_envs = 2
    config.num_steps = 16
    config.total_env_steps = 2 * 16 * 4
    config.num_minibatches = 2
    config.update_epochs = 1
    config.eval_episodes = 2
    config.eval_max_steps = 50
    config.log_every_steps = 2
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 2
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of atari_ppo; use '' or 'tiny'.")
  return config
