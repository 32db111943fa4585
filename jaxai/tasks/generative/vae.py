"""Variational autoencoders on binarized images: the VAE (ELBO), the IWAE (importance-weighted bound)
and the conditional VAE, with a Gaussian encoder and a Bernoulli decoder (jaxai.models.vae).

Data. Pixels are binarized: training images dynamically by default (a fresh Bernoulli(pixel / 255)
draw at every step, inside the train step, from the step rng), or once with a fixed seed
(`config.vae.binarization='static'`, seed `config.vae.binarization_seed`). The test images are
always binarized once with a fixed seed (TEST_BINARIZATION_SEED, not a setting), so the evaluations
of every run, whatever its config, score the same binary test set.

Objective (`config.vae.objective`, k = `config.vae.num_samples`), with log weights
log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i = mean + std * eps_i:
  'elbo'  the mean of log w over the k samples (the k-sample estimate of the ELBO; k=1: the VAE);
  'iwae'  logsumexp_i log w_i - log k, the importance-weighted bound (k=1: the same as 'elbo').
train/loss is the negative of the bound, in nats per image (to minimise); train/neg_elbo is the
negative ELBO estimated from the same samples.

Evaluation, on the test split (nats per image, all to minimise):
  eval/neg_elbo          -ELBO: reconstruction + KL, with the KL in closed form and one fixed
                         posterior sample per test image (an upper bound on eval/nll in expectation).
  eval/reconstruction    -E_q log p(x|z) from that sample;  eval/kl  KL(q(z|x) || N(0, I)).
  eval/nll               -log p(x) estimated by importance sampling with q as the proposal:
                         -(logsumexp_i log w_i - log K), K = config.vae.eval_importance_samples,
                         drawn in chunks of config.vae.eval_chunk (memory stays bounded).
  eval/nll_importance_samples  K;  eval/nll_examples  the test images it averages over (all, or the
                         first config.vae.nll_max_examples);  eval/nll_squared  the mean of the per-image
                         NLL squared (with eval/nll: the standard error of the estimate over test images).
The noise of each test image is fixed (fold_in of its index), so the same state scores the same.
Pictures at every evaluation: 'samples' (decoder means of z ~ N(0, I); one row per class when
conditional), 'reconstructions' (rows of test inputs, each above its reconstruction from the
posterior mean) and 'interpolations' (each row: a test image, decodings along the line between the
posterior means of two test images, the other image).
"""
import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai.core import optim
from jaxai.core.evaluators import DatasetEvaluator, Evaluator
from jaxai.core.sources import DatasetSource
from jaxai.core.state import TrainState
from jaxai.core.summaries import Image
from jaxai.core.task import Task
from jaxai.data import pipeline
from jaxai.errors import UserError
from jaxai.models.vae import ACTIVATIONS, VAE
from jaxai.tasks.generative import common, quality

OBJECTIVES = ("elbo", "iwae")
BINARIZATIONS = ("dynamic", "static")
LOG_2PI = math.log(2 * math.pi)
TEST_BINARIZATION_SEED = 1234


def default_config() -> ml_collections.ConfigDict:
  config = common.default_config()
  config.task = "vae"
  config.vae = ml_collections.ConfigDict(dict(
      objective="elbo",             # 'elbo' | 'iwae' (see the module docstring).
      num_samples=1,                # k: posterior samples per training image.
      conditional=False,            # feed the label to the encoder and the decoder (a cVAE).
      binarization="dynamic",       # training images: 'dynamic' (fresh draw per step) | 'static' (once).
      binarization_seed=0,          # static binarization of the training images (the test set's is fixed).
      eval_importance_samples=5000, # K of eval/nll.
      eval_chunk=100,               # importance samples per chunk (memory: chunk x eval batch x pixels).
      nll_every_steps=0,            # eval/nll cadence: 0 = every evaluation, -1 = after the last step only.
      nll_max_examples=0,           # > 0: eval/nll on the first N test images only (eval/nll_examples).
      reconstructions=32,           # test images in the reconstruction grid.
      interpolation_pairs=4,        # rows of the interpolation strip.
      interpolation_steps=8,        # decodings between the two ends of each row.
  ))
  config.model = ml_collections.ConfigDict(dict(
      hidden=(200, 200),            # encoder widths; the decoder uses them reversed.
      latents=50,
      activation="tanh",            # one of jaxai.models.vae.ACTIVATIONS.
  ))
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.eps = 1e-4
  config.optimizer.end_learning_rate_factor = 0.1
  return config


def check_config(config) -> None:
  """Refuses bad settings before any data is read or anything compiles."""
  v, m = config.vae, config.model
  if v.objective not in OBJECTIVES:
    raise UserError(f"config.vae.objective={v.objective!r} is unknown; use one of {OBJECTIVES}.")
  if v.binarization not in BINARIZATIONS:
    raise UserError(f"config.vae.binarization={v.binarization!r} is unknown; use one of {BINARIZATIONS}.")
  for key in ("num_samples", "eval_importance_samples", "eval_chunk"):
    if v[key] < 1:
      raise UserError(f"config.vae.{key}={v[key]} must be >= 1.")
  if v.nll_every_steps < -1:
    raise UserError(f"config.vae.nll_every_steps={v.nll_every_steps}: use 0 (every evaluation), -1 (only "
                    "after the last step) or a positive number of steps.")
  if v.nll_max_examples < 0:
    raise UserError(f"config.vae.nll_max_examples={v.nll_max_examples} must be >= 0 (0 = every test image).")
  if v.reconstructions < 1 or v.interpolation_pairs < 1 or v.interpolation_steps < 1:
    raise UserError("config.vae.reconstructions, interpolation_pairs and interpolation_steps must be >= 1.")
  if m.latents < 1 or not m.hidden or min(m.hidden) < 1:
    raise UserError(f"config.model.latents={m.latents} and config.model.hidden={tuple(m.hidden)} must be "
                    "positive (e.g. hidden=(200, 200), latents=50).")
  if m.activation not in ACTIVATIONS:
    raise UserError(f"config.model.activation={m.activation!r} is unknown; use one of {sorted(ACTIVATIONS)}.")


# ---- The bounds: pure functions of a model's parameters, shared by training, evaluation and tests.

def bernoulli_log_prob(logits, x):
  """sum_d log Bernoulli(x_d; sigmoid(logits_d)) over the last axis, stable for any logits."""
  return jnp.sum(x * logits - jax.nn.softplus(logits), -1)


def standard_normal_log_prob(z):
  return -0.5 * jnp.sum(z ** 2 + LOG_2PI, -1)


def log_weights_given(model, params, x, y, mean, log_std, eps):
  """log p(x|z) + log p(z) - log q(z|x) at z = mean + exp(log_std) * eps.

  x: (B, D) binary; mean, log_std: (B, L) of q(z|x); eps: (K, B, L) -> (K, B)."""
  z = mean + jnp.exp(log_std) * eps
  logits = model.apply({"params": params}, z, y, method=VAE.decode)  # (K, B, D)
  log_q = -0.5 * jnp.sum(eps ** 2 + LOG_2PI, -1) - jnp.sum(log_std, -1)
  return bernoulli_log_prob(logits, x) + standard_normal_log_prob(z) - log_q


def log_weights(model, params, x, y, eps):
  """(K, B) log importance weights of x: (B, D) for noise eps: (K, B, L)."""
  mean, log_std = model.apply({"params": params}, x, y, method=VAE.encode)
  return log_weights_given(model, params, x, y, mean, log_std, eps)


def elbo(log_w):
  """(K, B) -> (B,): the k-sample estimate of the ELBO."""
  return jnp.mean(log_w, 0)


def iwae_bound(log_w):
  """(K, B) -> (B,): log (1/k) sum_i w_i, computed with logsumexp."""
  return jax.nn.logsumexp(log_w, 0) - math.log(log_w.shape[0])


BOUNDS = {"elbo": elbo, "iwae": iwae_bound}


def gaussian_kl(mean, log_std):
  """KL(N(mean, std^2) || N(0, I)), summed over the last axis."""
  return 0.5 * jnp.sum(mean ** 2 + jnp.exp(2 * log_std) - 1.0 - 2 * log_std, -1)


def importance_nll(model, params, x, y, keys, num_samples: int, chunk: int):
  """-log p(x) estimated with `num_samples` importance samples from q(z|x), drawn `chunk` at a time
  (lax.scan keeps one chunk of decodings in memory). keys: one rng per row of x. -> (B,) nats."""
  mean, log_std = model.apply({"params": params}, x, y, method=VAE.encode)
  chunk = min(chunk, num_samples)
  num_chunks = -(-num_samples // chunk)

  def body(running, c):  # running: (B,) logsumexp of the log weights so far.
    eps = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, c), (chunk, mean.shape[-1])))(keys)
    log_w = log_weights_given(model, params, x, y, mean, log_std, jnp.swapaxes(eps, 0, 1))  # (chunk, B)
    valid = c * chunk + jnp.arange(chunk) < num_samples  # the last chunk may run past num_samples.
    log_w = jnp.where(valid[:, None], log_w, -jnp.inf)
    return jnp.logaddexp(running, jax.nn.logsumexp(log_w, 0)), None

  total, _ = jax.lax.scan(body, jnp.full(x.shape[:1], -jnp.inf), jnp.arange(num_chunks))
  return -(total - math.log(num_samples))


# ---- Data.

def binarize_static(images: np.ndarray, seed) -> np.ndarray:
  """uint8 pixels -> uint8 {0, 1}, each pixel 1 with probability pixel / 255 (numpy, fixed seed)."""
  return (np.random.default_rng(seed).random(images.shape) < images / 255.0).astype(np.uint8)


def _flat(images):
  return images.reshape(images.shape[0], -1)


def make_model(config, facts) -> VAE:
  shape = facts["image_shape"]
  return VAE(num_pixels=int(np.prod(shape)), hidden=tuple(config.model.hidden), latents=config.model.latents,
             activation=config.model.activation,
             num_classes=facts["num_classes"] if config.vae.conditional else 0)


def make_generator(config, facts) -> common.Generator:
  """Decoder Bernoulli means of z ~ N(0, I); conditional models take a class."""
  check_config(config)
  model, shape = make_model(config, facts), tuple(facts["image_shape"])
  names = tuple(facts["class_names"])

  def sample(state, rng, condition):
    z = jax.random.normal(rng, (condition.shape[0], config.model.latents))
    y = condition if config.vae.conditional else None
    logits = model.apply({"params": state.params}, z, y, method=VAE.decode)
    return jax.nn.sigmoid(logits).reshape((-1,) + shape)

  if config.vae.conditional:
    return common.Generator(sample, "class", names, of_classes=lambda labels: np.asarray(labels, np.int32),
                            parse=common.parse_class(names))
  return common.Generator(sample, "none", names, of_classes=lambda labels: np.zeros(len(labels), np.int32),
                          parse=common.unconditional_parse)


def interpolation_pairs(labels: np.ndarray, num_pairs: int, same_class: bool) -> np.ndarray:
  """(P, 2) indices of test images: consecutive ones, or (conditional) two of the same class each."""
  if not same_class:
    n = min(num_pairs, len(labels) // 2)
    return np.arange(2 * n).reshape(n, 2)
  pairs = []
  for c in np.unique(labels):
    where = np.flatnonzero(labels == c)
    if len(where) >= 2:
      pairs.append(where[:2])
  return np.asarray(pairs[:num_pairs]).reshape(-1, 2)


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  """The VAE / IWAE / cVAE task; with `facts` (a saved run's) no data is read until it is needed."""
  check_config(config)
  v = config.vae
  raw = common.split_loader(config)
  if facts is None:
    facts = common.data_facts(config, raw("train"), raw("test"))
  shape = tuple(facts["image_shape"])
  num_pixels = int(np.prod(shape))

  def train_arrays():
    images = raw("train")["image"]
    if v.binarization == "static":  # stored as {0, 255} so the step reads both kinds the same way.
      images = binarize_static(images, [v.binarization_seed, 0]) * np.uint8(255)
    return {"image": images, "label": raw("train")["label"]}

  @functools.cache
  def test_arrays():
    t = raw("test")
    return {"image": binarize_static(t["image"], TEST_BINARIZATION_SEED), "label": t["label"],
            "index": np.arange(len(t["label"]), dtype=np.int32)}

  source = DatasetSource(train_arrays, config.batch_size, config.seed, sampling="shuffle",
                         num_examples=facts["num_train_examples"])
  source.check()
  num_steps = config.num_train_steps or math.ceil(config.num_epochs * source.steps_per_epoch)
  tx = optim.make_optimizer(config.optimizer, num_steps)
  learning_rate = optim.make_schedule(config.optimizer, num_steps)
  model = make_model(config, facts)
  bound = BOUNDS[v.objective]
  label = (lambda batch: batch["label"]) if v.conditional else (lambda batch: None)
  eval_key = jax.random.key(config.seed + 1)

  def init(rng) -> TrainState:
    y = jnp.zeros((1,), jnp.int32) if v.conditional else None
    params = model.init(rng, jnp.zeros((1, num_pixels), jnp.float32), y)["params"]
    return TrainState.create(params, tx)

  def train_step(state: TrainState, batch, rng):
    binarize_rng, eps_rng = jax.random.split(rng)
    p = _flat(common.to_unit(batch["image"]))  # (B, D) in [0, 1]; {0, 1} when statically binarized.
    x = jax.random.bernoulli(binarize_rng, p).astype(jnp.float32) if v.binarization == "dynamic" else p
    eps = jax.random.normal(eps_rng, (v.num_samples, x.shape[0], config.model.latents))

    def loss_fn(params):
      log_w = log_weights(model, params, x, label(batch), eps)
      return -jnp.mean(bound(log_w)), log_w

    (loss, log_w), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {"loss": loss, "neg_elbo": -jnp.mean(log_w), "grad_norm": optax.global_norm(grads),
               "learning_rate": learning_rate(state.step)}
    return state.apply_gradients(tx, grads), metrics

  def eval_keys(batch):
    return jax.vmap(lambda i: jax.random.fold_in(eval_key, i))(batch["index"])

  def elbo_step(state, batch):
    x, y, mask = _flat(batch["image"]).astype(jnp.float32), label(batch), batch["mask"].astype(jnp.float32)
    mean, log_std = model.apply({"params": state.params}, x, y, method=VAE.encode)
    eps = jax.vmap(lambda k: jax.random.normal(k, mean.shape[-1:]))(eval_keys(batch))
    logits = model.apply({"params": state.params}, mean + jnp.exp(log_std) * eps, y, method=VAE.decode)
    reconstruction, kl = -bernoulli_log_prob(logits, x), gaussian_kl(mean, log_std)
    return {"neg_elbo": jnp.sum((reconstruction + kl) * mask),
            "reconstruction": jnp.sum(reconstruction * mask), "kl": jnp.sum(kl * mask),
            "count": jnp.sum(mask)}

  def nll_step(state, batch):
    x, y, mask = _flat(batch["image"]).astype(jnp.float32), label(batch), batch["mask"].astype(jnp.float32)
    nll = importance_nll(model, state.params, x, y, eval_keys(batch), v.eval_importance_samples, v.eval_chunk)
    count = jnp.sum(mask)  # the evaluator divides every sum by the count: constants are sent times count.
    return {"nll": jnp.sum(nll * mask), "nll_squared": jnp.sum(nll ** 2 * mask),
            "nll_importance_samples": v.eval_importance_samples * count, "nll_examples": num_nll * count,
            "count": count}

  num_nll = min(v.nll_max_examples or facts["num_eval_examples"], facts["num_eval_examples"])
  eval_batches = lambda: pipeline.padded_batches(test_arrays(), config.eval_batch_size)
  nll_batches = lambda: pipeline.padded_batches({k: a[:num_nll] for k, a in test_arrays().items()},
                                                config.eval_batch_size)
  nll_every = num_steps + 1 if v.nll_every_steps == -1 else v.nll_every_steps  # never due before the end.
  generator = make_generator(config, facts)
  # The NLL first: the ELBO's eval/examples (every test image) is the one logged.
  evaluators = [DatasetEvaluator(nll_step, nll_batches, every_steps=nll_every),
                DatasetEvaluator(elbo_step, eval_batches),
                common.sample_grid(generator, config),
                *picture_evaluators(model, config, test_arrays, label),
                *quality.evaluators(generator, config, facts, lambda: raw("train"), lambda: raw("test"))]
  kind = {"elbo": "VAE (ELBO)", "iwae": "IWAE"}[v.objective]
  summary = (f"{config.dataset}: {facts['num_train_examples']} train images binarized {v.binarization}ally, "
             f"{facts['num_eval_examples']} test images binarized statically (fixed seed); "
             f"{'conditional ' if v.conditional else ''}{kind} k={v.num_samples}, MLP {num_pixels}-"
             f"{'-'.join(map(str, config.model.hidden))}-{config.model.latents} {config.model.activation}; "
             f"eval/nll with {v.eval_importance_samples} importance samples on {num_nll} test images")
  return Task(name="vae", init=init, train_step=train_step, source=source, num_train_steps=num_steps,
              evaluators=evaluators, units_per_step={"examples": config.batch_size}, facts=facts,
              summary=summary)


def picture_evaluators(model, config, test_arrays, label) -> list:
  """Reconstructions and latent interpolations of fixed test images, as image grids."""
  v = config.vae

  def fixed(index):  # the test rows at `index`, read when the evaluator is first traced.
    t = test_arrays()
    return {k: t[k][index] for k in ("image", "label")}

  def reconstruct(state, rng):
    batch = fixed(np.arange(min(v.reconstructions, len(test_arrays()["label"]))))
    x, y = _flat(batch["image"]).astype(jnp.float32), label(batch)
    mean, _ = model.apply({"params": state.params}, x, y, method=VAE.encode)
    recon = jax.nn.sigmoid(model.apply({"params": state.params}, mean, y, method=VAE.decode))
    return {"inputs": batch["image"].astype(jnp.float32), "recon": recon.reshape(batch["image"].shape)}

  def finish_reconstructions(out, step):
    inputs, recon = out["inputs"], out["recon"]
    cols = 8
    pad = -len(inputs) % cols  # whole rows: inputs row, then the row of their reconstructions.
    inputs, recon = (np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) for a in (inputs, recon))
    rows = np.stack([a.reshape(-1, cols, *a.shape[1:]) for a in (inputs, recon)], 1)  # (R, 2, cols, H, W, C)
    return {"reconstructions": Image(rows.reshape(-1, *inputs.shape[1:]), columns=cols)}

  def interpolate(state, rng):
    t = test_arrays()
    pairs = interpolation_pairs(t["label"], v.interpolation_pairs, same_class=v.conditional)  # (P, 2)
    ends = fixed(pairs.reshape(-1))
    x = _flat(ends["image"]).astype(jnp.float32).reshape(pairs.shape[0], 2, -1)
    y = label(ends)
    y = None if y is None else y.reshape(pairs.shape)[:, 0]  # (P,): both ends share the class.
    mean, _ = model.apply({"params": state.params}, x, None if y is None else y[:, None], method=VAE.encode)
    alpha = jnp.linspace(0.0, 1.0, v.interpolation_steps)[:, None, None]  # (S, 1, 1)
    z = (1 - alpha) * mean[None, :, 0] + alpha * mean[None, :, 1]  # (S, P, L)
    means = jax.nn.sigmoid(model.apply({"params": state.params}, z, y, method=VAE.decode))  # (S, P, D)
    strip = jnp.concatenate([x[None, :, 0], means, x[None, :, 1]], 0)  # (S + 2, P, D)
    return jnp.swapaxes(strip, 0, 1).reshape((-1,) + ends["image"].shape[1:])

  columns = v.interpolation_steps + 2
  return [Evaluator(reconstruct, finish=finish_reconstructions),
          Evaluator(interpolate, finish=lambda out, step: {"interpolations": Image(out, columns=columns)})]
