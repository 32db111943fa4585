"""Fashion-MNIST with the small CNN. Variants: "" (full, ~93% test accuracy) and "tiny".

  python -m jaxai.main --config=configs/fashion_mnist_cnn.py --workdir=/tmp/fashion_mnist
  python -m jaxai.main --config=configs/fashion_mnist_cnn.py:tiny --workdir=/tmp/fashion_mnist_tiny \
      --config.data_dir=../shared/data/tfds
"""
from jaxai.tasks import classification


def get_config(variant: str = ""):
  config = classification.default_config()
  config.dataset = "fashion_mnist:3.0.1"
  config.model.name = "cnn"
  config.model.features = (32, 64)
  config.model.dense = 256
  config.model.dropout_rate = 0.3
  config.batch_size = 128
  config.num_epochs = 10.0
  config.augment.crop_padding = 2      # small random shifts.
  config.optimizer.name = "adamw"
  config.optimizer.learning_rate = 3e-3
  config.optimizer.warmup_steps = 200
  config.optimizer.weight_decay = 1e-4
  config.eval_every_steps = 2000
  config.checkpoint_every_steps = 1000
  if variant == "tiny":
    config.max_train_examples = 512
    config.max_eval_examples = 300
    config.batch_size = 32
    config.eval_batch_size = 100
    config.num_train_steps = 12
    config.optimizer.warmup_steps = 2
    config.model.features = (8, 16)
    config.model.dense = 32
    config.log_every_steps = 4
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 4
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of fashion_mnist_cnn; use '' or 'tiny'.")
  return config
