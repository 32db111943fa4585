"""Image classification: config -> in-memory data -> Flax model -> pure train/eval steps.

The whole domain logic is here; the shared trainer (`jaxai.core.trainer`) runs it. Images stay
uint8 on the host; normalization and augmentation (random crop with padding, horizontal flip) run on
device inside the jitted step, seeded by the step's rng, so they cost no host time and replay exactly
on resume.

Adversarial training (`config.adversarial.method`) makes its examples inside the train step, in pixel
space after augmentation, with the model in inference mode (jaxai.attacks):
  'madry'   PGD examples replace the clean ones (Madry et al. 2018): min_theta E max_delta CE.
  'trades'  CE on clean examples + beta * KL(p(x) || p(x')), x' the PGD maximizer of that KL
            (Zhang et al. 2019), started uniformly in the ball.
`adversarial.eps_warmup_steps` ramps eps (and the step size) linearly from 0.
"""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai import attacks
from jaxai.compress import transforms
from jaxai.core import optim
from jaxai.core.config import trainer_config
from jaxai.core.evaluators import DatasetEvaluator
from jaxai.core.sources import DatasetSource
from jaxai.core.state import TrainState
from jaxai.core.task import Task
from jaxai.data import pipeline, sources
from jaxai.errors import UserError
from jaxai.models.classifiers import make_classifier
from jaxai.ops import images as image_ops
from jaxai.ops import losses
from jaxai.tasks.classification import robust, saliency

def default_config() -> ml_collections.ConfigDict:
  """Every key a classification experiment may set; experiment configs override some."""
  config = trainer_config()
  config.task = "classification"
  config.dataset = "mnist"         # see jaxai.data.sources: TFDS name[:version], 'digits', 'synthetic:...'.
  config.data_dir = ""             # TFDS data_dir; '' = $TFDS_DATA_DIR or ~/tensorflow_datasets.
  config.download = True           # download and prepare a missing TFDS dataset (needs network).
  config.train_split = "train"
  config.eval_split = "test"
  config.max_train_examples = 0    # > 0: use only the first N training examples (tests, smoke runs).
  config.max_eval_examples = 0     # > 0: evaluate on the first N examples only.
  config.eval_batch_size = 1000    # global; the last eval batch is padded and masked.
  config.label_smoothing = 0.0
  config.augment = ml_collections.ConfigDict(dict(
      crop_padding=0,              # random crop after zero-padding each side by this many pixels.
      horizontal_flip=False,       # random left-right flips.
  ))
  config.model = ml_collections.ConfigDict(dict(name="cnn"))  # other keys go to the module's constructor.
  config.adversarial = ml_collections.ConfigDict(dict(
      method="none",               # 'none', 'madry' or 'trades'.
      norm="linf", eps=0.3,        # eps in pixel units (pixels in [0, 1]).
      steps=40, step_size=0.01,    # the training attack: PGD steps and step size (0: 2.5 eps / steps).
      trades_beta=6.0,
      eps_warmup_steps=0,          # > 0: eps grows linearly from 0 over this many train steps.
      unroll=1,                    # the attack loop's unroll (see jaxai.attacks.pgd).
  ))
  config.robust_eval = robust.default_config()
  config.interpret = saliency.default_config()
  return transforms.add_defaults(config)  # config.lora, config.quantization


ADVERSARIAL_METHODS = ("none", "madry", "trades")


def check_adversarial(cfg, image_shape) -> None:
  if cfg.method not in ADVERSARIAL_METHODS:
    raise UserError(f"config.adversarial.method={cfg.method!r} is unknown; use one of {ADVERSARIAL_METHODS}.")
  if cfg.method != "none":
    try:
      attacks.check("pgd", cfg.eps, cfg.norm, cfg.steps, 1, cfg.step_size, image_shape=image_shape)
    except UserError as e:
      raise UserError(f"config.adversarial: {e}") from None
    if cfg.eps_warmup_steps < 0 or cfg.trades_beta < 0:
      raise UserError("config.adversarial.eps_warmup_steps and trades_beta must be >= 0.")


def normalize_pixels(x, mean, std):
  """Float pixels in [0, 1] -> the model's input (the training set's per-channel standardization)."""
  return image_ops.normalize(x * 255.0, mean, std)


def pixel_classifier(model, mean, std):
  """`apply(variables, x) -> logits` on float pixels x (B, H, W, C) in [0, 1], in inference mode: what
  attacks and saliency maps see."""
  return lambda variables, x: model.apply(variables, normalize_pixels(x, mean, std), train=False)


def kl_from(probs):
  """objective(logits, _) -> (B,) KL(probs || softmax(logits)), the TRADES regularizer."""
  def kl(logits, _):
    return jnp.sum(probs * (jnp.log(jnp.maximum(probs, 1e-12)) - jax.nn.log_softmax(logits)), -1)
  return kl


def data_facts(train: dict, test: dict) -> dict:
  """What the model and the preprocessing depend on, computed once from the data (JSON)."""
  # Per-channel statistics of the training images (deterministic: computed from the data).
  pixels = train["image"].reshape(-1, train["image"].shape[-1]).astype(np.float64)
  return {"num_classes": int(max(train["label"].max(), test["label"].max())) + 1,
          "image_shape": list(train["image"].shape[1:]), "num_train_examples": len(train["label"]),
          "num_eval_examples": len(test["label"]), "mean": pixels.mean(0).tolist(),
          "std": np.maximum(pixels.std(0), 1e-3).tolist()}


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  """The classification task; with `facts` (a saved run's) no data is read until training starts."""
  load = lambda split, n: sources.load_split(config.dataset, split, config.data_dir, config.download, n)
  train = test = None
  if facts is None:
    train = load(config.train_split, config.max_train_examples)
    test = load(config.eval_split, config.max_eval_examples)
    facts = data_facts(train, test)
  num_classes, image_shape = facts["num_classes"], tuple(facts["image_shape"])
  mean, std = np.asarray(facts["mean"], np.float32), np.asarray(facts["std"], np.float32)
  adv = config.adversarial
  check_adversarial(adv, image_shape)
  robust.check(config.robust_eval, image_shape)
  train_source = DatasetSource(train if train is not None else
                               (lambda: load(config.train_split, config.max_train_examples)),
                               config.batch_size, config.seed, sampling="shuffle",
                               num_examples=facts["num_train_examples"])
  train_source.check()  # before anything is compiled (the trainer checks again when it opens the source).
  num_steps = config.num_train_steps or math.ceil(config.num_epochs * train_source.steps_per_epoch)
  tx = optim.make_optimizer(config.optimizer, num_steps)
  learning_rate = optim.make_schedule(config.optimizer, num_steps)
  model = transforms.wrap_model(make_classifier(config.model, num_classes), config)
  apply_pixels = pixel_classifier(model, mean, std)
  variables_of = lambda state: {"params": state.params, **state.model_state}

  def init(rng) -> TrainState:
    variables = model.init({"params": rng}, jnp.zeros((1,) + image_shape, jnp.float32), train=False)
    variables = dict(variables)
    params = variables.pop("params")
    return TrainState.create(params, tx, model_state=variables)

  def crop_and_flip(x, rng):  # random crop (zero padding) and flip, per config.augment.
    crop_rng, flip_rng = jax.random.split(rng)
    x = image_ops.random_crop(crop_rng, x, config.augment.crop_padding)
    return image_ops.random_flip(flip_rng, x) if config.augment.horizontal_flip else x

  def preprocess(images, rng):  # natural training: normalized, then augmented.
    return crop_and_flip(image_ops.normalize(images, mean, std), rng)

  def adversarial_inputs(state, batch, rng):
    """(normalized inputs to train on: x_adv, or [x; x_adv] for TRADES; metrics {eps})."""
    augment_rng, attack_rng = jax.random.split(rng)
    x = crop_and_flip(batch["image"].astype(jnp.float32) / 255.0, augment_rng)  # pixels, black padding.
    ramp = jnp.minimum(1.0, (state.step + 1) / adv.eps_warmup_steps) if adv.eps_warmup_steps else 1.0
    eps, step_size = adv.eps * ramp, (adv.step_size or 2.5 * adv.eps / adv.steps) * ramp
    variables = jax.lax.stop_gradient(variables_of(state))
    rngs = jax.random.split(attack_rng, x.shape[0])
    objective = kl_from(jax.nn.softmax(apply_pixels(variables, x))) if adv.method == "trades" else None
    x_adv = attacks.pgd(apply_pixels, variables, x, batch["label"], rngs, eps=eps, steps=adv.steps,
                        step_size=step_size, norm=adv.norm, objective=objective, keep_best=False,
                        unroll=adv.unroll)
    x_adv = jax.lax.stop_gradient(x_adv)
    inputs = x_adv if adv.method == "madry" else jnp.concatenate([x, x_adv])
    return normalize_pixels(inputs, mean, std), {"eps": eps}

  def train_step(state: TrainState, batch, rng):
    augment_rng, dropout_rng = jax.random.split(rng)
    extra_metrics = {}
    if adv.method == "none":
      x = preprocess(batch["image"], augment_rng)
    else:
      x, extra_metrics = adversarial_inputs(state, batch, augment_rng)

    def loss_fn(params):
      variables = {"params": params, **state.model_state}
      logits, new_model_state = model.apply(
          variables, x, train=True, rngs={"dropout": dropout_rng}, mutable=list(state.model_state))
      if adv.method == "trades":  # x = [clean; adversarial]: CE on the clean half, KL between the halves.
        logits, adv_logits = jnp.split(logits, 2)
        kl = kl_from(jax.nn.softmax(logits))(adv_logits, None).mean()
        loss = losses.cross_entropy(logits, batch["label"], config.label_smoothing).mean() + adv.trades_beta * kl
      else:
        loss = losses.cross_entropy(logits, batch["label"], config.label_smoothing).mean()
      return loss, (logits, new_model_state)

    (loss, (logits, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {"loss": loss, "accuracy": losses.correct(logits, batch["label"]).mean(),
               "grad_norm": optax.global_norm(grads), "learning_rate": learning_rate(state.step)} | extra_metrics
    return state.apply_gradients(tx, grads, model_state=dict(new_model_state)), metrics

  def eval_step(state: TrainState, batch):
    x = image_ops.normalize(batch["image"], mean, std)
    logits = model.apply(variables_of(state), x, train=False)
    mask = batch["mask"].astype(jnp.float32)
    return {"loss": jnp.sum(losses.cross_entropy(logits, batch["label"]) * mask),
            "accuracy": jnp.sum(losses.correct(logits, batch["label"]) * mask),
            "count": jnp.sum(mask)}

  load_test = lambda: test if test is not None else load(config.eval_split, config.max_eval_examples)
  eval_batches = lambda: pipeline.padded_batches(load_test(), config.eval_batch_size)
  evaluators = [DatasetEvaluator(eval_step, eval_batches)]
  if config.robust_eval.attacks:
    evaluators.append(robust.make_evaluator(config.robust_eval, apply_pixels, variables_of, load_test,
                                            config.eval_batch_size))
  if config.interpret.num_images:
    reinit = lambda rng: dict(model.init({"params": rng}, jnp.zeros((1,) + image_shape), train=False))
    shown = {k: v[:max(config.interpret.num_images, config.interpret.deletion_examples)]
             for k, v in load_test().items()}
    evaluators.append(saliency.make_evaluator(config.interpret, apply_pixels, reinit, shown["image"],
                                              shown["label"]))
  summary = (f"{config.dataset}: {facts['num_train_examples']} train / {facts['num_eval_examples']} eval "
             f"examples {image_shape}, {num_classes} classes; model {config.model.name}")
  if adv.method != "none":
    summary += (f"; {adv.method} adversarial training, {adv.norm} eps {adv.eps} (PGD-{adv.steps}, step "
                f"{adv.step_size or 2.5 * adv.eps / adv.steps:g})")
  return Task(
      name="classification", init=init, train_step=train_step, source=train_source,
      num_train_steps=num_steps, evaluators=evaluators,
      units_per_step={"examples": config.batch_size}, facts=facts, summary=summary)
