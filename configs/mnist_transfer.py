"""Transfer from a checkpoint: pretrain a small CNN on digits 0-4, adapt it to digits 5-9 (or from all
of MNIST to Fashion-MNIST) by a linear probe, full fine-tuning or LoRA adapters, against the same
model trained from scratch on the target examples.

  python -m jaxai.main --config=configs/mnist_transfer.py:pretrain --workdir=/tmp/transfer/pretrain
  python -m jaxai.main --config=configs/mnist_transfer.py:probe --workdir=/tmp/transfer/probe \
      --config.init_from.path=/tmp/transfer/pretrain --config.max_train_examples=100
  (likewise :full, :lora; :scratch needs no init_from.path)
  python -m jaxai.main --config=configs/mnist_transfer.py:pretrain_all --workdir=/tmp/transfer/all
  python -m jaxai.main --config=configs/mnist_transfer.py:fashion_probe --workdir=/tmp/transfer/fp \
      --config.init_from.path=/tmp/transfer/all

--config.max_train_examples=N keeps the first N target examples (of the kept classes).

Variants: 'pretrain' (digits 0-4; also ''), 'probe', 'full', 'lora', 'scratch' (digits 5-9, relabelled 0-4);
'pretrain_all' (all digits), 'fashion_probe', 'fashion_full', 'fashion_lora', 'fashion_scratch';
'tiny' (a tiny pretrain run, standalone) and 'tiny_probe', 'tiny_full', 'tiny_lora' (tests).

  probe    init_from the pretrain run with a fresh head (init_from.fresh='params/Dense_1/.*'); only
           the head trains (optimizer.trainable='Dense_1/.*').
  full     the same start; every parameter trains.
  lora     rank-4 adapters on every Conv and Dense kernel (config.lora), fresh; adapters and the head
           train, the pretrained kernels stay frozen.

The CNN here has no BatchNorm (model.batch_norm=False): with BatchNorm a frozen backbone would still
move its batch statistics in train mode, so a "frozen" probe would not be. Without it, frozen
parameters are the whole backbone state and stay bitwise unchanged.
"""
import ml_collections

from jaxai.tasks import classification

VARIANTS = ("pretrain", "probe", "full", "lora", "scratch", "pretrain_all", "fashion_probe",
            "fashion_full", "fashion_lora", "fashion_scratch", "tiny", "tiny_probe", "tiny_full",
            "tiny_lora")
HEAD = "Dense_1/.*"  # the CNN's output layer; Conv_*, Dense_0 are the backbone.


def get_config(variant: str = "pretrain"):
  variant = variant or "pretrain"
  if variant not in VARIANTS:
    raise ValueError(f"Unknown variant {variant!r} of mnist_transfer; use one of {VARIANTS}.")
  config = classification.default_config()
  method = {"tiny": "pretrain"}.get(variant, variant.split("_")[-1])  # pretrain|all|probe|full|lora|scratch
  fashion = variant.startswith("fashion")
  config.dataset = "fashion_mnist:3.0.1" if fashion else "mnist:3.0.1"
  if not fashion and variant != "pretrain_all":
    config.classes = "0-4" if method == "pretrain" else "5-9"
  config.model = ml_collections.ConfigDict(dict(
      name="cnn", features=(16, 32), convs_per_block=1, dense=128, dropout_rate=0.3, batch_norm=False))
  config.augment.crop_padding = 2
  config.batch_size = 64
  config.optimizer.name = "adamw"
  config.optimizer.weight_decay = 1e-4
  if method in ("pretrain", "all"):
    config.num_epochs = 3.0
    config.optimizer.learning_rate = 3e-3
    config.optimizer.warmup_steps = 100
  else:  # adapting: a fixed budget of train steps whatever the number of target examples.
    config.num_train_steps = 600
    config.optimizer.learning_rate = {"probe": 3e-3, "full": 1e-3, "lora": 3e-3, "scratch": 3e-3}[method]
    config.optimizer.warmup_steps = 50
  if method in ("probe", "full"):
    config.init_from.fresh = "params/" + HEAD  # a new head; the backbone comes from init_from.path.
  if method == "probe":
    config.optimizer.trainable = HEAD
  if method == "lora":
    config.lora.rank = 4
    config.lora.alpha = 8.0
    config.optimizer.trainable = ".*_lora_[ab]|" + HEAD
    config.init_from.fresh = ".*_lora_[ab]|params/" + HEAD  # the source run has no adapters.
  config.eval_every_steps = 0  # at the end only.
  config.checkpoint_every_steps = 1000
  if variant.startswith("tiny"):
    config.max_train_examples = 256
    config.max_eval_examples = 200
    config.batch_size = 32
    config.eval_batch_size = 100
    config.num_train_steps = 8
    config.optimizer.warmup_steps = 2
    config.model.features = (4, 8)
    config.model.dense = 16
    config.log_every_steps = 4
    config.checkpoint_every_steps = 4
  return config
