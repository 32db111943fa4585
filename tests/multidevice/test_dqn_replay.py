"""DQN's replay buffer is split along the mesh's `data` axis on its env columns (Task.sharding_rules):
the compiled train step takes it split, each device holds its envs' columns only, and a few train
steps give the same losses and parameters as with the rule removed (replicated)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxai.core import sharding, trainer
from jaxai.core.checkpoint import Checkpointer, signature
from jaxai.tasks.rl import dqn
from tests.helpers import load_config

pytest.importorskip("envpool")

STEPS = 8
REPLAY_COLUMNS = ("obs", "action", "reward", "terminated", "episode_end", "valid")


def dqn_config():
  """cartpole_dqn:tiny with one env per device, making optimizer updates from the second train step on."""
  config = load_config("cartpole_dqn", {"num_envs": jax.device_count()}, set_data_dir=False)
  config.learning_starts = 2 * config.num_envs * config.train_frequency
  return config


def train(config, task, steps: int):
  """`steps` train steps as the trainer takes them, twice on the same rows: with the task's rules
  ('split') and with none ('replicated'). Returns {run: compiled step}, {run: state}, {run: metrics}."""
  init_rng, train_rng = jax.random.split(jax.random.key(config.seed))
  abstract = jax.eval_shape(task.init, init_rng)
  placements = {"split": sharding.placement(config, task.sharding_rules),
                "replicated": sharding.placement(config)}
  first = jax.jit(task.init, out_shardings=placements["split"].state(abstract))(init_rng)
  states = {run: placement.put_state(jax.tree.map(jnp.copy, first))  # copies: each run donates its own.
            for run, placement in placements.items()}
  compiled, history = {}, {run: [] for run in placements}
  task.source.open(placements["split"], jax.random.fold_in(train_rng, 1))
  for step in range(steps):
    batch, _ = task.source.rows(step, states["split"])  # the batch shardings do not depend on the rules.
    for run, placement in placements.items():
      compiled[run] = compiled.get(run) or trainer.compile_train_step(task, placement, abstract, batch)
      states[run], metrics = compiled[run](states[run], batch, train_rng)
      history[run].append(jax.device_get(metrics))
  return compiled, states, history


def test_replay_buffer_is_split_with_the_replicated_numbers(tmp_path):
  config = dqn_config()
  task = dqn.make_task(config)
  compiled, states, history = train(config, task, STEPS)
  state, replicated_state = states["split"], states["replicated"]
  split, replicated = history["split"], history["replicated"]
  compiled = compiled["split"]

  # The compiled step takes the buffer's env columns split along `data`: one env per device.
  replay_in = compiled.input_shardings[0][0].extra["replay"]
  replay = state.extra["replay"]
  for name in REPLAY_COLUMNS:
    assert getattr(replay_in, name).spec == P(None, "data"), name
    column = getattr(replay, name)
    assert column.sharding.spec == P(None, "data"), name
    shards = column.addressable_shards
    assert len(shards) == jax.device_count() == column.shape[1]
    assert all(s.data.shape == (column.shape[0], 1) + column.shape[2:] for s in shards), name
    assert getattr(replicated_state.extra["replay"], name).sharding.spec == P(), name
  assert replay_in.cursor.spec == P()
  assert all(s.spec == P() for s in jax.tree.leaves(compiled.input_shardings[0][0].params))
  # No collective gathers the buffer: a device only ever holds its own columns.
  obs_shape = "f32[{},{},4]".format(*replay.obs.shape[:2])
  assert not [line for line in compiled.as_text().splitlines() if "all-gather" in line and obs_shape in line]

  # The same numbers as the replicated buffer, step by step. One optimizer update per train step
  # from the first learning one on, as the schedule's length counts them.
  first = dqn.first_update_step(config, jax.device_count() * config.train_frequency)
  assert first == 1 and [m["learning"] for m in split] == [float(s >= first) for s in range(STEPS)]
  counts = [int(x) for path, x in jax.tree_util.tree_flatten_with_path(state.opt_state)[0]
            if getattr(path[-1], "name", None) == "count"]  # Adam's update counter.
  assert counts and all(c == STEPS - first for c in counts), counts
  assert all(m["loss"] > 0 for m in split[1:])
  for a, b in zip(split, replicated):
    for key in ("loss", "q_mean", "grad_norm"):
      np.testing.assert_allclose(a[key], b[key], rtol=1e-6, err_msg=key)
  for a, b in zip(jax.tree.leaves(jax.device_get(state)), jax.tree.leaves(jax.device_get(replicated_state))):
    np.testing.assert_allclose(a, b, rtol=1e-6)

  # A checkpoint of the split buffer restores split, with the same contents.
  abstract = jax.eval_shape(task.init, jax.random.key(0))
  ckpt = Checkpointer(str(tmp_path), async_save=False)
  ckpt.save(STEPS, state, {"signature": signature(abstract)})
  placement = sharding.placement(config, task.sharding_rules)
  restored, _ = ckpt.restore(STEPS, placement.with_shardings(abstract))
  ckpt.close()
  assert restored.extra["replay"].obs.sharding.spec == P(None, "data")
  np.testing.assert_array_equal(restored.extra["replay"].obs, replay.obs)
