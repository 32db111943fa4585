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

Distillation (`config.distill.alpha` > 0, jaxai.compress.distill): a frozen teacher rides in
`state.extra['teacher']` ({'params', 'model_state'}), filled from the teacher run's checkpoint by
`config.init_from` (map 'params=extra/teacher/params,model_state=extra/teacher/model_state'). It sees
the student's preprocessed, augmented inputs, runs in inference mode and is never updated.

Differential privacy (`config.dp.enabled`, jaxai.privacy): DP-SGD (Abadi et al. 2016) through
jax-privacy. Each step's batch is Poisson-sampled (every example with probability batch_size / N;
padded to a fixed row count with a mask, so the step compiles once), per-example gradients (vmap)
are clipped to `dp.l2_clip_norm`, summed, noised with N(0, (noise_multiplier * clip)^2) and divided
by the expected batch size. `dp/epsilon` (dp-accounting) is logged at every log step; a run whose
planned epsilon exceeds `dp.max_epsilon` is refused before it compiles, as are models with
BatchNorm (batch statistics mix examples: use GroupNorm, e.g. model 'dp_cnn' with group_norm).

Transfer: `config.classes` ('0-4', '5,6,7,8,9') keeps only those classes in both splits, relabelled
0..k-1 in the order given; `max_train_examples` then counts examples of the kept classes. The new
run starts from the source run with `config.init_from` and trains part of the model with
`config.optimizer.trainable` (see configs/mnist_transfer.py).
"""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging

from jaxai import attacks, privacy
from jaxai.compress import distill, sparsity, transforms
from jaxai.core import init_from as init_from_lib
from jaxai.core import optim, runs
from jaxai.core.config import trainer_config
from jaxai.core.evaluators import DatasetEvaluator
from jaxai.core.sources import DatasetSource
from jaxai.core.state import TrainState
from jaxai.core.task import Task
from jaxai.core.sharding import path_of
from jaxai.data import pipeline
from jaxai.errors import UserError
from jaxai.models.classifiers import make_classifier
from jaxai.ops import images as image_ops
from jaxai.ops import losses
from jaxai.privacy import dpsgd
from jaxai.tasks.classification import robust, saliency
from jaxai.data.labelled import data_facts, load_examples, parse_classes

def default_config() -> ml_collections.ConfigDict:
  """Every key a classification experiment may set; experiment configs override some."""
  config = trainer_config()
  config.task = "classification"
  config.dataset = "mnist"         # see jaxai.data.sources: TFDS name[:version], 'digits', 'synthetic:...'.
  config.data_dir = ""             # TFDS data_dir; '' = $TFDS_DATA_DIR or ~/tensorflow_datasets.
  config.download = True           # download and prepare a missing TFDS dataset (needs network).
  config.train_split = "train"
  config.eval_split = "test"
  config.classes = ""              # '' = all; '0-4' or '5,6,7,8,9': keep these classes, relabelled 0..k-1
                                   # in this order (transfer between class subsets).
  config.max_train_examples = 0    # > 0: only the first N training examples (of the kept classes).
  config.max_eval_examples = 0     # > 0: evaluate on the first N examples (of the kept classes) only.
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
  config.distill = distill.default_config()  # alpha > 0: learn from a teacher run too (see above).
  config.dp = privacy.default_config()       # enabled: DP-SGD (see above).
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


def restore_model(workdir: str, config, facts):
  """(the run's module, its variables {'params', other collections}, checkpoint step) of a saved
  classification run, with the adapters or quantization its config trained with: what tools run."""
  from jaxai.core import runs, sharding
  state, step = runs.restore_latest_state(workdir, make_task(config, facts))
  variables = sharding.local_copy({"params": state.params, **state.model_state})
  return transforms.wrap_model(make_classifier(config.model, facts["num_classes"]), config), variables, step


def kl_from(probs):
  """objective(logits, _) -> (B,) KL(probs || softmax(logits)), the TRADES regularizer."""
  def kl(logits, _):
    return jnp.sum(probs * (jnp.log(jnp.maximum(probs, 1e-12)) - jax.nn.log_softmax(logits)), -1)
  return kl


TEACHER = "extra/teacher"


def check_teacher_source(config, teacher_paths: list[str]) -> None:
  """A UserError, before anything compiles, unless config.init_from fills every teacher leaf."""
  how = ("set --config.init_from.path=<the teacher run's workdir> and config.init_from.map="
         f"'params={TEACHER}/params,model_state={TEACHER}/model_state' (configs/mnist_distill.py sets the "
         "map; train a teacher with configs/mnist_distill.py:teacher).")
  if not config.init_from.path:
    raise UserError(f"config.distill.alpha={config.distill.alpha} needs a trained teacher, but "
                    f"config.init_from.path is empty: {how}")
  pairs = init_from_lib.parse_map(config.init_from.map)
  fresh = init_from_lib.parse_fresh(config.init_from.get("fresh", ""))
  covers = lambda dst, path: dst == "" or path == dst or path.startswith(dst + "/")
  unfilled = [p for p in teacher_paths if (fresh is not None and fresh.fullmatch(p))
              or not any(covers(dst, p) for _, dst in pairs)]
  if unfilled:
    raise UserError(f"config.distill.alpha={config.distill.alpha} needs the teacher's weights, but "
                    f"config.init_from (map={config.init_from.map!r}, fresh={config.init_from.get('fresh', '')!r}) "
                    f"leaves {unfilled[:3]} freshly initialized: {how}")


def check_teacher_facts(config, facts: dict) -> None:
  """The teacher must have been trained on the same classes and image shape; its input statistics
  should match, since it sees the student's normalized inputs."""
  teacher = runs.load_facts(init_from_lib.resolve(config.init_from.path)[0])
  if teacher is None:
    return
  for key in ("classes", "image_shape", "num_classes"):
    if teacher.get(key) != facts.get(key):
      raise UserError(f"The teacher run {config.init_from.path!r} has {key}={teacher.get(key)} but this "
                      f"run has {facts.get(key)}: train the teacher on the same data (config.dataset, "
                      "config.classes).")
  std = np.asarray(facts["std"])
  if np.max(np.abs(np.asarray(teacher["mean"]) - facts["mean"]) / std) > 0.01:
    logging.warning("The teacher was trained with pixel mean %s, this run normalizes with %s: the "
                    "teacher sees slightly shifted inputs.", teacher["mean"], facts["mean"])


def example_loss_fn(model, label_smoothing: float):
  """DP-SGD's per-example objective: (params, rng, x (1, H, W, C), label (1,)) -> (loss, (loss, correct))."""
  def loss_fn(params, rng, x, label):
    logits = model.apply({"params": params}, x, train=True, rngs={"dropout": rng})
    loss = losses.cross_entropy(logits, label, label_smoothing).mean()
    return loss, (loss, losses.correct(logits, label).mean())
  return loss_fn


def check_private(config, abstract_state) -> None:
  """What DP-SGD cannot run with, as a UserError before anything compiles."""
  if abstract_state.model_state:
    raise UserError(
        f"config.dp.enabled with model {config.model.name!r}, which keeps {sorted(abstract_state.model_state)} "
        "(BatchNorm): batch statistics mix the examples of a batch, so per-example gradients would not be "
        "per example and the privacy guarantee would not hold. Use a model without batch statistics: "
        "--config.model.batch_norm=False for 'cnn', or model 'dp_cnn' (--config.model.group_norm=4 "
        "adds GroupNorm).")
  for on, what in ((config.adversarial.method != "none", "config.adversarial.method"),
                   (config.distill.alpha > 0, "config.distill.alpha")):
    if on:
      raise UserError(f"config.dp.enabled with {what} set: DP-SGD is not combined with adversarial "
                      "training or distillation here; turn one off.")


def make_task(config: ml_collections.ConfigDict, facts: dict | None = None) -> Task:
  """The classification task; with `facts` (a saved run's) no data is read until training starts."""
  load = lambda split, n: load_examples(config, split, n)
  train = test = None
  if facts is None:
    train = load(config.train_split, config.max_train_examples)
    test = load(config.eval_split, config.max_eval_examples)
    facts = data_facts(train, test, parse_classes(config.classes))
  num_classes, image_shape = facts["num_classes"], tuple(facts["image_shape"])
  mean, std = np.asarray(facts["mean"], np.float32), np.asarray(facts["std"], np.float32)
  adv = config.adversarial
  check_adversarial(adv, image_shape)
  robust.check(config.robust_eval, image_shape)
  train_source = DatasetSource(train if train is not None else
                               (lambda: load(config.train_split, config.max_train_examples)),
                               config.batch_size, config.seed,
                               sampling="poisson" if config.dp.enabled else "shuffle",
                               num_examples=facts["num_train_examples"])
  train_source.check()  # before anything is compiled (the trainer checks again when it opens the source).
  num_steps = config.num_train_steps or math.ceil(config.num_epochs * train_source.steps_per_epoch)
  tx = optim.make_optimizer(config.optimizer, num_steps)
  learning_rate = optim.make_schedule(config.optimizer, num_steps)
  model = transforms.wrap_model(make_classifier(config.model, num_classes), config)
  apply_pixels = pixel_classifier(model, mean, std)
  variables_of = lambda state: {"params": state.params, **state.model_state}
  if config.init_from.get("fresh") and not config.init_from.path:
    raise UserError(f"config.init_from.fresh={config.init_from.fresh!r} names leaves to keep fresh while "
                    "loading the rest from another run, but config.init_from.path is empty: set "
                    "--config.init_from.path=<the source run's workdir> (or clear init_from.fresh).")
  dist = config.distill
  distill.check(dist)
  teacher = None
  if dist.alpha > 0:
    if adv.method != "none":
      raise UserError("config.distill.alpha > 0 with config.adversarial.method != 'none': distillation "
                      "and adversarial training are not combined; turn one off.")
    teacher = make_classifier(dist.teacher_model, num_classes)

  def init_variables(module, rng) -> tuple[dict, dict]:  # (params, the other collections)
    variables = dict(module.init({"params": rng}, jnp.zeros((1,) + image_shape, jnp.float32), train=False))
    return variables.pop("params"), variables

  def init(rng) -> TrainState:
    params, model_state = init_variables(model, rng)
    extra = None
    if teacher is not None:  # the shapes only: config.init_from loads the teacher run's weights.
      t_params, t_state = init_variables(teacher, jax.random.fold_in(rng, 1))
      extra = {"teacher": {"params": t_params, "model_state": t_state}}
    return TrainState.create(params, tx, model_state=model_state, extra=extra)

  dp = config.dp
  if dp.enabled:  # before anything compiles: a private run that can keep its promise.
    check_private(config, jax.eval_shape(init, jax.random.key(0)))
    sampling_prob = config.batch_size / facts["num_train_examples"]
    planned_epsilon = privacy.refuse_over_budget(dp, sampling_prob, num_steps)
    private_grad = dpsgd.private_grad(example_loss_fn(model, config.label_smoothing), dp.l2_clip_norm,
                                      dp.noise_multiplier, config.batch_size)

  if teacher is not None:  # before anything compiles: is the teacher going to be loaded?
    abstract = jax.eval_shape(init, jax.random.key(0))
    paths = [path_of(k) for k, _ in jax.tree_util.tree_flatten_with_path(abstract.extra)[0]]
    check_teacher_source(config, [f"extra/{p}" for p in paths])
    if train is not None:
      check_teacher_facts(config, facts)

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

    if teacher is not None:  # inference mode, the same inputs as the student; no gradient.
      frozen = jax.lax.stop_gradient(state.extra["teacher"])
      teacher_logits = teacher.apply({"params": frozen["params"], **frozen["model_state"]}, x, train=False)

    def loss_fn(params):
      variables = {"params": params, **state.model_state}
      logits, new_model_state = model.apply(
          variables, x, train=True, rngs={"dropout": dropout_rng}, mutable=list(state.model_state))
      parts = {}
      if teacher is not None:  # Hinton et al.: soft teacher targets at temperature T plus the labels.
        per_example, parts = distill.distillation_loss(logits, teacher_logits, batch["label"],
                                                       dist.temperature, dist.alpha, config.label_smoothing)
        loss, parts = per_example.mean(), {k: v.mean() for k, v in parts.items()}
      elif adv.method == "trades":  # x = [clean; adversarial]: CE on the clean half, KL between the halves.
        logits, adv_logits = jnp.split(logits, 2)
        kl = kl_from(jax.nn.softmax(logits))(adv_logits, None).mean()
        loss = losses.cross_entropy(logits, batch["label"], config.label_smoothing).mean() + adv.trades_beta * kl
      else:
        loss = losses.cross_entropy(logits, batch["label"], config.label_smoothing).mean()
      return loss, (logits, new_model_state, parts)

    (loss, (logits, new_model_state, parts)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    extra_metrics |= parts
    metrics = {"loss": loss, "accuracy": losses.correct(logits, batch["label"]).mean(),
               "grad_norm": optax.global_norm(grads), "learning_rate": learning_rate(state.step)} | extra_metrics
    return state.apply_gradients(tx, grads, model_state=dict(new_model_state)), metrics

  def private_train_step(state: TrainState, batch, rng):
    augment_rng, dropout_rng, noise_rng = jax.random.split(rng, 3)
    x, mask = preprocess(batch["image"], augment_rng), batch["mask"]
    grads, aux = private_grad(state.params, dropout_rng, x, batch["label"], mask=mask, noise_rng=noise_rng)
    real = mask.astype(jnp.float32)
    count = jnp.maximum(real.sum(), 1.0)
    loss, correct = aux["aux"]
    metrics = {"loss": jnp.sum(loss * real) / count, "accuracy": jnp.sum(correct * real) / count,
               "grad_norm": optax.global_norm(grads), "learning_rate": learning_rate(state.step),
               "dp/batch_size": real.sum(),
               "dp/clipped_fraction": jnp.sum((aux["grad_norm"] > dp.l2_clip_norm) * real) / count}
    return state.apply_gradients(tx, grads), metrics

  def eval_step(state: TrainState, batch):
    x = image_ops.normalize(batch["image"], mean, std)
    logits = model.apply(variables_of(state), x, train=False)
    return losses.masked_sums(logits, batch["label"], batch["mask"])

  load_test = lambda: test if test is not None else load(config.eval_split, config.max_eval_examples)
  eval_batches = lambda: pipeline.padded_batches(load_test(), config.eval_batch_size)
  evaluators = [DatasetEvaluator(eval_step, eval_batches)]
  if config.robust_eval.attacks:
    evaluators.append(robust.make_evaluator(config.robust_eval, apply_pixels, variables_of, load_test,
                                            config.eval_batch_size))
  if dp.enabled:
    evaluators.append(privacy.epsilon_evaluator(dp, sampling_prob, config.log_every_steps))
  if config.optimizer.pruning.method != "none":
    evaluators.append(sparsity.evaluator(config.optimizer.pruning.prunable))  # per-layer sparsity.
  if config.interpret.num_images:
    reinit = lambda rng: dict(model.init({"params": rng}, jnp.zeros((1,) + image_shape), train=False))
    shown = {k: v[:max(config.interpret.num_images, config.interpret.deletion_examples)]
             for k, v in load_test().items()}
    evaluators.append(saliency.make_evaluator(config.interpret, apply_pixels, reinit, shown["image"],
                                              shown["label"]))
  summary = (f"{config.dataset}: {facts['num_train_examples']} train / {facts['num_eval_examples']} eval "
             f"examples {image_shape}, {num_classes} classes; model {config.model.name}")
  if "classes" in facts:
    summary += f"; classes {facts['classes']} as 0..{num_classes - 1}"
  if teacher is not None:
    summary += (f"; distilled from a {dist.teacher_model.name} teacher (alpha {dist.alpha}, "
                f"T {dist.temperature})")
  if dp.enabled:
    summary += (f"; DP-SGD: noise {dp.noise_multiplier}, clip {dp.l2_clip_norm}, sampling rate "
                f"{sampling_prob:.4g}: epsilon {planned_epsilon:.3f} at delta {dp.delta:g} after "
                f"{num_steps} steps ({dp.accountant.upper()})")
  if adv.method != "none":
    summary += (f"; {adv.method} adversarial training, {adv.norm} eps {adv.eps} (PGD-{adv.steps}, step "
                f"{adv.step_size or 2.5 * adv.eps / adv.steps:g})")
  return Task(
      name="classification", init=init, train_step=private_train_step if dp.enabled else train_step,
      source=train_source,
      num_train_steps=num_steps, evaluators=evaluators,
      units_per_step={"examples": config.batch_size}, facts=facts, summary=summary)
