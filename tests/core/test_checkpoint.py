"""Checkpointer: exact round trip, keep-last-K, and refusal (before reading arrays) of a different layout."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.core import checkpoint
from jaxai.core.checkpoint import Checkpointer
from jaxai.core.errors import UserError
from tests.helpers import leaves_with_paths, tree_digest


def make_state(seed=0, width=3):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return {"step": jnp.asarray(7, jnp.int32),
          "params": {"w": jax.random.normal(k1, (4, width)), "b": jax.random.normal(k2, (width,))}}


def save(workdir, state, steps=(1,), keep=3):
  ckpt = Checkpointer(str(workdir), keep=keep, async_save=True)
  for step in steps:
    ckpt.save(step, state, {"signature": checkpoint.signature(state), "data": {"epoch": step}})
  ckpt.wait()
  ckpt.close()


def test_round_trip_is_bitwise_and_keeps_meta(tmp_path):
  state = make_state()
  save(tmp_path, state, steps=(5,))
  restored, step = checkpoint.restore_latest(str(tmp_path), jax.eval_shape(lambda: state))
  assert step == 5
  got, want = leaves_with_paths(restored), leaves_with_paths(state)
  assert got.keys() == want.keys()
  for k in want:
    assert np.array_equal(np.asarray(got[k]), np.asarray(want[k])), k
    assert got[k].dtype == want[k].dtype
  assert Checkpointer(str(tmp_path)).restore_meta(5)["data"] == {"epoch": 5}


def test_keeps_only_the_last_k(tmp_path):
  save(tmp_path, make_state(), steps=(1, 2, 3, 4, 5), keep=2)
  assert Checkpointer(str(tmp_path)).all_steps() == [4, 5]


def test_signature_and_incompatibilities():
  sig = checkpoint.signature(make_state(width=3))
  assert sig["params/w"] == "float32[4, 3]"
  assert sig["step"] == "int32[]"
  assert checkpoint.incompatibilities(sig, sig) == []
  other = checkpoint.signature(make_state(width=5) | {"extra": jnp.zeros(2)})
  problems = checkpoint.incompatibilities(sig, other)
  assert any("params/w" in p and "float32[4, 3]" in p and "float32[4, 5]" in p for p in problems)
  assert any("extra" in p and "model has" in p for p in problems)
  many = {f"p{i}": "float32[1]" for i in range(20)}
  assert checkpoint.incompatibilities(many, {}, limit=8)[-1] == "... and 12 more"


def test_refuses_a_different_layout_and_changes_nothing(tmp_path):
  save(tmp_path, make_state(width=3), steps=(2,))
  before = tree_digest(tmp_path)
  wrong = jax.eval_shape(lambda: make_state(width=5))
  with pytest.raises(UserError) as e:
    checkpoint.restore_latest(str(tmp_path), wrong)
  message = str(e.value)
  assert "step 2" in message and "params/w" in message and "different model" in message
  assert tree_digest(tmp_path) == before


def test_restore_latest_without_checkpoint_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match="No checkpoint"):
    checkpoint.restore_latest(str(tmp_path), jax.eval_shape(make_state))
