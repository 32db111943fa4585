"""Magnitude pruning of LeNet-300-100 on MNIST (jaxai.compress.pruning): gradual global pruning to 90%
of the weights with Zhu & Gupta's cubic schedule, masks in the optimizer state.

Variants:
  ''            gradual, global, 90% (mask steps every 100 updates from update 500 to 3/4 of the run)
  '95'          the same to 95%
  'layer'       90%, every layer pruned to 90% (scope 'layer') instead of one global threshold
  'oneshot'     train dense, prune to 90% at once half way, fine-tune the rest
  'structured'  the small CNN with half of the output channels of each conv and of the hidden dense
                layer pruned (L2 norm of each channel), per layer
  'fashion'     '' on Fashion-MNIST
  'dense'       the same model and schedule unpruned (the benchmark's reference)
  'tiny'        tests: seconds, 512 examples, 12 updates, mask steps at 2, 4, 6, 8

  python -m jaxai.main --config=configs/mnist_pruning.py --workdir=/tmp/mnist_pruning
  python -m jaxai.main --config=configs/mnist_pruning.py:95 --workdir=/tmp/mnist_pruning95
  python -m jaxai.main --config=configs/mnist_pruning.py:tiny --workdir=/tmp/mnist_pruning_tiny \
      --config.data_dir=../shared/data/tfds

The per-layer sparsity is logged as 'prune/sparsity' and the table <workdir>/prune/layers/step_<N>.txt.
"""
from jaxai.tasks import classification

VARIANTS = ("", "95", "layer", "oneshot", "structured", "fashion", "dense", "tiny")


def get_config(variant: str = ""):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown variant {variant!r} of mnist_pruning; use one of {VARIANTS}.")
  config = classification.default_config()
  config.dataset = "fashion_mnist:3.0.1" if variant == "fashion" else "mnist:3.0.1"
  config.model.name = "mlp"
  config.model.hidden = (300, 100)       # LeNet-300-100: 266,200 weights in three kernels.
  config.batch_size = 128
  config.num_train_steps = 9000          # optimizer updates (one per train step): ~19 epochs.
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = "cosine"
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000

  prune = config.optimizer.pruning
  prune.method = "magnitude"
  prune.sparsity = 0.95 if variant == "95" else 0.9
  prune.begin_step = 500                 # after about one epoch of dense training.
  prune.end_step = -1                    # 3/4 of the run; the last quarter fine-tunes the survivors.
  prune.frequency = 100
  prune.scope = "layer" if variant == "layer" else "global"
  prune.prunable = r".*kernel"
  if variant == "dense":
    prune.method = "none"
  elif variant == "oneshot":
    prune.begin_step = prune.end_step = config.num_train_steps // 2
  elif variant == "structured":
    config.model = classification.default_config().model
    config.model.name = "cnn"
    config.model.features = (32, 64)
    config.model.dense = 256
    config.num_train_steps = 4000
    prune.structured = True
    prune.scope = "layer"
    prune.sparsity = 0.5                 # of each layer's output channels.
    prune.prunable = r"Conv_\d+/kernel|Dense_0/kernel"  # not the classifier head (its channels are classes).
  elif variant == "tiny":
    config.max_train_examples = 512
    config.max_eval_examples = 300
    config.batch_size = 32
    config.eval_batch_size = 100
    config.model.hidden = (32, 16)
    config.num_train_steps = 12
    config.log_every_steps = 4
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 4
    prune.begin_step, prune.end_step, prune.frequency = 2, 8, 2
  return config
