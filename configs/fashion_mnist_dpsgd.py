"""DP-SGD on Fashion-MNIST: the model, optimizer and privacy settings of configs/mnist_dpsgd.py
(Opacus' MNIST example) on the harder data set, with GroupNorm (4 groups) after each convolution.
Variants as there: '' (eps 1.19 at delta 1e-5 by Opacus' accounting), 'eps3', 'eps7', 'nodp', 'tiny'.

  python -m jaxai.main --config=configs/fashion_mnist_dpsgd.py --workdir=/tmp/fashion_dpsgd
  python -m jaxai.main --config=configs/fashion_mnist_dpsgd.py:tiny --workdir=/tmp/fashion_dpsgd_tiny \
      --config.data_dir=../shared/data/tfds
"""
import importlib.util
import os


def get_config(variant: str = ""):
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist_dpsgd.py")
  spec = importlib.util.spec_from_file_location("mnist_dpsgd", path)
  mnist_dpsgd = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mnist_dpsgd)
  config = mnist_dpsgd.get_config(variant, dataset="fashion_mnist:3.0.1")
  config.model.group_norm = 4
  return config
