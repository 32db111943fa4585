"""Sharding rules on 4 devices: a state leaf split along `data` really is split (the compiled step's
input shardings and each device's shard say so) and trains to the same numbers as replicated; FSDP
over a second mesh axis; batches with a batch axis other than 0."""
import jax
import numpy as np
from jax.sharding import PartitionSpec as P

from jaxai.core import sharding, trainer
from jaxai.core.metrics import read_metrics
from tests.core.toy import BUFFER_ROWS, FEATURES, make_toy_task, toy_config
from tests.helpers import leaves_with_paths

SPLIT_BUFFER = (("extra/buffer", ("data",)),)


def train(tmp_path, name, rules=(), **overrides):
  config = toy_config(**overrides)
  task = make_toy_task(config, rules=rules, evaluators=[])
  state, _ = trainer.train_and_evaluate(config, str(tmp_path / name), task)
  losses = [r["train/loss"] for r in read_metrics(tmp_path / name) if "train/loss" in r]
  return task, state, losses


def compiled_step(task, config):
  placement = sharding.placement(config, task.sharding_rules)
  abstract = jax.eval_shape(task.init, jax.random.key(0))
  task.source.open(placement)
  batch, _ = task.source.rows(0, None)
  return trainer.compile_train_step(task, placement, abstract, batch)


def test_a_leaf_split_along_data_is_split_and_gives_the_replicated_numbers(tmp_path):
  task, split_state, split_losses = train(tmp_path, "split", SPLIT_BUFFER)
  compiled = compiled_step(task, toy_config())
  state_shardings = compiled.input_shardings[0][0]
  assert state_shardings.extra["buffer"].spec == P("data")
  assert state_shardings.params["dense"]["kernel"].spec == P()
  buffer = split_state.extra["buffer"]
  assert buffer.sharding.spec == P("data")
  assert {s.data.shape for s in buffer.addressable_shards} == {(BUFFER_ROWS // 4, FEATURES)}  # a quarter each.

  _, replicated_state, replicated_losses = train(tmp_path, "replicated")
  assert replicated_state.extra["buffer"].sharding.spec == P()
  np.testing.assert_allclose(split_losses, replicated_losses, rtol=1e-6)
  a, b = leaves_with_paths(split_state), leaves_with_paths(replicated_state)
  for k in a:
    np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-6, atol=1e-7, err_msg=k)


def test_fsdp_splits_parameters_over_a_second_axis_with_the_same_numbers(tmp_path):
  fsdp = (("(params|opt_state)/.*", "fsdp"),)
  _, state, losses = train(tmp_path, "fsdp", fsdp, mesh="data=2,fsdp=2")
  kernel = state.params["dense"]["kernel"]  # (8, 1): dim 0 splits over fsdp=2.
  assert kernel.sharding.spec == P("fsdp") and kernel.addressable_shards[0].data.shape == (FEATURES // 2, 1)
  moments = {k: v for k, v in leaves_with_paths(state.opt_state).items() if "kernel" in k}
  assert len(moments) == 2 and all(v.sharding.spec == P("fsdp") for v in moments.values())  # Adam's mu, nu.
  assert state.params["dense"]["bias"].sharding.spec == P()  # (1,): nothing divides.
  _, _, replicated = train(tmp_path, "replicated")
  np.testing.assert_allclose(losses, replicated, rtol=1e-6)


def test_batches_split_on_their_declared_axis():
  placement = sharding.placement(toy_config())
  rows = {"obs": np.zeros((5, 8, 3), np.float32), "bootstrap": np.zeros((8,), np.float32)}  # time-major.
  batch = placement.global_batch(rows, {"obs": 1, "bootstrap": 0})
  assert batch["obs"].sharding.spec == P(None, ("data",))
  assert batch["obs"].addressable_shards[0].data.shape == (5, 2, 3)
  assert batch["bootstrap"].addressable_shards[0].data.shape == (2,)
