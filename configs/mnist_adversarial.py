"""Madry et al.'s MNIST challenge recipe: PGD adversarial training at L-inf eps 0.3. Variants:

  ''        the paper's schedule: 100k steps of batch 50, PGD-40 with step 0.01 from a random start,
            Adam 1e-4, a 32-64-1024 CNN without batch norm (their 5x5 convs are two 3x3 convs here).
            About 4M attack gradient evaluations of batch 50: a GPU run.
  'hour'    what about one hour of a 2-core CPU affords (benchmarks/adversarial_mnist.py): a lighter
            CNN (one conv per block, dense 256), batch 100, 4000 steps (6.7 epochs) of PGD-7 with step 0.1, eps
            ramped up over the first 800 steps, Adam 1e-3 with cosine decay.
  'trades'  the 'hour' budget with TRADES (beta 6) instead of Madry's objective.
  'tiny'    tests: seconds.

  python -m jaxai.main --config=configs/mnist_adversarial.py:hour --workdir=/tmp/mnist_adv \
      --config.data_dir=../shared/data/tfds
  python -m jaxai.attack --workdir=/tmp/mnist_adv --attack=pgd --eps=0,0.1,0.2,0.3 --steps=100 --restarts=10
"""
from jaxai.tasks import classification


def get_config(variant: str = ""):
  config = classification.default_config()
  config.dataset = "mnist:3.0.1"
  config.model = dict(name="cnn", features=(32, 64), dense=1024, batch_norm=False)
  config.batch_size = 50
  config.num_train_steps = 100_000
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-4
  config.optimizer.schedule = "constant"
  config.optimizer.warmup_steps = 0
  config.adversarial.method = "madry"
  config.adversarial.eps = 0.3
  config.adversarial.steps = 40
  config.adversarial.step_size = 0.01
  config.robust_eval.attacks = ("fgsm", "pgd", "apgd")
  config.robust_eval.eps = 0.3
  config.robust_eval.pgd_steps = 100
  config.robust_eval.apgd_steps = 100
  config.robust_eval.max_examples = 1000
  config.interpret.num_images = 8
  config.eval_every_steps = 5000
  config.checkpoint_every_steps = 1000
  config.log_every_steps = 100
  if variant in ("hour", "trades"):
    config.model = dict(name="cnn", features=(32, 64), convs_per_block=1, dense=256, batch_norm=False)
    config.batch_size = 100
    config.num_train_steps = 4000
    config.optimizer.learning_rate = 1e-3
    config.optimizer.schedule = "cosine"
    config.optimizer.warmup_steps = 200
    config.adversarial.steps = 7
    config.adversarial.step_size = 0.1
    config.adversarial.eps_warmup_steps = 800
    config.robust_eval.max_examples = 500
    config.eval_every_steps = 2000
    config.checkpoint_every_steps = 250
    if variant == "trades":
      config.adversarial.method = "trades"
  elif variant == "tiny":
    config.max_train_examples = 256
    config.max_eval_examples = 64
    config.model = dict(name="cnn", features=(4, 8), dense=16, batch_norm=False)
    config.batch_size = 16
    config.eval_batch_size = 32
    config.num_train_steps = 6
    config.optimizer.learning_rate = 1e-3
    config.adversarial.steps = 3
    config.adversarial.step_size = 0.1
    config.adversarial.eps_warmup_steps = 4
    config.robust_eval.pgd_steps = 3
    config.robust_eval.apgd_steps = 3
    config.robust_eval.max_examples = 32
    config.interpret.num_images = 2
    config.interpret.methods = ("gradient", "grad_cam")
    config.interpret.deletion_examples = 16
    config.interpret.random_models = 1
    config.log_every_steps = 2
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 3
  elif variant:
    raise ValueError(f"Unknown variant {variant!r} of mnist_adversarial; use '', 'hour', 'trades' or 'tiny'.")
  return config
