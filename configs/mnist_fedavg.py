"""FedAvg on MNIST with the CNN of McMahan et al. 2017 (two 5x5 convolutions, 32 and 64 channels,
dense 512; 1.66M parameters), K = 100 clients, C = 0.1, E = 5, B = 10, client SGD. Variants:
  ''           IID (the paper: 99% test accuracy in 20 rounds; FedSGD 626)
  'noniid'     McMahan's pathological split: 2 shards of one label each per client (paper: 229 rounds)
  'dirichlet'  per-class Dirichlet(0.5) proportions over the clients
  'fedprox'    'noniid' with FedProx's proximal term (mu 0.01)
  'fedavgm'    'noniid' with server momentum 0.9 (FedAvgM; server lr 1 - 0.9 keeps the step size)
  'fedsgd'     E = 1, B = all of a client's data: one gradient step per client per round
  'dp'         DP-FedAvg: 1,000 clients, each in a round with probability 0.05, updates clipped to 1.0,
               noise multiplier 1.0 (client-level privacy: meaningful with many clients)
  'tiny', 'tiny_noniid', 'tiny_dp': seconds, for tests.

  python -m jaxai.main --config=configs/mnist_fedavg.py --workdir=/tmp/fedavg
  python -m jaxai.main --config=configs/mnist_fedavg.py:tiny --workdir=/tmp/fedavg_tiny \
      --config.data_dir=../shared/data/tfds
"""
from jaxai.tasks import federated

VARIANTS = ("", "noniid", "dirichlet", "fedprox", "fedavgm", "fedsgd", "dp", "tiny", "tiny_noniid", "tiny_dp")


def get_config(variant: str = ""):
  if variant not in VARIANTS:
    raise ValueError(f"Unknown variant {variant!r} of mnist_fedavg; use one of {VARIANTS}.")
  config = federated.default_config()
  config.dataset = "mnist:3.0.1"
  config.model.name = "fedavg_cnn"
  config.optimizer.learning_rate = 0.1
  fl = config.fl
  fl.rounds = 50
  config.log_every_steps = 100
  config.checkpoint_every_steps = 300    # one IID round.
  if variant in ("noniid", "fedprox", "fedavgm", "tiny_noniid"):
    fl.partition, fl.rounds = "shards", 300
  if variant == "dirichlet":
    fl.partition, fl.dirichlet_alpha = "dirichlet", 0.5
  if variant == "fedprox":
    fl.proximal_mu = 0.01
  if variant == "fedavgm":
    fl.server_momentum, fl.server_learning_rate = 0.9, 0.1
  if variant == "fedsgd":
    fl.local_epochs, fl.local_batch_size, fl.rounds = 1, 0, 1000
    config.log_every_steps = config.checkpoint_every_steps = 50
  if variant in ("dp", "tiny_dp"):
    fl.num_clients, fl.client_fraction, fl.rounds = 1000, 0.05, 200
    fl.local_epochs = 1
    fl.client_parallelism = "vmap"  # up to 80 client slots: unrolled, the step would compile 80 copies.
    fl.dp.update(enabled=True, l2_clip_norm=1.0, noise_multiplier=1.0, delta=1e-3)  # delta < 1 / clients.
  if variant.startswith("tiny"):
    config.max_train_examples, config.max_eval_examples = 400, 200
    config.eval_batch_size = 100
    config.model.features, config.model.dense = (4, 8), 16
    fl.num_clients, fl.client_fraction = 8, 0.5
    fl.local_epochs, fl.local_batch_size, fl.rounds = 1, 20, 2   # 50 examples per client: 3 local steps.
    config.log_every_steps, config.checkpoint_every_steps = 3, 2  # a checkpoint mid-round.
    if variant == "tiny_dp":  # 21 client slots: vmapped, like ':dp' (compiles in half the time here).
      fl.num_clients, fl.client_fraction, fl.dp.delta = 20, 0.4, 1e-2
  return config
