"""A small CNN trained in-process on real MNIST (a few seconds), shared by the attack and saliency tests.

`mnist_model` gives `apply(variables, x) -> logits` on float images x (N, 28, 28, 1) in [0, 1], the
trained `variables`, `reinit(rng) -> variables` of a fresh model, and held-out test images and labels.
"""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxai.data import sources
from jaxai.models.cnn import CNN

Trained = collections.namedtuple("Trained", "apply variables reinit images labels accuracy")


@pytest.fixture(scope="session")
def mnist_model(data_dir) -> Trained:
  train = sources.load_split("mnist:3.0.1", "train", str(data_dir), False, 4096)
  test = sources.load_split("mnist:3.0.1", "test", str(data_dir), False, 256)
  model = CNN(features=(8, 16), dense=64, num_classes=10, batch_norm=False)
  apply = lambda variables, x: model.apply(variables, x * 2.0 - 1.0)
  reinit = lambda rng: model.init(rng, jnp.zeros((1, 28, 28, 1)))
  tx = optax.adam(3e-3)

  @jax.jit
  def step(variables, opt_state, x, y):
    loss = lambda v: optax.softmax_cross_entropy_with_integer_labels(apply(v, x), y).mean()
    grads = jax.grad(loss)(variables)
    updates, opt_state = tx.update(grads, opt_state)
    return optax.apply_updates(variables, updates), opt_state

  variables = reinit(jax.random.key(0))
  opt_state = tx.init(variables)
  x_train = train["image"].astype(np.float32) / 255.0
  order = np.random.default_rng(0).permutation(len(x_train) * 3) % len(x_train)
  for i in range(0, len(order) - 63, 64):  # 3 epochs of 4096 images, batch 64.
    idx = order[i:i + 64]
    variables, opt_state = step(variables, opt_state, x_train[idx], train["label"][idx])
  images = test["image"].astype(np.float32) / 255.0
  accuracy = float(np.mean(np.argmax(jax.jit(apply)(variables, images), -1) == test["label"]))
  assert accuracy > 0.9, f"the shared test model reached only {accuracy:.1%}"
  return Trained(jax.jit(apply), variables, reinit, images, test["label"], accuracy)
