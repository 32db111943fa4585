"""Quantization-aware training (qwix fake quantization, straight-through gradients) of the small CNN of
configs/mnist_cnn.py: int8 weights per output channel and int8 activations in every Dense and Conv
layer (jaxai.compress.quantization). Variants: '' (MNIST), 'tiny' (tests, seconds), 'fashion'
(Fashion-MNIST) and 'fashion_tiny'.

  python -m jaxai.main --config=configs/mnist_qat.py --workdir=/tmp/mnist_qat
  python -m jaxai.main --config=configs/mnist_qat.py:tiny --workdir=/tmp/mnist_qat_tiny \
      --config.data_dir=../shared/data/tfds
  # fine-tune a trained float run instead of starting from scratch:
  python -m jaxai.main --config=configs/mnist_qat.py --workdir=/tmp/mnist_qat_ft \
      --config.init_from.path=/tmp/mnist --config.num_epochs=2 --config.optimizer.learning_rate=3e-4
  # then the integer model against float (the 'ptq' row converts with these same rules):
  python -m jaxai.compress_table --workdir=/tmp/mnist_qat

Other settings: --config.quantization.weights=int4 (Dense weights; convolutions stay int8). Static
(calibrated) activation scales come after training (the table's int8_static row): qwix cannot train
static scales in convolutions (see jaxai/compress/quantization.py).
"""
import importlib.util
import os

VARIANTS = ("", "tiny", "fashion", "fashion_tiny")


def get_config(variant: str = ""):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown variant {variant!r} of mnist_qat; use one of {VARIANTS}.")
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist_cnn.py")
  spec = importlib.util.spec_from_file_location("mnist_cnn", path)
  mnist_cnn = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mnist_cnn)
  config = mnist_cnn.get_config("tiny" if variant.endswith("tiny") else "")
  if variant.startswith("fashion"):
    config.dataset = "fashion_mnist:3.0.1"
  config.quantization.mode = "qat"
  config.quantization.weights = "int8"
  config.quantization.activations = "int8"
  config.quantization.convs = "int8"
  return config
