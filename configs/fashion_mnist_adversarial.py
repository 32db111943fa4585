"""Fashion-MNIST with the MNIST adversarial-training recipes (configs/mnist_adversarial.py) at L-inf
eps 0.1, the radius commonly used for Fashion-MNIST (0.3 erases most of a garment's texture).
Variants as there: '' (Madry's schedule, a GPU run), 'hour' (about an hour of a 2-core CPU), 'trades',
'tiny' (tests).

  python -m jaxai.main --config=configs/fashion_mnist_adversarial.py:hour --workdir=/tmp/fashion_adv \
      --config.data_dir=../shared/data/tfds
"""
import importlib.util
import os


def get_config(variant: str = ""):
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist_adversarial.py")
  spec = importlib.util.spec_from_file_location("mnist_adversarial", path)
  mnist_adversarial = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mnist_adversarial)
  config = mnist_adversarial.get_config(variant)
  config.dataset = "fashion_mnist:3.0.1"
  scale = 0.1 / config.adversarial.eps
  config.adversarial.eps = 0.1
  config.adversarial.step_size *= scale
  config.robust_eval.eps = 0.1
  if variant == "tiny":  # the pipeline is mnist_adversarial:tiny's, tested there in full.
    config.robust_eval.attacks = ("pgd",)
    config.interpret.num_images = 0
  return config
