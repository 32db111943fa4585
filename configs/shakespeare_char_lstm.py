"""char-rnn on Tiny Shakespeare: a 2-layer LSTM of 256 units. Variants: '' (2000 steps) and 'tiny' (tests).

Settings after char-rnn's defaults (2 layers, sequences of 50-100 characters, lr 2e-3, gradient
clipping at 5) with AdamW instead of RMSprop and a cosine decay; evaluated on TFDS's 'validation'.

  python -m jaxai.main --config=configs/shakespeare_char_lstm.py --workdir=/tmp/lstm \
      --config.data_dir=../shared/data/tfds
  python -m jaxai.sample --workdir=/tmp/lstm --prompt="ROMEO:" --num_chars=500
"""
import ml_collections

from jaxai.tasks import lm


def get_config(variant: str = ""):
  config = lm.default_config()
  config.model = ml_collections.ConfigDict(dict(
      name="lstm", dtype="auto", num_layers=2, hidden=256, embed_dim=64, dropout_rate=0.0))
  config.block_size = 100
  config.batch_size = 32
  config.num_train_steps = 2000
  config.optimizer.learning_rate = 2e-3
  config.optimizer.weight_decay = 0.0
  config.optimizer.grad_clip_norm = 5.0
  config.log_every_steps = 100
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  if variant == "tiny":
    config.model.update(num_layers=2, hidden=32, embed_dim=16, dropout_rate=0.1)
    config.block_size = 32
    config.batch_size = 8
    config.eval_batch_size = 8
    config.eval_windows = 16
    config.num_train_steps = 20
    config.optimizer.warmup_steps = 2
    config.log_every_steps = 5
    config.eval_every_steps = 10
    config.checkpoint_every_steps = 10
    config.sample.num_chars = 40
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of shakespeare_char_lstm; use '' or 'tiny'.")
  return config
