"""A small CNN trained in-process on real MNIST (a few seconds), shared by the attack and saliency tests.

`mnist_model` gives `apply(variables, x) -> logits` on float images x (N, 28, 28, 1) in [0, 1], the
trained `variables`, `reinit(rng) -> variables` of a fresh model, and held-out test images and labels.
Under xdist the first worker to need it trains it and the others load its variables (bitwise the same).
"""
import collections
import contextlib
import fcntl
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import serialization

from jaxai.data import sources
from jaxai.models.cnn import CNN

Trained = collections.namedtuple("Trained", "apply variables reinit images labels accuracy")


@contextlib.contextmanager
def _shared_file(tmp_path_factory, name):
  """(path or None): a file shared by the session's xdist workers, held under a lock while in use."""
  if "PYTEST_XDIST_WORKER" not in os.environ:
    yield None
    return
  path = tmp_path_factory.getbasetemp().parent / name
  with open(f"{path}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield path
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def mnist_model(data_dir, tmp_path_factory) -> Trained:
  test = sources.load_split("mnist:3.0.1", "test", str(data_dir), False, 256)
  model = CNN(features=(8, 16), dense=64, num_classes=10, batch_norm=False)
  apply = lambda variables, x: model.apply(variables, x * 2.0 - 1.0)
  reinit = lambda rng: model.init(rng, jnp.zeros((1, 28, 28, 1)))
  images = test["image"].astype(np.float32) / 255.0
  with _shared_file(tmp_path_factory, "robust_mnist_model.msgpack") as path:
    if path is not None and path.exists():
      variables = jax.tree.map(jnp.asarray, serialization.from_bytes(reinit(jax.random.key(0)), path.read_bytes()))
    else:
      variables = _train(data_dir, apply, reinit)
      if path is not None:  # written whole, then renamed: a reader never sees half a file.
        path.with_suffix(".tmp").write_bytes(serialization.to_bytes(variables))
        os.replace(path.with_suffix(".tmp"), path)
  accuracy = float(np.mean(np.argmax(jax.jit(apply)(variables, images), -1) == test["label"]))
  assert accuracy > 0.9, f"the shared test model reached only {accuracy:.1%}"
  return Trained(jax.jit(apply), variables, reinit, images, test["label"], accuracy)


def _train(data_dir, apply, reinit):
  train = sources.load_split("mnist:3.0.1", "train", str(data_dir), False, 4096)
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
  return variables
