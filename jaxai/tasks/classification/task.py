"""Image classification: config -> in-memory data -> Flax model -> pure train/eval steps.

The whole domain logic is here; the shared trainer (`jaxai.core.trainer`) runs it. Images stay
uint8 on the host; normalization and augmentation (random crop with padding, horizontal flip) run on
device inside the jitted step, seeded by the step's rng, so they cost no host time and replay exactly
on resume.
"""
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxai.core import optim
from jaxai.core.config import trainer_config
from jaxai.core.evaluators import DatasetEvaluator
from jaxai.core.sources import DatasetSource
from jaxai.core.state import TrainState
from jaxai.core.task import Task
from jaxai.data import pipeline, sources
from jaxai.models.classifiers import make_classifier
from jaxai.ops import images as image_ops
from jaxai.ops import losses

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
  return config


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
  train_source = DatasetSource(train if train is not None else
                               (lambda: load(config.train_split, config.max_train_examples)),
                               config.batch_size, config.seed, sampling="shuffle",
                               num_examples=facts["num_train_examples"])
  train_source.check()  # before anything is compiled (the trainer checks again when it opens the source).
  num_steps = config.num_train_steps or math.ceil(config.num_epochs * train_source.steps_per_epoch)
  tx = optim.make_optimizer(config.optimizer, num_steps)
  learning_rate = optim.make_schedule(config.optimizer, num_steps)
  model = make_classifier(config.model, num_classes)

  def init(rng) -> TrainState:
    variables = model.init({"params": rng}, jnp.zeros((1,) + image_shape, jnp.float32), train=False)
    variables = dict(variables)
    params = variables.pop("params")
    return TrainState.create(params, tx, model_state=variables)

  def preprocess(images, rng):
    crop_rng, flip_rng = jax.random.split(rng)
    x = image_ops.normalize(images, mean, std)
    x = image_ops.random_crop(crop_rng, x, config.augment.crop_padding)
    return image_ops.random_flip(flip_rng, x) if config.augment.horizontal_flip else x

  def train_step(state: TrainState, batch, rng):
    augment_rng, dropout_rng = jax.random.split(rng)
    x = preprocess(batch["image"], augment_rng)

    def loss_fn(params):
      variables = {"params": params, **state.model_state}
      logits, new_model_state = model.apply(
          variables, x, train=True, rngs={"dropout": dropout_rng}, mutable=list(state.model_state))
      loss = losses.cross_entropy(logits, batch["label"], config.label_smoothing).mean()
      return loss, (logits, new_model_state)

    (loss, (logits, new_model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    metrics = {"loss": loss, "accuracy": losses.correct(logits, batch["label"]).mean(),
               "grad_norm": optax.global_norm(grads), "learning_rate": learning_rate(state.step)}
    return state.apply_gradients(tx, grads, model_state=dict(new_model_state)), metrics

  def eval_step(state: TrainState, batch):
    x = image_ops.normalize(batch["image"], mean, std)
    logits = model.apply({"params": state.params, **state.model_state}, x, train=False)
    mask = batch["mask"].astype(jnp.float32)
    return {"loss": jnp.sum(losses.cross_entropy(logits, batch["label"]) * mask),
            "accuracy": jnp.sum(losses.correct(logits, batch["label"]) * mask),
            "count": jnp.sum(mask)}

  eval_batches = lambda: pipeline.padded_batches(
      test if test is not None else load(config.eval_split, config.max_eval_examples), config.eval_batch_size)
  summary = (f"{config.dataset}: {facts['num_train_examples']} train / {facts['num_eval_examples']} eval "
             f"examples {image_shape}, {num_classes} classes; model {config.model.name}")
  return Task(
      name="classification", init=init, train_step=train_step, source=train_source,
      num_train_steps=num_steps, evaluators=[DatasetEvaluator(eval_step, eval_batches)],
      units_per_step={"examples": config.batch_size}, facts=facts, summary=summary)
