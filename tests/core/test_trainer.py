"""The training loop, in-process on tiny MNIST: one trace per step function, bitwise resume after an
interruption, and a non-finite step that stops training while keeping the last good checkpoint."""
import dataclasses
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai import tasks
from jaxai.core import trainer
from jaxai.core.errors import UserError
from jaxai.core.metrics import read_metrics
from tests.helpers import checkpoint_steps, leaves_with_paths, load_config, restore_state


def mnist(**overrides):
  """(config, task) for tiny MNIST with `overrides`."""
  config = load_config("mnist_cnn", overrides)
  return config, tasks.make_task(config)


@pytest.fixture(scope="module")
def mnist20(data_dir):
  """20 steps, checkpoints every 5. A Task is pure, so runs can share it."""
  return mnist(num_train_steps=20, checkpoint_every_steps=5, log_every_steps=5)


def assert_trees_bitwise_equal(a, b):
  a, b = leaves_with_paths(a), leaves_with_paths(b)
  assert a.keys() == b.keys()
  different = [k for k in a if not np.array_equal(np.asarray(a[k]), np.asarray(b[k]))]
  assert not different, f"leaves differ: {different}"


def test_steps_are_traced_once(data_dir, tmp_path):
  config, task = mnist(num_train_steps=12, eval_every_steps=4, max_eval_examples=301, eval_batch_size=100)
  traces, eval_batches = {"train": 0, "eval": 0}, []

  def counted(name, fn):
    def wrapper(*args):
      traces[name] += 1  # Python side effects run only while tracing.
      return fn(*args)
    return wrapper

  (evaluator,) = task.evaluators

  def batches():
    for batch in evaluator.batches():
      eval_batches.append(len(batch["mask"]))
      yield batch

  counted_eval = dataclasses.replace(evaluator, step=counted("eval", evaluator.step), batches=batches)
  counting = dataclasses.replace(task, train_step=counted("train", task.train_step), evaluators=[counted_eval])
  state, results = trainer.train_and_evaluate(config, str(tmp_path), counting)
  assert int(state.step) == 12
  assert eval_batches == [100] * 4 * 3  # 3 evaluations (steps 4, 8, 12) of 4 batches, the last padded.
  assert results["eval/examples"] == 301
  assert traces == {"train": 1, "eval": 1}


class Interrupted(Exception):
  pass


@dataclasses.dataclass
class InterruptAt:
  """A source that fails when asked for the rows of `step`, like a job killed mid-run."""
  source: object
  step: int

  def open(self, placement, rng):
    self.source.open(placement, rng)

  def rows(self, step, state):
    if step == self.step:
      raise Interrupted(step)
    return self.source.rows(step, state)

  def position(self, step):
    return self.source.position(step)


def test_resume_is_bitwise_equal_to_an_uninterrupted_run(mnist20, tmp_path):
  config, task = mnist20
  reference, _ = trainer.train_and_evaluate(config, str(tmp_path / "a"), task)

  workdir = str(tmp_path / "b")
  with pytest.raises(Interrupted):  # same config; stops after the checkpoint at 10, mid log window.
    trainer.train_and_evaluate(config, workdir, dataclasses.replace(task, source=InterruptAt(task.source, 13)))
  assert checkpoint_steps(workdir) == [5, 10]
  # A save cut short leaves a temporary directory; resuming must ignore it.
  checkpoints = tmp_path / "b" / "checkpoints"
  shutil.copytree(checkpoints / "10", checkpoints / "15.orbax-checkpoint-tmp-1")
  (checkpoints / "15.orbax-checkpoint-tmp-1" / "state" / "manifest.ocdbt").unlink()
  resumed, results = trainer.train_and_evaluate(config, workdir, task)

  assert int(resumed.step) == config.num_train_steps == results["step"]
  assert_trees_bitwise_equal(resumed, reference)
  assert checkpoint_steps(workdir)[-1] == config.num_train_steps
  assert_trees_bitwise_equal(restore_state(workdir, task), reference)
  assert [r["step"] for r in read_metrics(workdir) if "train/loss" in r] == [5, 10, 15, 20]


def test_finished_workdir_reports_without_training(data_dir, tmp_path):
  config, task = mnist(num_train_steps=4, log_every_steps=2)
  first, results = trainer.train_and_evaluate(config, str(tmp_path), task)
  again, results_again = trainer.train_and_evaluate(config, str(tmp_path), task)
  assert_trees_bitwise_equal(again, first)
  assert {k: v for k, v in results_again.items() if k.startswith("eval/")} == \
         {k: v for k, v in results.items() if k.startswith("eval/")}
  assert checkpoint_steps(tmp_path) == [4]


def poison_from(task, bad_step):
  """train_step whose loss and new params are NaN once `state.step >= bad_step`."""
  def train_step(state, batch, rng):
    new_state, metrics = task.train_step(state, batch, rng)
    bad = state.step >= bad_step
    nan_if_bad = lambda x: jnp.where(bad, jnp.nan, x)
    return (new_state.replace(params=jax.tree.map(nan_if_bad, new_state.params)),
            metrics | {"loss": nan_if_bad(metrics["loss"])})
  return dataclasses.replace(task, train_step=train_step)


@pytest.mark.parametrize("bad_step", [5, 9])  # first bad update right after / right at a checkpoint.
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(mnist20, tmp_path, bad_step):
  config, task = mnist20
  with pytest.raises(trainer.NonFiniteError) as e:
    trainer.train_and_evaluate(config, str(tmp_path), poison_from(task, bad_step))
  failed = bad_step + 1  # the trainer counts steps as updates done.
  last_good = bad_step // 5 * 5
  message = str(e.value)
  assert f"at step {failed}" in message
  assert f"last good checkpoint (step {last_good})" in message
  assert "learning rate" in message
  assert checkpoint_steps(tmp_path)[-1] == last_good
  state = restore_state(tmp_path, task)
  assert int(state.step) == last_good
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state.params))
  records = read_metrics(tmp_path)
  assert records and max(r["step"] for r in records) < failed
  assert all(isinstance(v, (int, float)) for r in records for v in r.values())  # no "nan" strings.


@pytest.mark.parametrize("overrides, mentions", [
    ({"log_every_steps": 0}, "log_every_steps"),
    ({"checkpoint_every_steps": -1}, "checkpoint_every_steps"),
    ({"keep_checkpoints": 0}, "keep_checkpoints"),
    ({"eval_batch_size": 0}, "eval_batch_size"),
    ({"batch_size": -32}, "batch_size"),
])
def test_check_config_rejects_bad_values(overrides, mentions):
  with pytest.raises(UserError, match=mentions):
    trainer.check_config(load_config("mnist_cnn", overrides))


def test_checkpoint_past_num_train_steps_is_refused(data_dir, tmp_path):
  config, task = mnist(num_train_steps=2, **{"optimizer.warmup_steps": 0})
  trainer.train_and_evaluate(config, str(tmp_path), task)
  config, task = mnist(num_train_steps=1, **{"optimizer.warmup_steps": 0})
  with pytest.raises(UserError, match="past num_train_steps=1"):
    trainer.train_and_evaluate(config, str(tmp_path), task)


def test_warmup_is_checked_in_optimizer_updates_not_train_steps():
  """PPO makes update_epochs x num_minibatches optimizer updates per train step: a warmup longer than
  the run's train steps but shorter than its updates is valid."""
  config = load_config("cartpole_ppo", {"num_train_steps": 4, "optimizer.warmup_steps": 8}, set_data_dir=False)
  assert config.update_epochs * config.num_minibatches * 4 > 8
  trainer.check_config(config)
  tasks.make_task(config)
  too_long = load_config("cartpole_ppo", {"num_train_steps": 1, "optimizer.warmup_steps": 10_000},
                         set_data_dir=False)
  with pytest.raises(UserError, match=r"warmup_steps=10000 \(optimizer updates\)"):
    tasks.make_task(too_long)
