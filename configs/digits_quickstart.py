"""Quick start: scikit-learn's bundled 8x8 digits (no download), a small CNN, about a minute on 2 CPU cores.

  python -m jaxai.main --config=configs/digits_quickstart.py --workdir=/tmp/jaxai_quickstart
"""
from jaxai.tasks import classification


def get_config(variant: str = ""):
  config = classification.default_config()
  config.dataset = "digits"            # 1,437 train / 360 test images, shipped inside scikit-learn.
  config.model.name = "cnn"
  config.model.features = (16, 32)
  config.model.dense = 64
  config.batch_size = 64
  config.eval_batch_size = 120
  config.num_epochs = 30.0
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 3e-3
  config.log_every_steps = 50
  config.eval_every_steps = 200
  config.checkpoint_every_steps = 200
  if variant == "tiny":
    config.num_train_steps = 10
    config.log_every_steps = 5
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of digits_quickstart; use '' or 'tiny'.")
  return config
