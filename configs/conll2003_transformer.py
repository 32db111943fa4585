"""CoNLL-2003 English NER with a Transformer tagger: the BiLSTM-CRF's token features (word, character
BiLSTM, casing) projected to 128, 2 bidirectional pre-LayerNorm blocks of 4 heads (the GPT's blocks
with causal=False), then the same CRF. Trained from scratch (no pretraining, unlike BERT).
Variants: '' (30 epochs), 'tiny' (seconds, for tests).

  python -m jaxai.main --config=configs/conll2003_transformer.py --workdir=/tmp/ner_transformer \
      --config.data_dir=../shared/data/conll2003
"""
from jaxai.tasks import ner


def get_config(variant: str = ""):
  config = ner.default_config()
  config.model.update(name="transformer", num_layers=2, num_heads=4, embed_dim=128, dropout_rate=0.1)
  config.optimizer.update(dict(learning_rate=5e-4, warmup_steps=500, schedule="cosine"))
  config.eval_every_steps = 2000
  config.checkpoint_every_steps = 2000
  if variant == "tiny":
    config.max_train_sentences = 64
    config.max_eval_sentences = 32
    config.batch_size = 16
    config.eval_batch_size = 32
    config.num_train_steps = 8
    config.optimizer.warmup_steps = 2
    config.log_every_steps = 4
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 0
    config.model.update(word_dim=16, char_dim=8, char_hidden=8, num_layers=1, num_heads=2, embed_dim=16)
  elif variant:
    raise ValueError(f"Unknown variant {variant!r}; use '' or 'tiny'.")
  return config
