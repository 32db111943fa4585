"""Class-conditional GAN on MNIST: generates a requested digit (`python -m jaxai.generate --class=7`).
Variants: '' (full: 8,000 steps, ~10-15 min on 2 CPU cores), 'tiny' (tests), 'fashion' and
'fashion_tiny' (Fashion-MNIST). The same settings as configs/mnist_dcgan.py with config.gan.conditional=True.

  python -m jaxai.main --config=configs/mnist_cgan.py --workdir=/tmp/mnist_cgan
  python -m jaxai.main --config=configs/mnist_cgan.py:fashion --workdir=/tmp/fashion_cgan
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "configs_mnist_dcgan_base", os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist_dcgan.py"))
_dcgan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_dcgan)


def get_config(variant: str = ""):
  return _dcgan.base_config(variant, conditional=True, name="mnist_cgan")
