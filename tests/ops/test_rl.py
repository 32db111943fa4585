"""RL math (jaxai.ops.rl) against plain-Python references on random and hand-made trajectories.

Trajectories follow EnvPool's convention: after an episode end at row t, values[t+1] is V(s_T) of the final
observation, so a truncation bootstraps from it and a termination does not.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.ops import rl


def gae_reference(rewards, values, bootstrap_value, terminated, episode_end, gamma, lam):
  """The textbook backwards loop, one env column and one row at a time."""
  steps, envs = rewards.shape
  advantages = np.zeros((steps, envs))
  for n in range(envs):
    next_advantage = 0.0
    for t in reversed(range(steps)):
      next_value = values[t + 1, n] if t < steps - 1 else bootstrap_value[n]
      delta = rewards[t, n] + gamma * (1 - terminated[t, n]) * next_value - values[t, n]
      next_advantage = delta + gamma * lam * (1 - episode_end[t, n]) * next_advantage
      advantages[t, n] = next_advantage
  return advantages, advantages + values


def random_rollout(seed, steps, envs):
  rng = np.random.default_rng(seed)
  rewards = rng.normal(size=(steps, envs)).astype(np.float32)
  values = rng.normal(size=(steps, envs)).astype(np.float32)
  bootstrap_value = rng.normal(size=(envs,)).astype(np.float32)
  episode_end = rng.random((steps, envs)) < 0.2
  terminated = episode_end & (rng.random((steps, envs)) < 0.5)  # the other ends are truncations.
  return rewards, values, bootstrap_value, terminated, episode_end


@pytest.mark.parametrize("steps, envs, gamma, lam", [(1, 1, 0.99, 0.95), (7, 3, 0.9, 0.8), (32, 4, 0.99, 1.0),
                                                     (16, 5, 1.0, 0.0), (50, 2, 0.97, 0.5)])
def test_gae_matches_python_loop(steps, envs, gamma, lam):
  rollout = random_rollout(steps * 100 + envs, steps, envs)
  want_adv, want_ret = gae_reference(*rollout, gamma, lam)
  got_adv, got_ret = jax.jit(rl.gae)(*rollout, gamma, lam)
  assert got_adv.shape == got_ret.shape == (steps, envs)
  np.testing.assert_allclose(got_adv, want_adv, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got_ret, want_ret, rtol=1e-5, atol=1e-5)


def test_gae_hand_made_truncation_termination_and_cut():
  # Column 0 is truncated at row 1, column 1 terminates at row 1; row 2 is the reset row in both.
  gamma, lam = 0.9, 0.8
  rewards = np.array([[1.0, 1.0], [2.0, 2.0], [0.0, 0.0], [3.0, 3.0]], np.float32)
  values = np.array([[0.5, 0.5], [0.25, 0.25], [4.0, 4.0], [1.0, 1.0]], np.float32)  # values[2] = V(s_T)
  bootstrap_value = np.array([2.0, 2.0], np.float32)
  terminated = np.array([[0, 0], [0, 1], [0, 0], [0, 0]], bool)
  episode_end = np.array([[0, 0], [1, 1], [0, 0], [0, 0]], bool)
  adv, ret = rl.gae(rewards, values, bootstrap_value, terminated, episode_end, gamma, lam)
  adv = np.asarray(adv)

  # Row 1: the truncated column bootstraps from values[2] = V(s_T); the terminated one does not, and
  # neither adds A_2 (the chain is cut at the episode end).
  assert adv[1, 0] == pytest.approx(2.0 + gamma * 4.0 - 0.25)
  assert adv[1, 1] == pytest.approx(2.0 - 0.25)
  # Row 0 chains into row 1 as usual.
  for n in range(2):
    assert adv[0, n] == pytest.approx(1.0 + gamma * 0.25 - 0.5 + gamma * lam * adv[1, n])
  # The last row bootstraps from bootstrap_value.
  assert adv[3, 0] == pytest.approx(3.0 + gamma * 2.0 - 1.0)
  np.testing.assert_allclose(ret, adv + values, rtol=1e-6)

  # Nothing after the episode end reaches rows 0..1, except V(s_T) for the truncated column only.
  changed = rewards.copy(), values.copy(), bootstrap_value + 100.0
  changed[0][2:] += 50.0
  changed[1][3] -= 7.0
  adv2, _ = rl.gae(changed[0], changed[1], changed[2], terminated, episode_end, gamma, lam)
  np.testing.assert_allclose(np.asarray(adv2)[:2], adv[:2], rtol=1e-6)
  values_after_end = values.copy()
  values_after_end[2] += 10.0
  adv3, _ = rl.gae(rewards, values_after_end, bootstrap_value, terminated, episode_end, gamma, lam)
  assert np.asarray(adv3)[1, 0] == pytest.approx(adv[1, 0] + gamma * 10.0)
  assert np.asarray(adv3)[1, 1] == pytest.approx(adv[1, 1])


def n_step_reference(rewards, terminated, episode_end, gamma):
  """One sequence at a time: accumulate discounted rewards until (and including) the first episode end."""
  parts = []
  for r, term, end in zip(rewards, terminated, episode_end):
    ret, m = 0.0, len(r)
    for j in range(len(r)):
      ret += gamma ** j * r[j]
      if end[j] or term[j]:
        m = j + 1
        break
    parts.append((ret, gamma ** m * (1 - term[m - 1]), m))
  return [np.array(x) for x in zip(*parts)]


def test_n_step_hand_made():
  gamma, n = 0.5, 4
  rewards = np.array([[1, 2, 3, 4]] * 3, np.float32)
  terminated = np.array([[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]], bool)
  episode_end = np.array([[0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 0, 1]], bool)  # row 2: truncation at j=1
  ret, discount, m = jax.jit(rl.n_step_target_parts)(rewards, terminated, episode_end, gamma)
  assert m.dtype == jnp.int32
  np.testing.assert_array_equal(m, [n, 2, 2])
  np.testing.assert_allclose(ret, [1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 4, 1 + 0.5 * 2, 1 + 0.5 * 2])
  np.testing.assert_allclose(discount, [gamma ** n, 0.0, gamma ** 2])


def test_n_step_end_at_first_and_last_row():
  gamma = 0.9
  rewards = np.array([[5, 1, 1], [5, 1, 1], [5, 1, 7]], np.float32)
  terminated = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 1]], bool)
  episode_end = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], bool)
  ret, discount, m = rl.n_step_target_parts(rewards, terminated, episode_end, gamma)
  np.testing.assert_array_equal(m, [1, 1, 3])
  np.testing.assert_allclose(ret, [5, 5, 5 + 0.9 + 0.81 * 7], rtol=1e-6)
  np.testing.assert_allclose(discount, [0.0, 0.9, 0.0], rtol=1e-6)


def test_n_step_with_n_1_is_one_step_td():
  gamma = 0.99
  rewards = np.array([[1.5], [-2.0], [0.25]], np.float32)
  terminated = np.array([[0], [1], [0]], bool)
  episode_end = np.array([[0], [1], [1]], bool)  # the last one is a truncation
  ret, discount, m = rl.n_step_target_parts(rewards, terminated, episode_end, gamma)
  np.testing.assert_allclose(ret, rewards[:, 0])
  np.testing.assert_allclose(discount, gamma * (1 - terminated[:, 0]))
  np.testing.assert_array_equal(m, [1, 1, 1])


@pytest.mark.parametrize("n", [1, 3, 5])
def test_n_step_matches_python_loop(n):
  rng = np.random.default_rng(n)
  rewards = rng.normal(size=(64, n)).astype(np.float32)
  episode_end = rng.random((64, n)) < 0.25
  terminated = episode_end & (rng.random((64, n)) < 0.5)
  got = rl.n_step_target_parts(rewards, terminated, episode_end, 0.95)
  for g, w in zip(got, n_step_reference(rewards, terminated, episode_end, 0.95)):
    np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_huber_values_and_gradient():
  x = jnp.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
  np.testing.assert_allclose(rl.huber(x), [2.5, 0.5, 0.125, 0.0, 0.125, 0.5, 2.5])
  np.testing.assert_allclose(rl.huber(x, delta=2.0), [4.0, 0.5, 0.125, 0.0, 0.125, 0.5, 4.0])
  grad = jax.vmap(jax.grad(rl.huber))(x)
  np.testing.assert_allclose(grad, np.clip(x, -1.0, 1.0))


def test_linear_epsilon():
  schedule = jax.jit(lambda step: rl.linear_epsilon(step, 1.0, 0.1, 100))
  for step, want in [(0, 1.0), (50, 0.55), (100, 0.1), (10_000, 0.1)]:
    assert float(schedule(step)) == pytest.approx(want)
  assert float(rl.linear_epsilon(5, 1.0, 0.05, 0)) == pytest.approx(0.05)
