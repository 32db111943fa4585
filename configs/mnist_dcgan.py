"""DCGAN on MNIST (unconditional). Variants: '' (full: 8,000 steps, ~10-15 min on 2 CPU cores),
'tiny' (tests, seconds), 'fashion' and 'fashion_tiny' (the same on Fashion-MNIST).

  python -m jaxai.main --config=configs/mnist_dcgan.py --workdir=/tmp/mnist_dcgan
  python -m jaxai.main --config=configs/mnist_dcgan.py:fashion --workdir=/tmp/fashion_dcgan
"""
from jaxai.tasks.generative import gan

VARIANTS = ("", "tiny", "fashion", "fashion_tiny")


def base_config(variant: str, conditional: bool, name: str):
  """Shared by mnist_dcgan and mnist_cgan (they differ in config.gan.conditional only)."""
  if variant not in VARIANTS:
    raise ValueError(f"Unknown variant {variant!r} of {name}; use one of {VARIANTS}.")
  config = gan.default_config()
  config.dataset = "fashion_mnist" if variant.startswith("fashion") else "mnist"
  config.gan.conditional = conditional
  config.gan.latent_dim = 64
  config.gan.disc_steps = 1
  config.gan.label_smoothing = 0.1
  config.gan.ema_decay = 0.999
  config.model.g_features = 32
  config.model.d_features = 32
  config.batch_size = 64
  config.num_train_steps = 8000
  config.optimizer.learning_rate = 2e-4
  config.discriminator_optimizer.learning_rate = 2e-4
  config.log_every_steps = 200
  config.eval_every_steps = 2000              # four sample grids (and scores, with a classifier).
  config.checkpoint_every_steps = 2000
  if variant.endswith("tiny"):
    config.max_train_examples = 256
    config.max_eval_examples = 256
    config.batch_size = 16
    config.num_train_steps = 8
    config.gan.latent_dim = 8
    config.gan.ema_decay = 0.9
    config.model.g_features = 8
    config.model.d_features = 8
    config.model.embed_dim = 4
    config.samples.per_class = 2
    config.samples.rows = 2
    config.log_every_steps = 4
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 4
    config.quality.num_samples = 64
    config.quality.batch_size = 32
  return config


def get_config(variant: str = ""):
  return base_config(variant, conditional=False, name="mnist_dcgan")
