"""Fine-tuning the character GPT on a speaker it never saw: LoRA adapters against full fine-tuning.

Variants (the model is shakespeare_char_gpt's nanogpt_cpu GPT: 4 layers x 4 heads x 128, block 64):
  'pretrain'   2000 steps of batch 12 on Tiny Shakespeare without HELD_OUT's turns (train and eval).
  'lora'       from the pretrain run (--config.init_from.path), 150 steps on HELD_OUT's turns only:
               rank-8 adapters on every Dense layer (attention qkv and output, MLP), nothing else
               trains (lr 2e-3).
  'full'       the same fine-tuning, every parameter trains (lr 2e-4).
  'pretrain_tiny', 'lora_tiny', 'full_tiny'   seconds, for tests ('' is 'pretrain', 'tiny' 'pretrain_tiny').
HELD_OUT is PETRUCHIO (The Taming of the Shrew): 3.4k characters in the train split, 5.3k in test
and 16.4k in validation. The fine-tuning runs train on his turns of 'train+test' (8.9k characters,
text the pretrain run never saw) and evaluate on his turns of 'validation'. The vocabulary is the
whole training split's ('train+test' has exactly the characters of 'train'; the task checks that
it equals the init_from run's), so the checkpoints fit one another.

  python -m jaxai.main --config=configs/shakespeare_gpt_lora.py:pretrain --workdir=/tmp/gpt_pre \
      --config.data_dir=../shared/data/tfds
  python -m jaxai.main --config=configs/shakespeare_gpt_lora.py:lora --workdir=/tmp/gpt_lora \
      --config.data_dir=../shared/data/tfds --config.init_from.path=/tmp/gpt_pre
  python -m jaxai.main --config=configs/shakespeare_gpt_lora.py:full --workdir=/tmp/gpt_full \
      --config.data_dir=../shared/data/tfds --config.init_from.path=/tmp/gpt_pre
  python benchmarks/compress_lora_gpt.py          # all three, and the table
"""
from jaxai.compress import lora
from jaxai.tasks import lm

HELD_OUT = "PETRUCHIO"
VARIANTS = ("pretrain", "lora", "full", "pretrain_tiny", "lora_tiny", "full_tiny")
ALIASES = {"": "pretrain", "tiny": "pretrain_tiny"}


def get_config(variant: str = ""):
  if ALIASES.get(variant, variant) not in VARIANTS:
    raise ValueError(f"Unknown variant {variant!r} of shakespeare_gpt_lora; use one of {VARIANTS} "
                     f"(or {tuple(ALIASES)}: {tuple(ALIASES.values())}).")
  stage, _, size = ALIASES.get(variant, variant).partition("_")
  config = lm.default_config()
  config.model.update(name="gpt", num_layers=4, num_heads=4, embed_dim=128, dropout_rate=0.0)
  config.block_size = 64
  config.batch_size = 12
  config.eval_split = "validation+test"
  config.eval_batch_size = 64
  config.log_every_steps = 50
  config.sample.prompt = HELD_OUT + ":\n"  # every character is in the (whole train split's) vocabulary.
  if stage == "pretrain":
    config.exclude_speakers = HELD_OUT
    config.num_train_steps = 2000
    config.eval_every_steps = 500
    config.checkpoint_every_steps = 500
  else:
    config.speakers = HELD_OUT
    config.train_split = "train+test"    # PETRUCHIO's 3.4k + 5.3k characters.
    config.eval_split = "validation"     # his 16.4k.
    config.model.dropout_rate = 0.1      # a few pages of text: regularize both kinds of fine-tuning.
    config.num_train_steps = 150         # 115k characters seen: 13 passes over his text.
    config.optimizer.warmup_steps = 10
    config.eval_every_steps = 25
    config.checkpoint_every_steps = 150
    config.sample.num_chars = 300
    if stage == "lora":
      config.lora.update(rank=8, alpha=16.0, module_path=".*")
      config.init_from.fresh = lora.TRAINABLE     # the pretrain run has no adapters.
      config.optimizer.trainable = lora.TRAINABLE
      config.optimizer.learning_rate = 2e-3
    else:
      config.optimizer.learning_rate = 2e-4
  if size == "tiny":
    config.model.update(num_layers=1, num_heads=2, embed_dim=32)
    config.block_size = 32
    config.batch_size = 8
    config.eval_split = "validation"
    config.eval_batch_size = 8
    config.eval_windows = 16
    config.num_train_steps = 10 if stage == "pretrain" else 6
    config.optimizer.warmup_steps = 2
    config.log_every_steps = 5
    config.eval_every_steps = config.checkpoint_every_steps = config.num_train_steps
    config.sample.num_chars = 20
    config.lora.rank = min(config.lora.rank, 4)
  return config
