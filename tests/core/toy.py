"""A tiny linear-regression task for testing the core contract: a state with parameters and a
buffer of rows (written and read inside the step, like a replay buffer), a dataset source, and
evaluators of every kind."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxai.core import optim
from jaxai.core.config import trainer_config
from jaxai.core.evaluators import DatasetEvaluator, Evaluator
from jaxai.core.sources import DatasetSource
from jaxai.core.state import TrainState
from jaxai.core.summaries import Image, Text
from jaxai.core.task import Task
from jaxai.data.pipeline import padded_batches

FEATURES, BUFFER_ROWS = 8, 16


def toy_config(**overrides) -> ml_collections.ConfigDict:
  config = trainer_config()
  config.task = "toy"
  config.batch_size = 8
  config.num_train_steps = 10
  config.log_every_steps = 1
  config.checkpoint_every_steps = 0
  config.optimizer.update(dict(name="adam", learning_rate=0.05, schedule="constant"))
  config.update(overrides)
  return config


def toy_data(n: int = 64, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, FEATURES)).astype(np.float32)
  return {"x": x, "y": (x @ np.arange(1, FEATURES + 1, dtype=np.float32) / FEATURES)[:, None]}


def make_toy_task(config, rules=(), evaluators=None) -> Task:
  tx = optim.make_optimizer(config.optimizer, config.num_train_steps)
  data = toy_data()

  def init(rng):
    params = {"dense": {"kernel": jax.random.normal(rng, (FEATURES, 1)) * 0.1, "bias": jnp.zeros((1,))}}
    return TrainState.create(params, tx, extra={"buffer": jnp.zeros((BUFFER_ROWS, FEATURES))})

  def predict(params, x):
    return x @ params["dense"]["kernel"] + params["dense"]["bias"]

  def train_step(state, batch, rng):
    # Rows of the batch go into the buffer; a random draw of buffer rows adds a (tiny) penalty.
    buffer = state.extra["buffer"].at[(state.step * 8 + jnp.arange(8)) % BUFFER_ROWS].set(batch["x"])
    drawn = buffer[jax.random.randint(rng, (4,), 0, BUFFER_ROWS)]

    def loss_fn(params):
      return jnp.mean((predict(params, batch["x"]) - batch["y"]) ** 2) + 1e-3 * jnp.mean(predict(params, drawn) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    return state.apply_gradients(tx, grads, extra={"buffer": buffer}), {"loss": loss}

  def eval_step(state, batch):
    err = (predict(state.params, batch["x"]) - batch["y"])[:, 0] ** 2
    mask = batch["mask"].astype(jnp.float32)
    return {"mse": jnp.sum(err * mask), "count": jnp.sum(mask)}

  def picture(params, rng):  # an 8x8 "image" of the kernel, plus noise from the evaluator's rng.
    kernel = params["dense"]["kernel"][:, 0]
    return {"pixels": jax.nn.sigmoid(kernel[None, :] * kernel[:, None]) + 0 * jax.random.uniform(rng),
            "norm": jnp.linalg.norm(kernel)}

  if evaluators is None:
    evaluators = [
        DatasetEvaluator(eval_step, lambda: padded_batches(toy_data(20, seed=1), 8)),
        Evaluator(picture, view=lambda s: s.params,
                  finish=lambda out, step: {"eval/kernel_norm": float(out["norm"]),
                                            "kernel": Image(out["pixels"][..., None]),
                                            "note": Text(f"step {step}")}),
    ]
  return Task(name="toy", init=init, train_step=train_step,
              source=DatasetSource(data, config.batch_size, config.seed), num_train_steps=config.num_train_steps,
              evaluators=evaluators, sharding_rules=rules, summary="toy regression")
