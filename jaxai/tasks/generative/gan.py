"""GANs on small images: DCGAN (config.gan.conditional=False) and a class-conditional GAN (True).

One train step = `config.gan.disc_steps` discriminator updates, then one generator update, all in the
one jitted step. The global batch is split into disc_steps equal slices: discriminator update i sees
slice i's real images (and labels) against fakes from fresh noise (and the same labels); the
generator update then uses fresh noise for the whole batch, with the batch's labels. Losses are the
non-saturating ones (Goodfellow et al. 2014): D minimizes BCE(D(x), 1 - label_smoothing) +
BCE(D(G(z)), 0) (one-sided smoothing: real targets only), G minimizes -log D(G(z)).
Each update differentiates only its own network's parameters; the other's enter as constants.

Networks see images in [-1, 1]; `Generator.sample` returns [0, 1] and, with config.gan.ema_decay > 0,
uses the exponential moving average of the generator's weights (decay warmed up as
min(decay, (1 + t) / (10 + t)) over generator updates t, so early EMAs are not stuck at the init).
"""
import math

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai.core import optim
from jaxai.core.sources import DatasetSource
from jaxai.core.task import Task
from jaxai.errors import UserError
from jaxai.models import gan as gan_models
from jaxai.tasks.generative import common, quality


def default_config() -> ml_collections.ConfigDict:
  config = common.default_config()
  config.task = "gan"
  config.gan = ml_collections.ConfigDict(dict(
      conditional=False,          # True: generate a requested class (label embedding in G, projection in D).
      latent_dim=64,              # noise dimensions, z ~ N(0, I).
      disc_steps=1,               # discriminator updates per generator update; each on its own batch slice.
      label_smoothing=0.0,        # one-sided: real targets are 1 - this (fakes stay 0).
      ema_decay=0.0,              # EMA of generator weights used for sampling; 0 = off (raw weights).
  ))
  config.model = ml_collections.ConfigDict(dict(
      g_features=64,              # generator channels at 14x14 (2x at 7x7).
      d_features=64,              # discriminator channels at 14x14 (2x at 7x7).
      embed_dim=32,               # generator label embedding (conditional).
      upsample="subpixel",        # generator's stride-2 transposed convs: 'subpixel' (fast) or 'transpose'.
  ))
  config.optimizer.name = "adam"  # the generator's.
  config.optimizer.learning_rate = 2e-4
  config.optimizer.schedule = "constant"
  config.optimizer.b1 = 0.5
  config.discriminator_optimizer = optim.default_config()
  config.discriminator_optimizer.update(config.optimizer.to_dict())
  return config


@flax.struct.dataclass
class GanState:
  step: jax.Array   # () int32: train steps (= generator updates).
  params: dict      # {'generator', 'discriminator'}.
  opt_state: dict   # {'generator', 'discriminator'}.
  ema: dict         # generator params, EMA (a copy of the raw ones while ema_decay = 0).


def check_config(config) -> None:
  g = config.gan
  if g.disc_steps < 1:
    raise UserError(f"config.gan.disc_steps={g.disc_steps} must be >= 1 (discriminator updates per "
                    "generator update), e.g. --config.gan.disc_steps=1.")
  if config.batch_size % g.disc_steps:
    raise UserError(f"config.batch_size={config.batch_size} must be divisible by config.gan.disc_steps="
                    f"{g.disc_steps}: each discriminator update takes an equal slice of the batch.")
  if not 0.0 <= g.label_smoothing < 1.0:
    raise UserError(f"config.gan.label_smoothing={g.label_smoothing} must be in [0, 1).")
  if not 0.0 <= g.ema_decay < 1.0:
    raise UserError(f"config.gan.ema_decay={g.ema_decay} must be in [0, 1); 0 turns the EMA off.")
  if config.model.upsample not in gan_models.UPSAMPLES:
    raise UserError(f"config.model.upsample={config.model.upsample!r} is unknown; use one of "
                    f"{gan_models.UPSAMPLES}.")
  if g.latent_dim < 1:
    raise UserError(f"config.gan.latent_dim={g.latent_dim} must be >= 1.")


def check_facts(config, facts) -> None:
  shape = tuple(facts["image_shape"])
  if len(shape) != 3 or shape[0] % 4 or shape[1] % 4:
    raise UserError(f"{config.dataset} has images {shape}; the DCGAN networks need (H, W, C) with H and W "
                    "multiples of 4 (e.g. mnist, fashion_mnist).")
  if config.gan.conditional and facts["num_classes"] < 2:
    raise UserError(f"config.gan.conditional=True but {config.dataset} has {facts['num_classes']} class: "
                    "use a labelled dataset or --config.gan.conditional=False.")


def bce(logits, target):
  """Binary cross-entropy with logits against a constant target in [0, 1], per example."""
  return target * jax.nn.softplus(-logits) + (1.0 - target) * jax.nn.softplus(logits)


class Updates:
  """The pure pieces of a train step, shared by the task and the tests."""

  def __init__(self, config, facts):
    self.config, self.cond = config, config.gan.conditional
    self.image_shape = tuple(facts["image_shape"])
    self.num_classes = facts["num_classes"] if self.cond else 0
    self.G, self.D = gan_models.make_networks(config.model, self.image_shape, self.num_classes)
    self.num_steps = 0

  def set_steps(self, num_steps: int):
    self.num_steps = num_steps
    k = self.config.gan.disc_steps
    self.g_tx = optim.make_optimizer(self.config.optimizer, num_steps)
    self.d_tx = optim.make_optimizer(self.config.discriminator_optimizer, num_steps * k)
    self.g_lr = optim.make_schedule(self.config.optimizer, num_steps)
    self.d_lr = optim.make_schedule(self.config.discriminator_optimizer, num_steps * k)

  def labels_or_none(self, labels):
    return labels if self.cond else None

  def init(self, rng) -> GanState:
    g_rng, d_rng, x_rng = jax.random.split(rng, 3)
    # Dummy inputs drawn from the rng, not constants: XLA would constant-fold the convolutions (slow).
    z = jax.random.normal(x_rng, (1, self.config.gan.latent_dim), jnp.float32)
    x = jax.random.normal(x_rng, (1,) + self.image_shape, jnp.float32)
    y = jnp.zeros((1,), jnp.int32)
    g = self.G.init(g_rng, z, self.labels_or_none(y))["params"]
    d = self.D.init(d_rng, x, self.labels_or_none(y))["params"]
    return GanState(step=jnp.zeros((), jnp.int32), params={"generator": g, "discriminator": d},
                    opt_state={"generator": self.g_tx.init(g), "discriminator": self.d_tx.init(d)},
                    ema=jax.tree.map(jnp.copy, g))

  def generate(self, g_params, rng, labels):
    """(N,) labels -> (N, H, W, C) in [-1, 1] from fresh noise."""
    z = jax.random.normal(rng, (labels.shape[0], self.config.gan.latent_dim), jnp.float32)
    return self.G.apply({"params": g_params}, z, self.labels_or_none(labels))

  def d_update(self, state: GanState, real, labels, rng) -> tuple[GanState, dict]:
    """One discriminator update on real images (M, H, W, C) in [-1, 1] and (M,) labels."""
    fake = jax.lax.stop_gradient(self.generate(state.params["generator"], rng, labels))
    target = 1.0 - self.config.gan.label_smoothing

    def loss_fn(d_params):
      apply = lambda x: self.D.apply({"params": d_params}, x, self.labels_or_none(labels))
      real_logits, fake_logits = apply(real), apply(fake)
      loss = jnp.mean(bce(real_logits, target)) + jnp.mean(bce(fake_logits, 0.0))
      return loss, (jax.nn.sigmoid(real_logits).mean(), jax.nn.sigmoid(fake_logits).mean())

    (loss, (d_real, d_fake)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["discriminator"])
    updates, opt = self.d_tx.update(grads, state.opt_state["discriminator"], state.params["discriminator"])
    state = state.replace(params={**state.params, "discriminator": optax.apply_updates(
                              state.params["discriminator"], updates)},
                          opt_state={**state.opt_state, "discriminator": opt})
    metrics = {"d_loss": loss, "d_real": d_real, "d_fake": d_fake, "d_grad_norm": optax.global_norm(grads)}
    return state, metrics

  def g_update(self, state: GanState, labels, rng) -> tuple[GanState, dict]:
    """One generator update (non-saturating loss) on fresh noise for (N,) labels; updates the EMA."""
    d_params = jax.lax.stop_gradient(state.params["discriminator"])

    def loss_fn(g_params):
      fake = self.generate(g_params, rng, labels)
      return jnp.mean(bce(self.D.apply({"params": d_params}, fake, self.labels_or_none(labels)), 1.0))

    loss, grads = jax.value_and_grad(loss_fn)(state.params["generator"])
    updates, opt = self.g_tx.update(grads, state.opt_state["generator"], state.params["generator"])
    g = optax.apply_updates(state.params["generator"], updates)
    decay = self.config.gan.ema_decay
    if decay > 0:
      t = state.step.astype(jnp.float32)
      d = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
      ema = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state.ema, g)
    else:
      ema = g
    state = state.replace(params={**state.params, "generator": g},
                          opt_state={**state.opt_state, "generator": opt}, ema=ema)
    return state, {"g_loss": loss, "g_grad_norm": optax.global_norm(grads)}

  def train_step(self, state: GanState, batch, rng) -> tuple[GanState, dict]:
    k = self.config.gan.disc_steps
    real = common.to_unit(batch["image"]) * 2.0 - 1.0                       # (B, H, W, C) in [-1, 1]
    labels = batch["label"].astype(jnp.int32)                                # (B,)
    slices = (real.reshape((k, -1) + real.shape[1:]), labels.reshape(k, -1))  # (k, B/k, ...)

    d_metrics = []
    for i in range(k):  # unrolled: convolutions inside lax.scan run ~5x slower on XLA:CPU.
      state, m = self.d_update(state, slices[0][i], slices[1][i], jax.random.fold_in(rng, i))
      d_metrics.append(m)
    d_metrics = jax.tree.map(lambda *v: jnp.mean(jnp.stack(v)), *d_metrics)
    state, g_metrics = self.g_update(state, labels, jax.random.fold_in(rng, k))
    metrics = {**d_metrics, **g_metrics,
               "loss": d_metrics["d_loss"] + g_metrics["g_loss"],  # what the console line shows.
               "g_learning_rate": self.g_lr(state.step),
               "d_learning_rate": self.d_lr(state.step * k)}
    return state.replace(step=state.step + 1), metrics

  def sample(self, state: GanState, rng, condition):
    """(N,) int32 condition -> (N, H, W, C) in [0, 1], with the EMA weights when they are on."""
    params = state.ema if self.config.gan.ema_decay > 0 else state.params["generator"]
    return (self.generate(params, rng, jnp.asarray(condition, jnp.int32)) + 1.0) / 2.0


def make_generator(config, facts) -> common.Generator:
  check_config(config)
  check_facts(config, facts)
  updates = Updates(config, facts)
  names = tuple(facts["class_names"])
  if config.gan.conditional:
    return common.Generator(sample=updates.sample, conditioning="class", class_names=names,
                            of_classes=lambda labels: np.asarray(labels, np.int32),
                            parse=common.parse_class(names))
  return common.Generator(sample=updates.sample, conditioning="none", class_names=names,
                          of_classes=lambda labels: np.zeros(len(labels), np.int32),
                          parse=common.unconditional_parse)


def make_task(config, facts: dict | None = None) -> Task:
  """The GAN task; with `facts` (a saved run's) no data is read until training starts."""
  check_config(config)
  load = common.split_loader(config)
  load_train, load_test = lambda: load("train"), lambda: load("test")
  if facts is None:
    facts = common.data_facts(config, load_train(), load_test())
  check_facts(config, facts)
  source = DatasetSource(load_train, config.batch_size, config.seed,
                         sampling="shuffle", num_examples=facts["num_train_examples"])
  source.check()
  num_steps = config.num_train_steps or math.ceil(config.num_epochs * source.steps_per_epoch)
  updates = Updates(config, facts)
  updates.set_steps(num_steps)
  generator = make_generator(config, facts)
  params = jax.eval_shape(updates.init, jax.random.key(0)).params
  kind = "class-conditional GAN" if config.gan.conditional else "DCGAN"
  summary = (f"{config.dataset}: {facts['num_train_examples']} train images {tuple(facts['image_shape'])}; "
             f"{kind}, G {gan_models.count_params(params['generator']):,} / "
             f"D {gan_models.count_params(params['discriminator']):,} params, "
             f"{config.gan.disc_steps} D step(s) per G step")
  evaluators = [common.sample_grid(generator, config),
                *quality.evaluators(generator, config, facts, load_train, load_test)]
  return Task(name="gan", init=updates.init, train_step=updates.train_step, source=source,
              num_train_steps=num_steps, evaluators=evaluators,
              units_per_step={"examples": config.batch_size}, facts=facts, summary=summary)
