"""Several train steps per device call (config.steps_per_call): the same training as one step per call,
metrics and the finiteness check still per step, calls cut at every log, evaluation and checkpoint
step, and bitwise resume."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.core import trainer
from jaxai.core.errors import UserError
from jaxai.core.metrics import read_metrics
from jaxai.core.sources import CollectionSource
from tests.core.toy import make_toy_task, toy_config
from tests.helpers import checkpoint_steps, leaves_with_paths


def train(tmp_path, name, task_fn=lambda task: task, **overrides):
  config = toy_config(num_train_steps=12, log_every_steps=3, checkpoint_every_steps=6, eval_every_steps=6,
                      **overrides)
  task = task_fn(make_toy_task(config, evaluators=[]))
  calls = []
  counted = dataclasses.replace(task, train_step=lambda *a: (calls.append(1), task.train_step(*a))[1])
  state, results = trainer.train_and_evaluate(config, str(tmp_path / name), counted)
  return state, read_metrics(str(tmp_path / name)), len(calls)


def close(a, b):
  a, b = leaves_with_paths(a), leaves_with_paths(b)
  return a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=1e-6, atol=1e-7) for k in a)


@pytest.mark.parametrize("unroll", [False, True])
def test_steps_per_call_trains_as_one_step_per_call(tmp_path, unroll):
  one, one_logs, _ = train(tmp_path, "one")
  many, many_logs, traces = train(tmp_path, "many", steps_per_call=5, unroll_steps=unroll)
  # Calls end at the log steps 3, 6, 9, 12: every call is 3 steps (one trace; scan traces its body once).
  assert traces == 1
  assert close(one, many)
  assert [r["step"] for r in many_logs] == [r["step"] for r in one_logs] == [3, 6, 9, 12]
  np.testing.assert_allclose([r["train/loss"] for r in many_logs], [r["train/loss"] for r in one_logs], rtol=1e-6)
  assert checkpoint_steps(tmp_path / "many") == [6, 12]


def test_non_finite_step_inside_a_call_is_named(tmp_path):
  def poisoned(task):
    def train_step(state, batch, rng):
      new_state, metrics = task.train_step(state, batch, rng)
      return new_state, metrics | {"loss": jnp.where(state.step == 7, jnp.nan, metrics["loss"])}
    return dataclasses.replace(task, train_step=train_step)

  with pytest.raises(trainer.NonFiniteError, match=r"at step 8: .*last good checkpoint \(step 6\)"):
    train(tmp_path, "nan", poisoned, steps_per_call=3)
  assert checkpoint_steps(tmp_path / "nan") == [6]


def test_resume_with_steps_per_call_is_bitwise(tmp_path):
  reference, _, _ = train(tmp_path, "ref", steps_per_call=3)

  class StopAfter8:  # the source raises when asked for step 8's rows (after the checkpoint at 6).
    def __init__(self, source):
      self.source = source

    def __getattr__(self, name):
      return getattr(self.source, name)

    def rows(self, step, state=None):
      if step == 8:
        raise KeyboardInterrupt
      return self.source.rows(step, state)

  with pytest.raises(KeyboardInterrupt):
    train(tmp_path, "cut", lambda task: dataclasses.replace(task, source=StopAfter8(task.source)), steps_per_call=3)
  resumed, _, _ = train(tmp_path, "cut", steps_per_call=3)
  a, b = leaves_with_paths(reference), leaves_with_paths(resumed)
  assert all(np.array_equal(a[k], b[k]) for k in a)


def test_collection_sources_are_refused(tmp_path):
  refuse = lambda task: dataclasses.replace(task, source=CollectionSource(lambda *a: None, lambda: None))
  with pytest.raises(UserError, match="steps_per_call=2.*parameters of the step before"):
    train(tmp_path, "collect", refuse, steps_per_call=2)
  with pytest.raises(UserError, match="steps_per_call"):
    trainer.check_config(toy_config(steps_per_call=0))
