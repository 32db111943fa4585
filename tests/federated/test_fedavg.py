"""FedAvg (jaxai.tasks.federated): one local step of full-batch clients with full participation
is centralized SGD on the union; unrolled and vmapped clients agree; a tiny run logs its rounds,
communicated bytes and test accuracy and resumes bitwise from a checkpoint taken mid-round;
DP-FedAvg logs epsilon through the command line; bad settings are refused before compiling."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxai.core import sharding
from jaxai.errors import UserError
from jaxai.ops import images as image_ops
from jaxai.ops import losses
from jaxai.tasks import federated

from tests.helpers import assert_resume_is_bitwise, check_ok, load_config, metrics_lines, run_cli


def first_step(config):
  """(task, initial state, rows of step 0, state after step 0)."""
  task = federated.make_task(config)
  state = jax.jit(task.init)(jax.random.key(0))
  task.source.open(sharding.placement(config))
  batch, _ = task.source.rows(0, state)
  after, _ = jax.jit(task.train_step)(state, batch, jax.random.key(1))
  return task, state, batch, after


def test_one_full_batch_local_step_with_all_clients_is_centralized_sgd_on_the_union():
  # Equal-sized clients (IID split of 400 into 8 x 50), E = 1, B = all, C = 1: the size-weighted
  # mean of the clients' SGD steps is one SGD step on the union of their data.
  config = load_config("mnist_fedavg", {"fl.client_fraction": 1.0, "fl.local_batch_size": 0, "fl.rounds": 1})
  task, state, batch, after = first_step(config)
  assert task.num_train_steps == 1 and batch["mask"].all()
  mean, std = (np.asarray(task.facts[k], np.float32) for k in ("mean", "std"))
  model = federated.task.make_classifier(config.model, 10)
  x = image_ops.normalize(batch["image"].reshape((-1,) + batch["image"].shape[2:]), mean, std)
  y = batch["label"].reshape(-1)
  loss = lambda p: losses.cross_entropy(model.apply({"params": p}, x, train=True), y).mean()
  expected = optax.apply_updates(state.params, jax.tree.map(lambda g: -config.optimizer.learning_rate * g,
                                                            jax.grad(loss)(state.params)))
  moved = max(float(jnp.abs(a - b).max()) for a, b in zip(jax.tree.leaves(after.params), jax.tree.leaves(state.params)))
  assert moved > 1e-3  # the round did change the global model.
  for a, b in zip(jax.tree.leaves(after.params), jax.tree.leaves(expected), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-6, rtol=1e-4)


def test_vmapped_clients_agree_with_unrolled_ones():
  unrolled = first_step(load_config("mnist_fedavg"))[3]
  vmapped = first_step(load_config("mnist_fedavg", {"fl.client_parallelism": "vmap"}))[3]
  for a, b in zip(jax.tree.leaves(unrolled), jax.tree.leaves(vmapped), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)


def test_tiny_run_logs_rounds_and_resumes_bitwise_mid_round(tmp_path):
  config = load_config("mnist_fedavg", {"num_train_steps": 6}, variant="tiny_noniid")  # 2 rounds x 3.
  assert_resume_is_bitwise(config, federated.make_task, tmp_path)  # checkpoints at 2 of 3 local steps.
  records = metrics_lines(tmp_path)
  rounds = {r["step"]: r for r in records if "fl/round" in r}
  assert [rounds[s]["fl/round"] for s in (3, 6)] == [1, 2]
  assert rounds[6]["fl/clients"] == 4  # C = 0.5 of 8.
  param_bytes = 4 * sum(x.size for x in jax.tree.leaves(jax.eval_shape(
      federated.make_task(config).init, jax.random.key(0)).params))
  assert rounds[6]["fl/communicated_bytes"] == 2 * 2 * 4 * param_bytes  # 2 rounds, 4 clients, down and up.
  evals = [r for r in records if "eval/accuracy" in r]
  assert sorted({r["step"] for r in evals}) == [3, 6]  # after every round.
  saved = [r for r in records if "train/loss" in r]
  assert all(np.isfinite(r["train/loss"]) for r in saved)


def test_dp_fedavg_through_the_command_line_logs_client_level_epsilon(tmp_path):
  check_ok(run_cli("mnist_fedavg.py:tiny_dp", tmp_path))
  eps = [r["dp/epsilon"] for r in metrics_lines(tmp_path) if "dp/epsilon" in r]
  assert eps and eps == sorted(eps) and eps[-1] > 0
  from jaxai import privacy
  config = load_config("mnist_fedavg", variant="tiny_dp")
  assert eps[-1] == pytest.approx(privacy.epsilon(config.fl.dp.noise_multiplier, config.fl.client_fraction,
                                                  config.fl.rounds, config.fl.dp.delta))


@pytest.mark.parametrize("overrides, match", [
    ({"fl.client_fraction": 0.0}, r"client_fraction=0.0 must be in \(0, 1\]"),
    ({"fl.client_fraction": 1.5}, r"client_fraction=1.5 must be in \(0, 1\]"),
    ({"fl.partition": "shards", "fl.num_clients": 300}, "more shards than"),
    ({"fl.num_clients": 500}, "num_clients=500"),
    ({"fl.partition": "dirichlet", "fl.dirichlet_alpha": -1.0}, "dirichlet_alpha"),
    ({"fl.local_epochs": 0}, "local_epochs=0"),
    ({"fl.client_parallelism": "pmap"}, "client_parallelism"),
    ({"model.name": "cnn", "model.features": (4,)}, "BatchNorm"),
    ({"num_train_steps": 7}, "set fl.rounds"),
    ({"fl.dp.enabled": True, "fl.dp.noise_multiplier": 0.0}, "noise_multiplier=0.0 must be > 0"),
    ({"fl.dp.enabled": True, "fl.dp.max_epsilon": 0.01}, "client-level epsilon"),
])
def test_bad_settings_are_refused_before_compiling(overrides, match, monkeypatch):
  config = load_config("mnist_fedavg", overrides)
  monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("compiled before the error"))
  with pytest.raises(UserError, match=match):
    federated.make_task(config)
