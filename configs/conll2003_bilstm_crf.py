"""CoNLL-2003 English NER with Lample et al. (2016)'s BiLSTM-CRF: word embeddings (100, random init:
no pretrained vectors offline), a character BiLSTM (25 per direction), casing, a BiLSTM (100 per
direction), dropout 0.5, a CRF with IOB2 constraints; Adam 1e-3, gradient clipping 5, batch 32.
Variants: '' (30 epochs), 'tiny' (seconds, for tests).

  python -m jaxai.main --config=configs/conll2003_bilstm_crf.py --workdir=/tmp/ner_bilstm \
      --config.data_dir=../shared/data/conll2003
  python -m jaxai.tag --workdir=/tmp/ner_bilstm --sentence="EU rejects German call to boycott British lamb ."
"""
from jaxai.tasks import ner


def get_config(variant: str = ""):
  config = ner.default_config()
  config.model.name = "bilstm"
  config.eval_every_steps = 2000
  config.checkpoint_every_steps = 2000
  if variant == "tiny":
    config.max_train_sentences = 64
    config.max_eval_sentences = 32
    config.batch_size = 16
    config.eval_batch_size = 32
    config.num_train_steps = 8
    config.log_every_steps = 4
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 0
    config.model.update(word_dim=16, char_dim=8, char_hidden=8, hidden=16)
  elif variant:
    raise ValueError(f"Unknown variant {variant!r}; use '' or 'tiny'.")
  return config
