"""An IWAE with k=50 importance samples on dynamically binarized MNIST (Burda et al. 2016, the
one-stochastic-layer model: MLP 784-200-200-50 tanh), trained on the importance-weighted bound.

  python -m jaxai.main --config=configs/mnist_iwae.py --workdir=/tmp/mnist_iwae
  python -m jaxai.main --config=configs/mnist_iwae.py:tiny --workdir=/tmp/mnist_iwae_tiny \
      --config.data_dir=../shared/data/tfds

Variants: '' (full), 'tiny' (tests, seconds), 'fashion' (Fashion-MNIST), 'fashion_tiny'. Each step
decodes k=50 samples per image (~3.6 steps/s of batch 100 on 2 CPU cores, ~40x slower than the VAE),
so the full budget is 5 epochs (3,000 steps, ~14 min) plus eval/nll (5,000 importance samples, first
1,000 test images, ~2 min) at the end: 0.15% of the paper's 3,280 epochs, so expect a test NLL far
above its 84.78 (benchmarks/vae_nll.py measures it); --config.num_epochs buys more.
"""
import importlib.util
import os

from jaxai.tasks.generative import vae

_spec = importlib.util.spec_from_file_location(
    "mnist_vae", os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist_vae.py"))
mnist_vae = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mnist_vae)  # its tiny() settings.

VARIANTS = ("", "tiny", "fashion", "fashion_tiny")


def get_config(variant: str = ""):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown variant {variant!r} of mnist_iwae; use one of {VARIANTS}.")
  config = vae.default_config()
  config.dataset = "fashion_mnist:3.0.1" if variant.startswith("fashion") else "mnist:3.0.1"
  config.vae.objective = "iwae"
  config.vae.num_samples = 50
  if variant.endswith("tiny"):
    config = mnist_vae.tiny(config)
    config.dataset = "fashion_mnist:3.0.1" if variant.startswith("fashion") else "mnist:3.0.1"
    config.vae.num_samples = 5
    return config
  config.batch_size = 100
  config.eval_batch_size = 500
  config.num_epochs = 5.0
  # 3x the paper's 1e-3, as configs/mnist_vae.py: after 600 steps, test NLL 129.1 against 150.9 at 1e-3
  # (5,000 importance samples, first 100 test images).
  config.optimizer.learning_rate = 3e-3
  config.vae.eval_importance_samples = 5000
  config.vae.nll_max_examples = 1000   # the NLL on the whole test set: --config.vae.nll_max_examples=0.
  config.vae.nll_every_steps = -1      # only at the end (~1 min per 1,000 test images).
  config.log_every_steps = 100
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  return config
