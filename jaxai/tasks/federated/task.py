"""Federated learning, simulated: FedAvg (McMahan et al. 2017), FedProx (Li et al. 2020), server
momentum (FedAvgM, Hsu et al. 2019) and DP-FedAvg (McMahan et al. 2018) over image classifiers.

K clients hold disjoint parts of the training set (jaxai.tasks.federated.partition). Each round, a
fraction C of them start from the global model, train E local epochs with batch B, and the server
averages their updates weighted by their example counts, then applies the average as a
pseudo-gradient with its own optimizer (SGD with lr 1 = FedAvg; momentum = FedAvgM).

One train step is ONE LOCAL STEP of every client of the round, not a whole round: XLA:CPU runs
convolutions inside lax.scan/while loops several times slower than as separate calls, so a round
is L = E * ceil(n_max / B) consecutive train steps (jaxai.tasks.federated.source), selected inside
the step with jnp.where (no control flow): at s = 0 the clients start from the global model, at
s = L - 1 the server aggregates. num_train_steps = rounds * L; a checkpoint mid-round holds the
clients' models, so a resumed run continues bitwise.

All clients of a round train at once in `extra['clients']` (leading axis: client slots), split
over the devices along the mesh's axes ('clients=-1' in the configs); each device trains its own
slots inside shard_map. `fl.client_parallelism`: 'unroll' loops over a device's slots at trace time
(measured here, McMahan's CNN, 10 clients, B=10, one local step: 115 ms unrolled against 458 ms
with vmap, which XLA:CPU runs as slow grouped convolutions); 'vmap' is the natural choice on GPU/TPU.

DP-FedAvg (`fl.dp.enabled`): clients are Poisson-sampled with probability C; each client's update is
clipped to L2 norm S (jax-privacy), the sum gets N(0, (sigma S)^2) noise and is divided by the
expected number of clients C K (unweighted): client-level (eps, delta)-DP, accounted per round.
"""
import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import PartitionSpec as P
from jax_privacy.clipping import clip_pytree

from jaxai import privacy
from jaxai.core import optim
from jaxai.core.config import trainer_config
from jaxai.core.evaluators import DatasetEvaluator, HostEvaluator
from jaxai.core.sharding import parse_mesh
from jaxai.core.state import TrainState
from jaxai.core.task import Task
from jaxai.data import pipeline
from jaxai.data.labelled import data_facts, load_examples
from jaxai.errors import UserError
from jaxai.models.classifiers import make_classifier
from jaxai.ops import images as image_ops
from jaxai.ops import losses
from jaxai.privacy import dpsgd
from jaxai.tasks.federated import partition as partition_lib
from jaxai.tasks.federated.source import ClientSource

PARALLELISM = ("unroll", "vmap")


def default_config() -> ml_collections.ConfigDict:
  config = trainer_config()
  config.task = "federated"
  config.dataset = "mnist:3.0.1"
  config.data_dir = ""
  config.download = True
  config.train_split, config.eval_split = "train", "test"
  config.classes = ""
  config.max_train_examples = 0
  config.max_eval_examples = 0
  config.eval_batch_size = 1000
  config.mesh = "clients=-1"
  config.model = ml_collections.ConfigDict(dict(name="fedavg_cnn"))
  config.optimizer.name = "sgd"          # the clients' optimizer, fresh every round.
  config.optimizer.momentum = 0.0
  config.optimizer.schedule = "constant"
  config.optimizer.warmup_steps = 0
  config.optimizer.learning_rate = 0.1
  config.fl = ml_collections.ConfigDict(dict(
      num_clients=100,               # K
      client_fraction=0.1,           # C: clients per round (the probability of each under DP).
      local_epochs=5,                # E
      local_batch_size=10,           # B; 0 = a client's whole data (FedSGD with E = 1).
      rounds=20,
      partition="iid",               # 'iid', 'shards' (McMahan's 2 per client) or 'dirichlet'.
      shards_per_client=2,
      dirichlet_alpha=0.5,
      proximal_mu=0.0,               # FedProx: + mu/2 ||w - w_global||^2 in every client's loss.
      server_learning_rate=1.0,
      server_momentum=0.0,           # > 0: FedAvgM.
      client_parallelism="unroll",   # 'unroll' (fast on CPU) or 'vmap' (GPU/TPU).
      eval_every_rounds=1,
      dp=privacy.default_config(),   # client-level DP-FedAvg; l2_clip_norm is S.
  ))
  return config


def check_config(fl) -> None:
  if not 0 < fl.client_fraction <= 1:
    raise UserError(f"config.fl.client_fraction={fl.client_fraction} must be in (0, 1]: the fraction "
                    "of clients that train each round.")
  for key, low in (("local_epochs", 1), ("rounds", 1), ("eval_every_rounds", 0), ("local_batch_size", 0)):
    if fl[key] < low:
      raise UserError(f"config.fl.{key}={fl[key]} must be >= {low}.")
  if fl.proximal_mu < 0 or fl.server_learning_rate <= 0 or not 0 <= fl.server_momentum < 1:
    raise UserError("config.fl: proximal_mu must be >= 0, server_learning_rate > 0 and server_momentum "
                    f"in [0, 1); got {fl.proximal_mu}, {fl.server_learning_rate}, {fl.server_momentum}.")
  if fl.client_parallelism not in PARALLELISM:
    raise UserError(f"config.fl.client_parallelism={fl.client_parallelism!r}: use one of {PARALLELISM}.")


def stack(trees):
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def select(flag, new, old):
  return jax.tree.map(lambda a, b: jnp.where(flag, a, b), new, old)


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  fl, dp = config.fl, config.fl.dp
  check_config(fl)
  load = lambda split, n: load_examples(config, split, n)
  train = test = None
  if facts is None:
    train, test = load(config.train_split, config.max_train_examples), load(config.eval_split, config.max_eval_examples)
    facts = data_facts(train, test)
  load_train = lambda: train if train is not None else load(config.train_split, config.max_train_examples)
  split = functools.cache(lambda: partition_lib.partition(
      np.asarray(load_train()["label"]), fl.num_clients, fl.partition, config.seed,
      shards_per_client=fl.shards_per_client, alpha=fl.dirichlet_alpha))
  if "client_sizes" not in facts:  # a new run; a restored one knows its sizes and splits on first use.
    facts = dict(facts) | {"client_sizes": [len(p) for p in split()]}
  num_classes, image_shape = facts["num_classes"], tuple(facts["image_shape"])
  mean, std = np.asarray(facts["mean"], np.float32), np.asarray(facts["std"], np.float32)

  devices = jax.device_count()
  expected_clients = fl.client_fraction * fl.num_clients
  if dp.enabled:  # Poisson: room for 4 standard deviations more than expected.
    slots = min(fl.num_clients, math.ceil(expected_clients + 4 * math.sqrt(expected_clients) + 1))
  else:
    slots = max(1, round(expected_clients))
  slots = -(-slots // devices) * devices  # empty slots (weight 0) fill the last device.
  source = ClientSource(load_train, split, facts["client_sizes"], local_batch_size=fl.local_batch_size, local_epochs=fl.local_epochs,
                        client_fraction=fl.client_fraction, seed=config.seed, poisson=dp.enabled,
                        num_slots=slots, partition=fl.partition)
  local_steps = source.local_steps
  num_steps = fl.rounds * local_steps
  if config.num_train_steps not in (0, num_steps):
    raise UserError(f"config.num_train_steps={config.num_train_steps}: a federated run trains "
                    f"config.fl.rounds rounds of {local_steps} local steps; set fl.rounds instead (or 0).")

  model = make_classifier(config.model, num_classes)
  client_tx = optim.make_optimizer(config.optimizer, num_steps)
  server_tx = optax.sgd(fl.server_learning_rate, momentum=fl.server_momentum or None)

  def init(rng) -> TrainState:
    variables = dict(model.init({"params": rng}, jnp.zeros((1,) + image_shape), train=False))
    params = variables.pop("params")
    clients = {"params": stack([params] * slots), "opt_state": jax.vmap(client_tx.init)(stack([params] * slots))}
    return TrainState.create(params, server_tx, model_state=variables, extra={"clients": clients})

  abstract = jax.eval_shape(init, jax.random.key(0))
  if abstract.model_state:
    raise UserError(f"config.model {config.model.name!r} keeps {sorted(abstract.model_state)} (BatchNorm): "
                    "clients' batch statistics are not averaged here. Use a model without them: "
                    "'fedavg_cnn', or --config.model.batch_norm=False for 'cnn'.")
  planned_epsilon = None
  if dp.enabled:
    planned_epsilon = privacy.refuse_over_budget(dp, fl.client_fraction, fl.rounds, unit="client",
                                                 where="config.fl.dp")

  def local_step(global_params, p, opt_state, image, label, mask, rng):
    """One client's update on its rows (a client without rows this step keeps its model)."""
    x = image_ops.normalize(image, mean, std)
    real = mask.astype(jnp.float32)

    def loss_fn(p):
      logits = model.apply({"params": p}, x, train=True, rngs={"dropout": rng})
      per_example = losses.cross_entropy(logits, label)
      loss = jnp.sum(per_example * real) / jnp.maximum(real.sum(), 1.0)
      if fl.proximal_mu:
        loss += 0.5 * fl.proximal_mu * optax.tree.norm(optax.tree.sub(p, global_params), squared=True)
      return loss, (jnp.sum(per_example * real), jnp.sum(losses.correct(logits, label) * real))

    (_, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(p)
    updates, new_opt = client_tx.update(grads, opt_state, p)
    has_rows = mask.any()
    return select(has_rows, optax.apply_updates(p, updates), p), select(has_rows, new_opt, opt_state), sums

  def local_steps_of(global_params, params, opt_state, batch, rngs):
    """Every slot (of this device) takes its local step."""
    args = (params, opt_state, batch["image"], batch["label"], batch["mask"], rngs)
    if fl.client_parallelism == "vmap":
      return jax.vmap(lambda *a: local_step(global_params, *a))(*args)
    outs = [local_step(global_params, *jax.tree.map(lambda a: a[i], args)) for i in range(len(rngs))]
    return stack(outs)

  def all_clients(global_params, params, opt_state, batch, rngs):
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
      return local_steps_of(global_params, params, opt_state, batch, rngs)
    split = P(tuple(mesh.axis_names))  # per device: its own slots (no partitioning of their convolutions).
    return jax.shard_map(local_steps_of, in_specs=(P(), split, split, split, split), out_specs=split)(
        global_params, params, opt_state, batch, rngs)

  def aggregate(state, client_params, weight, noise_rng):
    """The server's new (params, opt_state) from the clients' models."""
    deltas = jax.tree.map(lambda g, c: g[None] - c, state.params, client_params)  # (slots, ...)
    if dp.enabled:
      clipped = jax.vmap(lambda d: clip_pytree(d, dp.l2_clip_norm)[0])(deltas)
      active = (weight > 0).astype(jnp.float32)
      summed = jax.tree.map(lambda d: jnp.tensordot(active, d, 1), clipped)
      noisy = dpsgd.add_noise(summed, dp.noise_multiplier * dp.l2_clip_norm, noise_rng)
      mean_delta = jax.tree.map(lambda d: d / expected_clients, noisy)
    else:
      share = weight / jnp.maximum(weight.sum(), 1.0)
      mean_delta = jax.tree.map(lambda d: jnp.tensordot(share, d, 1), deltas)
    updates, opt_state = server_tx.update(mean_delta, state.opt_state, state.params)
    return optax.apply_updates(state.params, updates), opt_state

  def train_step(state: TrainState, batch, rng):
    s = state.step % local_steps
    first, last = s == 0, s == local_steps - 1
    client_rng, noise_rng = jax.random.split(rng)
    clients = state.extra["clients"]
    start = stack([state.params] * slots)
    params = select(first, start, clients["params"])
    opt_state = select(first, jax.vmap(client_tx.init)(start), clients["opt_state"])
    params, opt_state, (loss_sum, correct_sum) = all_clients(
        state.params, params, opt_state, batch, jax.random.split(client_rng, slots))
    new_global, new_server = aggregate(state, params, batch["weight"], noise_rng)
    rows = jnp.maximum(batch["mask"].sum(), 1)
    metrics = {"loss": loss_sum.sum() / rows, "accuracy": correct_sum.sum() / rows,
               "active_clients": batch["mask"].any(axis=1).sum()}
    return state.replace(step=state.step + 1, params=select(last, new_global, state.params),
                         opt_state=select(last, new_server, state.opt_state),
                         extra={"clients": {"params": params, "opt_state": opt_state}}), metrics

  def eval_step(state, batch):
    logits = model.apply({"params": state.params}, image_ops.normalize(batch["image"], mean, std), train=False)
    return losses.masked_sums(logits, batch["label"], batch["mask"])

  param_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(abstract.params))
  client_counts = {}

  def round_stats(_, step):
    rounds = step // local_steps
    for r in range(len(client_counts), rounds):
      client_counts[r] = len(source.clients(r))
    total = sum(client_counts[r] for r in range(rounds))
    return {"fl/round": rounds, "fl/clients": total / max(rounds, 1),
            "fl/communicated_bytes": 2 * param_bytes * total}  # the model down and the update up.

  load_test = lambda: test if test is not None else load(config.eval_split, config.max_eval_examples)
  evaluators = [DatasetEvaluator(eval_step, lambda: pipeline.padded_batches(load_test(), config.eval_batch_size),
                                 every_steps=fl.eval_every_rounds * local_steps),
                HostEvaluator(round_stats, every_steps=config.log_every_steps, view=lambda state: ())]
  if dp.enabled:
    evaluators.append(privacy.epsilon_evaluator(dp, fl.client_fraction, config.log_every_steps,
                                                steps_per_release=local_steps))
  axes = tuple(parse_mesh(config.mesh))
  summary = (f"{config.dataset}: {fl.num_clients} clients ({fl.partition}, {min(facts['client_sizes'])}-"
             f"{max(facts['client_sizes'])} examples), C={fl.client_fraction} ({slots} slots), E={fl.local_epochs}, "
             f"B={fl.local_batch_size or 'all'}: {local_steps} local steps per round, {fl.rounds} rounds; "
             f"model {config.model.name}")
  if fl.proximal_mu:
    summary += f"; FedProx mu {fl.proximal_mu}"
  if fl.server_momentum:
    summary += f"; server momentum {fl.server_momentum}"
  if dp.enabled:
    summary += (f"; DP-FedAvg: clip {dp.l2_clip_norm}, noise {dp.noise_multiplier}: client-level epsilon "
                f"{planned_epsilon:.3f} at delta {dp.delta:g} after {fl.rounds} rounds")
  return Task(name="federated", init=init, train_step=train_step, source=source, num_train_steps=num_steps,
              evaluators=evaluators, sharding_rules=[(r"extra/clients/.*", (axes,))],
              units_per_step={"client_steps": slots}, facts=facts, summary=summary)
