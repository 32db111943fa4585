"""Fashion-MNIST with the MNIST recipe (configs/mnist_cnn.py). Variants: '' (full, ~93%) and 'tiny'.

  python -m jaxai.main --config=configs/fashion_mnist_cnn.py --workdir=/tmp/fashion_mnist
  python -m jaxai.main --config=configs/fashion_mnist_cnn.py:tiny --workdir=/tmp/fashion_mnist_tiny \
      --config.data_dir=../shared/data/tfds
"""
import importlib.util
import os


def get_config(variant: str = ""):
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist_cnn.py")
  spec = importlib.util.spec_from_file_location("mnist_cnn", path)
  mnist_cnn = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mnist_cnn)
  config = mnist_cnn.get_config(variant)
  config.dataset = "fashion_mnist:3.0.1"
  return config
