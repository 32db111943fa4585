"""Text to image on MNIST (or Fashion-MNIST): a VQ-VAE tokenizer (7x7 codes) and a GPT prior over
[caption words, image codes]. Variants: '' (full), 'tiny' (tests, seconds), 'fashion', 'fashion_tiny'.

  python -m jaxai.main --config=configs/mnist_text2image.py --workdir=/tmp/mnist_text2image
  python -m jaxai.generate --workdir=/tmp/mnist_text2image --prompt="a handwritten seven" --out=seven.png
  python -m jaxai.main --config=configs/mnist_text2image.py:fashion --workdir=/tmp/fashion_text2image

The full variants train both models for 2400 steps of 64 images (~2.6 epochs; ~0.5 s a step on 2 CPU
cores, ~20 min); the prior starts after 200 steps, on settled codes.
"""
from jaxai.tasks.generative import text2image

VARIANTS = ("", "tiny", "fashion", "fashion_tiny")


def get_config(variant: str = ""):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown variant {variant!r} of mnist_text2image; use one of {VARIANTS}.")
  config = text2image.default_config()
  fashion = variant.startswith("fashion")
  config.dataset = "fashion_mnist:3.0.1" if fashion else "mnist:3.0.1"
  config.batch_size = 64
  config.num_train_steps = 2400
  config.prior_start_step = 200
  config.eval_every_steps = 800
  config.checkpoint_every_steps = 800
  config.log_every_steps = 100
  config.tokenizer.num_codes = 128
  config.tokenizer.features = (16, 32)
  config.prior.num_layers, config.prior.num_heads, config.prior.embed_dim = 3, 4, 96
  config.sampling.temperature = 1.0
  config.sampling.top_k = 32
  if variant.endswith("tiny"):
    config.max_train_examples = 256
    config.max_eval_examples = 200
    config.batch_size = 32
    config.eval_batch_size = 100
    config.num_train_steps = 8
    config.prior_start_step = 2
    config.log_every_steps = 4
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 4
    config.samples.per_class = 2
    config.tokenizer.num_codes = 32
    config.tokenizer.code_dim = 8
    config.tokenizer.features = (8, 16)
    config.tokenizer.num_res_blocks = 0
    config.tokenizer.optimizer.warmup_steps = 2
    config.prior.num_layers, config.prior.num_heads, config.prior.embed_dim = 1, 2, 16
    config.prior.optimizer.warmup_steps = 2
  return config
