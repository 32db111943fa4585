"""GLUE SST-2 sentiment with a small Transformer encoder over SentencePiece (unigram, 8,000 pieces,
trained on the training sentences): 2 blocks of 4 heads, width 128, mean pooling; AdamW 5e-4 with
warm-up and cosine decay, batch 64, 3 epochs. Variants: '' , 'tiny' (seconds, for tests).

  python -m jaxai.main --config=configs/sst2_classifier.py --workdir=/tmp/sst2 \
      --config.data_dir=../shared/data/sst2
  python -m jaxai.sentiment --workdir=/tmp/sst2 --sentence="a charming and often affecting journey"
"""
from jaxai.tasks import sentiment


def get_config(variant: str = ""):
  config = sentiment.default_config()
  config.checkpoint_every_steps = 1000
  if variant == "tiny":
    config.max_train_examples = 512
    config.max_eval_examples = 64
    config.tokenizer.vocab_size = 300
    config.max_len = 32
    config.batch_size = 16
    config.eval_batch_size = 32
    config.num_train_steps = 8
    config.optimizer.warmup_steps = 2
    config.log_every_steps = 4
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 0
    config.model.update(num_layers=1, num_heads=2, embed_dim=16)
  elif variant:
    raise ValueError(f"Unknown variant {variant!r}; use '' or 'tiny'.")
  return config
