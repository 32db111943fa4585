"""Replay buffer (jaxai.ops.replay) against plain-Python references on hand-made trajectories.

Observations encode where they came from, obs = (global time index, env id), and the other fields are
functions of the time index, so every sampled sequence can be checked exactly: next_obs must be the same
env's obs at times t+1..t+n, all written and not yet overwritten.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.ops import replay, rl

add = jax.jit(replay.add)
sample = jax.jit(replay.sample, static_argnames=("batch_size", "n_step"))


def make_rows(start, k, num_envs):
  """Rows for global times start..start+k-1 (k, N): obs (k, N, 2) = (time, env); fields derived from time."""
  time = np.arange(start, start + k)[:, None].repeat(num_envs, 1)  # (k, N)
  env = np.arange(num_envs)[None, :].repeat(k, 0)  # (k, N)
  return {"obs": np.stack([time, env], -1).astype(np.int32),
          "action": (time % 5).astype(np.int32),
          "reward": (time * 10 + env).astype(np.float32),
          "terminated": time % 7 == 3,
          "episode_end": time % 3 == 0,
          "valid": time % 4 != 1}


def test_init_shapes_and_dtypes():
  buf = replay.init(6, 3, (4, 5, 5), jnp.uint8)
  assert buf.obs.shape == (6, 3, 4, 5, 5) and buf.obs.dtype == jnp.uint8
  for name, dtype in [("action", jnp.int32), ("reward", jnp.float32), ("terminated", jnp.bool_),
                      ("episode_end", jnp.bool_), ("valid", jnp.bool_)]:
    assert getattr(buf, name).shape == (6, 3) and getattr(buf, name).dtype == dtype, name
  assert int(buf.cursor) == 0 and int(buf.size) == 0


def test_add_wraps_around_and_keeps_newest_rows_in_order():
  capacity, envs, k = 5, 2, 3  # k does not divide the capacity, so single adds wrap mid-way.
  buf = replay.init(capacity, envs, (2,), jnp.int32)
  written = 0
  for _ in range(5):
    buf = add(buf, make_rows(written, k, envs))
    written += k
    assert int(buf.cursor) == written % capacity
    assert int(buf.size) == min(written, capacity)
    # Reading from the oldest row (`size` rows behind the cursor) gives the newest `size` times in order.
    size = int(buf.size)
    order = (int(buf.cursor) - size + np.arange(size)) % capacity
    want = make_rows(written - size, size, envs)
    for name, value in want.items():
      np.testing.assert_array_equal(np.asarray(getattr(buf, name))[order], value, err_msg=name)


def test_add_rejects_bad_shapes():
  buf = replay.init(4, 2, (2,), jnp.int32)
  with pytest.raises(ValueError, match="capacity"):
    replay.add(buf, make_rows(0, 5, 2))
  with pytest.raises(ValueError, match="obs"):
    replay.add(buf, make_rows(0, 2, 3))


def check_sample(batch, written, size, n_step, num_envs):
  """Every sampled sequence lies in written, not-overwritten rows, in time order, in one env column."""
  time, env = np.asarray(batch["obs"][:, 0]), np.asarray(batch["obs"][:, 1])
  assert (time >= written - size).all() and (time + n_step <= written - 1).all()
  steps = time[:, None] + np.arange(1, n_step + 1)  # (B, n)
  np.testing.assert_array_equal(batch["next_obs"][..., 0], steps)
  np.testing.assert_array_equal(batch["next_obs"][..., 1], env[:, None].repeat(n_step, 1))
  seq = time[:, None] + np.arange(n_step)  # (B, n)
  np.testing.assert_array_equal(batch["rewards"], seq * 10 + env[:, None])
  np.testing.assert_array_equal(batch["terminated"], seq % 7 == 3)
  np.testing.assert_array_equal(batch["episode_end"], seq % 3 == 0)
  np.testing.assert_array_equal(batch["action"], time % 5)
  np.testing.assert_array_equal(batch["valid"], time % 4 != 1)
  assert (env >= 0).all() and (env < num_envs).all()
  return set(zip(time.tolist(), env.tolist()))


@pytest.mark.parametrize("n_step", [1, 3])
def test_sample_never_crosses_write_head_or_unwritten_rows(n_step):
  capacity, envs, k, batch_size = 7, 3, 2, 1024
  buf = replay.init(capacity, envs, (2,), jnp.int32)
  written = 0
  rng = jax.random.key(0)
  for _ in range(9):  # 18 rows: before the buffer fills, as it fills and after it wraps twice.
    buf = add(buf, make_rows(written, k, envs))
    written += k
    size = min(written, capacity)
    assert bool(replay.can_sample(buf, n_step)) == (size > n_step)
    if size <= n_step:
      continue
    rng, key = jax.random.split(rng)
    batch = sample(buf, key, batch_size=batch_size, n_step=n_step)
    assert batch["obs"].shape == (batch_size, 2) and batch["next_obs"].shape == (batch_size, n_step, 2)
    assert batch["rewards"].shape == batch["terminated"].shape == batch["episode_end"].shape == (batch_size, n_step)
    assert batch["action"].shape == batch["valid"].shape == (batch_size,)
    seen = check_sample(batch, written, size, n_step, envs)
    # Every allowed (start time, env) pair shows up: the sampler covers all of them, not a subset.
    allowed = {(t, n) for t in range(written - size, written - n_step) for n in range(envs)}
    assert seen == allowed


def test_sample_is_deterministic_for_a_fixed_rng():
  buf = replay.init(8, 2, (2,), jnp.int32)
  buf = add(buf, make_rows(0, 6, 2))
  first = sample(buf, jax.random.key(3), batch_size=64, n_step=2)
  again = sample(buf, jax.random.key(3), batch_size=64, n_step=2)
  other = sample(buf, jax.random.key(4), batch_size=64, n_step=2)
  for name in first:
    np.testing.assert_array_equal(first[name], again[name], err_msg=name)
  assert not np.array_equal(first["obs"], other["obs"])


def test_can_sample_needs_n_step_plus_one_rows():
  n_step = 3
  buf = replay.init(10, 2, (2,), jnp.int32)
  assert not bool(jax.jit(replay.can_sample, static_argnums=1)(buf, n_step))
  for written in range(1, 6):
    buf = add(buf, make_rows(written - 1, 1, 2))
    assert bool(replay.can_sample(buf, n_step)) == (written >= n_step + 1), written


def test_n_step_target_bootstraps_from_the_final_observation():
  """EnvPool trajectory: truncation at time 2 (obs 3 = s_T, row 3 a reset row), termination at time 6."""
  gamma, n_step = 0.5, 3
  num_rows = 10
  rows = {"obs": np.arange(num_rows, dtype=np.int32)[:, None, None] * 100,  # (T, 1, 1) distinct observations
          "action": np.zeros((num_rows, 1), np.int32),
          "reward": np.arange(1, num_rows + 1, dtype=np.float32)[:, None],
          "terminated": np.isin(np.arange(num_rows), [6])[:, None],
          "episode_end": np.isin(np.arange(num_rows), [2, 6])[:, None],
          "valid": ~np.isin(np.arange(num_rows), [3, 7])[:, None]}
  rows["reward"][[3, 7]] = 0.0  # reset rows carry no reward
  buf = add(replay.init(num_rows, 1, (1,), jnp.int32), rows)

  @jax.jit
  def targets(buf, key):
    batch = sample(buf, key, batch_size=256, n_step=n_step)
    ret, discount, m = rl.n_step_target_parts(batch["rewards"], batch["terminated"], batch["episode_end"], gamma)
    bootstrap_obs = jnp.take_along_axis(batch["next_obs"][..., 0], (m - 1)[:, None], axis=1)[:, 0]
    return batch["obs"][:, 0] // 100, batch["valid"], ret, discount, bootstrap_obs

  start, valid, ret, discount, bootstrap_obs = map(np.asarray, targets(buf, jax.random.key(0)))
  for t, v, r, d, o in zip(start, valid, ret, discount, bootstrap_obs):
    # Plain-Python reference: walk forward from t until n_step rows or an episode end (inclusive).
    want_r, m = 0.0, n_step
    for j in range(n_step):
      want_r += gamma ** j * rows["reward"][t + j, 0]
      if rows["episode_end"][t + j, 0]:
        m = j + 1
        break
    assert r == pytest.approx(want_r)
    assert d == pytest.approx(gamma ** m * (1 - rows["terminated"][t + m - 1, 0]))
    assert o == (t + m) * 100
    assert v == rows["valid"][t, 0]
  assert {1, 2} <= set(start.tolist())  # starts whose sequence ends at the truncation are covered
  # From time 1 the episode ends after 2 rows: the target bootstraps from s_T = obs at time 3.
  assert bootstrap_obs[start == 1][0] == 300


def test_replay_methods_are_the_module_functions():
  """The buffers share one vocabulary (init, add, sample, size, can_sample); DQN's functions stay."""
  buf = replay.Replay.init(6, 2, (2,), jnp.int32)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), buf, replay.init(6, 2, (2,), jnp.int32)))
  rows = make_rows(0, 4, 2)
  buf, ref = buf.add(rows), replay.add(buf, rows)
  assert int(buf.size) == int(ref.size) == 4 and bool(buf.can_sample(2)) == bool(replay.can_sample(ref, 2))
  a, b = buf.sample(jax.random.key(0), 8, 2), replay.sample(ref, jax.random.key(0), 8, 2)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_window_keeps_the_newest_valid_rows_and_samples_only_them():
  capacity = 5
  window = replay.Window.init(capacity, {"x": np.zeros(2, np.int32)})
  assert all(leaf.shape[0] == capacity for leaf in jax.tree.leaves(window))  # one rule splits them all.
  assert int(window.size) == 0 and not bool(window.can_sample())
  add = jax.jit(lambda w, r: w.add(r))
  stored = []  # every valid row's x[0], in arrival order.
  for start in range(0, 24, 3):  # 3 rows per add, 2 of them valid: the window wraps several times.
    x = np.arange(start, start + 3)
    valid = x % 3 != 1
    window = add(window, {"x": np.stack([x, -x], 1).astype(np.int32), "valid": valid})
    stored += x[valid].tolist()
    kept = np.asarray(window.rows["x"])[np.asarray(window.valid), 0]
    assert sorted(kept.tolist()) == sorted(stored[-capacity:]) and int(window.size) == min(len(stored), capacity)
    np.testing.assert_array_equal(np.sort(np.asarray(window.serial)[np.asarray(window.valid)]),
                                  np.arange(max(len(stored) - capacity, 0), len(stored)))
  batch = jax.jit(lambda w, k: w.sample(k, 256))(window, jax.random.key(0))
  assert set(batch) == {"x"} and batch["x"].shape == (256, 2)
  assert set(np.asarray(batch["x"][:, 0]).tolist()) == set(stored[-capacity:])  # all of them, nothing else.
  np.testing.assert_array_equal(batch["x"][:, 1], -batch["x"][:, 0])
  with pytest.raises(ValueError, match="do not fit"):
    window.add({"x": np.zeros((6, 2), np.int32), "valid": np.ones(6, bool)})
