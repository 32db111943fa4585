"""A character-level GPT on Tiny Shakespeare. Variants:
  ''             4 layers x 4 heads x 192, context 128, batch 32, 5000 steps: a CPU-sized model.
  'nanogpt_cpu'  nanoGPT's CPU settings exactly (its README): block 64, batch 12, 4 layers, 4 heads,
                 128 embedding, 2000 iterations, dropout 0, lr 1e-3 decayed over 2000 iterations to
                 1e-4; validated on nanoGPT's last 10% (TFDS 'validation+test'). nanoGPT: ~1.88.
  'nanogpt_gpu'  nanoGPT's config/train_shakespeare_char.py: 6 layers, 6 heads, 384 embedding,
                 block 256, batch 64, dropout 0.2, 5000 iterations (bf16 on accelerators). nanoGPT: 1.4697.
  'tiny'         seconds, for tests.
Shared with nanoGPT's recipe (the nanogpt variants also take its erf GELU): AdamW (b2 0.99, weight decay 0.1 on matrices and embeddings), 100 warmup
steps then cosine decay to lr/10, gradient clipping at 1, no biases, tied input/output embeddings.

  python -m jaxai.main --config=configs/shakespeare_char_gpt.py:nanogpt_cpu --workdir=/tmp/gpt_cpu \
      --config.data_dir=../shared/data/tfds
  python -m jaxai.sample --workdir=/tmp/gpt_cpu --prompt="ROMEO:" --num_chars=500 \
      --temperature=0.8 --top_k=40 --seed=0
"""
from jaxai.tasks import lm


def get_config(variant: str = ""):
  config = lm.default_config()
  config.model.update(name="gpt", num_layers=4, num_heads=4, embed_dim=192, dropout_rate=0.1)
  config.block_size = 128
  config.batch_size = 32
  config.num_train_steps = 5000
  config.log_every_steps = 100
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 500
  if variant == "nanogpt_cpu":
    config.model.update(num_layers=4, num_heads=4, embed_dim=128, dropout_rate=0.0, exact_gelu=True)
    config.block_size = 64
    config.batch_size = 12
    config.num_train_steps = 2000    # decay runs over the whole run, as lr_decay_iters=2000.
    config.eval_split = "validation+test"
    config.eval_every_steps = 250    # nanoGPT's eval_interval.
  elif variant == "nanogpt_gpu":
    config.model.update(num_layers=6, num_heads=6, embed_dim=384, dropout_rate=0.2, exact_gelu=True)
    config.block_size = 256
    config.batch_size = 64
    config.num_train_steps = 5000
    config.eval_split = "validation+test"
    config.eval_every_steps = 250
  elif variant == "tiny":
    config.model.update(num_layers=2, num_heads=2, embed_dim=32, dropout_rate=0.1)
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
    raise ValueError(f"Unknown variant {variant!r} of shakespeare_char_gpt; use '', 'nanogpt_cpu', "
                     "'nanogpt_gpu' or 'tiny'.")
  return config
