"""CIFAR-10 PGD adversarial training at L-inf eps 8/255 (Madry et al.'s CIFAR-10 challenge threat model),
stated for one GPU. Variants: '' and 'tiny' (tests, synthetic 32x32x3 images, seconds).

configs/cifar10_resnet.py (ResNet-18, random crop + flip, SGD + momentum 0.9, weight decay 5e-4) with
100 epochs of batch 128, lr 0.1 with cosine decay and no label smoothing; the training attack is PGD-10
with step 2/255 from a random start; evaluation under FGSM, PGD-20 and APGD-CE-100 on the first 1000
test images. References: Madry et al.'s challenge, 47.04% under PGD-20 (a wide ResNet, PGD-7
training); RobustBench, PreAct-ResNet-18 with fast adversarial training, 43.21% under AutoAttack. About
11 forward-backward passes per batch: roughly 10x the natural run's time per epoch.

  python -m jaxai.main --config=configs/cifar10_adversarial.py --workdir=/tmp/cifar10_adv
"""
import importlib.util
import os


def get_config(variant: str = ""):
  if variant not in ("", "tiny"):
    raise ValueError(f"Unknown variant {variant!r} of cifar10_adversarial; use '' or 'tiny'.")
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cifar10_resnet.py")
  spec = importlib.util.spec_from_file_location("cifar10_resnet", path)
  cifar10_resnet = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(cifar10_resnet)
  config = cifar10_resnet.get_config(variant)
  config.adversarial.method = "madry"
  config.adversarial.eps = 8 / 255
  config.adversarial.steps = 10 if not variant else 2
  config.adversarial.step_size = 2 / 255
  config.robust_eval.eps = 8 / 255
  config.robust_eval.pgd_step_size = 2 / 255
  if variant == "tiny":
    config.robust_eval.attacks = ("fgsm",)  # PGD, APGD and saliency run in mnist_adversarial:tiny.
    config.robust_eval.max_examples = 32
    return config
  config.batch_size = 128
  config.eval_batch_size = 500
  config.num_epochs = 100.0
  config.label_smoothing = 0.0
  config.optimizer.nesterov = False
  config.optimizer.learning_rate = 0.1
  config.optimizer.warmup_steps = 390   # 1 epoch of 50,000 / 128 steps.
  config.robust_eval.attacks = ("fgsm", "pgd", "apgd")
  config.robust_eval.pgd_steps = 20
  config.robust_eval.apgd_steps = 100
  config.robust_eval.max_examples = 1000
  config.interpret.num_images = 8
  config.log_every_steps = 100
  config.eval_every_steps = 3900         # every 10 epochs.
  config.checkpoint_every_steps = 1000
  return config
