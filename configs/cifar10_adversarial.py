"""CIFAR-10 PGD adversarial training at L-inf eps 8/255 (Madry et al.'s CIFAR-10 challenge threat model),
stated for one GPU. Variants: '' and 'tiny' (tests, synthetic 32x32x3 images, seconds).

The full config: ResNet-18 (configs/cifar10_resnet.py), 100 epochs of batch 128, SGD + momentum 0.9,
lr 0.1 with cosine decay, weight decay 5e-4, random crop + flip; training attack PGD-10 with step 2/255
from a random start; evaluation under FGSM, PGD-20 and APGD-CE-100 on the first 1000 test images.
References: Madry et al.'s challenge, 47.04% under PGD-20 (a wide ResNet, PGD-7 training); RobustBench,
PreAct-ResNet-18 with fast adversarial training, 43.21% under AutoAttack. About 11 train-step passes per
batch: roughly 10x the natural run's time (configs/cifar10_resnet.py).

  python -m jaxai.main --config=configs/cifar10_adversarial.py --workdir=/tmp/cifar10_adv
"""
from jaxai.tasks import classification


def get_config(variant: str = ""):
  config = classification.default_config()
  config.dataset = "cifar10:3.0.2"
  config.model = dict(name="resnet", stage_sizes=(2, 2, 2, 2), width=64)
  config.batch_size = 128
  config.eval_batch_size = 500
  config.num_epochs = 100.0
  config.augment.crop_padding = 4
  config.augment.horizontal_flip = True
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 5e-4
  config.optimizer.warmup_steps = 390   # 1 epoch of 50,000 / 128 steps.
  config.adversarial.method = "madry"
  config.adversarial.eps = 8 / 255
  config.adversarial.steps = 10
  config.adversarial.step_size = 2 / 255
  config.robust_eval.attacks = ("fgsm", "pgd", "apgd")
  config.robust_eval.eps = 8 / 255
  config.robust_eval.pgd_steps = 20
  config.robust_eval.pgd_step_size = 2 / 255
  config.robust_eval.apgd_steps = 100
  config.robust_eval.max_examples = 1000
  config.interpret.num_images = 8
  config.log_every_steps = 100
  config.eval_every_steps = 3900         # every 10 epochs.
  config.checkpoint_every_steps = 1000
  if variant == "tiny":
    config.dataset = "synthetic:32x32x3:10"
    config.max_train_examples = 128
    config.max_eval_examples = 64
    config.model = dict(name="resnet", stage_sizes=(1, 1), width=8)
    config.batch_size = 16
    config.eval_batch_size = 32
    config.num_train_steps = 4
    config.optimizer.warmup_steps = 1
    config.adversarial.steps = 2
    config.robust_eval.pgd_steps = 2
    config.robust_eval.attacks = ("fgsm",)  # PGD, APGD and saliency run in mnist_adversarial:tiny.
    config.robust_eval.max_examples = 32
    config.interpret.num_images = 0
    config.log_every_steps = 2
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 2
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of cifar10_adversarial; use '' or 'tiny'.")
  return config
