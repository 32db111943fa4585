"""EnvPool layer on real envs (CPU): option checks, auto-reset bookkeeping, whole-game Atari statistics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("envpool")

from jaxai.core.errors import UserError
from jaxai.envs import envpool as ep


def rollout(env, carry, key, num_steps):
  """A jitted lax.scan of `num_steps` uniformly random actions; the transitions as numpy, (T, N, ...)."""
  if not hasattr(env, "_test_scan"):
    env._test_scan = jax.jit(lambda c, a: jax.lax.scan(env.step, c, a))
  actions = jax.random.randint(key, (num_steps, env.num_envs), 0, env.num_actions, dtype=jnp.int32)
  carry, trans = env._test_scan(carry, actions)
  return carry, jax.tree.map(np.asarray, trans)


def concat(chunks):
  return jax.tree.map(lambda *xs: np.concatenate(xs), *chunks)


def check_bookkeeping(t, raw_reward):
  """Every finished game's length/return equal the valid steps/raw rewards since the env's last end;
  valid is False exactly on steps after terminated | truncated. Returns per-env lists of games as
  (start, end) step indices."""
  num_steps, n = t.valid.shape
  assert t.valid[0].all()
  np.testing.assert_array_equal(t.valid[1:], ~(t.terminated | t.truncated)[:-1])
  assert not (t.terminated & ~t.valid).any() and not (t.episode_end & ~t.valid).any()
  np.testing.assert_array_equal(t.finished_return[~t.episode_end], 0)
  np.testing.assert_array_equal(t.finished_length[~t.episode_end], 0)
  games = [[] for _ in range(n)]
  for i in range(n):
    start = 0
    for s in np.nonzero(t.episode_end[:, i])[0]:
      game = slice(start, s + 1)
      assert t.finished_length[s, i] == t.valid[game, i].sum()
      np.testing.assert_allclose(t.finished_return[s, i], raw_reward[game, i][t.valid[game, i]].sum(),
                                 rtol=1e-6)
      games[i].append((start, s))
      start = s + 1
  return games


def test_unknown_env_id_lists_close_matches():
  for bad in ("Pong-v4", "Pongg-v5"):
    with pytest.raises(UserError, match="Pong-v5") as e:
      ep.make(bad, 2, 0)
    assert "list_all_envs" in str(e.value)


def test_bad_options_and_arguments():
  with pytest.raises(UserError, match="stack_num") as e:
    ep.make("CartPole-v1", 2, 0, stack_num=4)
  assert "max_episode_steps" in str(e.value) and "num_threads" in str(e.value)
  with pytest.raises(UserError, match="did you mean 'episodic_life'") as e:
    ep.make("Pong-v5", 2, 0, episodic_lives=False)
  assert "repeat_action_probability" in str(e.value) and "'task'" not in str(e.value)
  with pytest.raises(UserError, match="batch_size"):
    ep.make("CartPole-v1", 2, 0, batch_size=1)  # internal: always num_envs.
  with pytest.raises(UserError, match="num_envs"):
    ep.make("CartPole-v1", 0, 0)


def test_atari_defaults_evaluation_and_overrides():
  env = ep.make("Pong-v5", 1, 0)
  config = env.pool.config
  assert all(config[k] == v for k, v in ep.ATARI_DEFAULTS.items())
  assert env.is_atari and env.obs_shape == (4, 84, 84) and env.obs_dtype == np.uint8 and env.num_actions == 6
  env.close()
  env = ep.make("Pong-v5", 1, 0, evaluation=True, repeat_action_probability=0.25, num_threads=1)
  config = env.pool.config
  assert not config["episodic_life"] and not config["reward_clip"]
  assert config["repeat_action_probability"] == 0.25 and config["num_threads"] == 1
  assert config["noop_max"] == 30 and config["max_episode_steps"] == 27000
  env.close()
  env = ep.make("CartPole-v1", 3, 0)
  assert not env.is_atari and env.obs_shape == (4,) and env.obs_dtype == np.float32 and env.num_actions == 2
  env.close()


def test_rows_go_to_env_order():
  env_id = np.array([2, 0, 3, 1], np.int32)
  rows = np.array([[20], [0], [30], [10]])
  (np_out,) = ep.to_env_order(env_id, rows)
  (jnp_out,) = jax.jit(ep.to_env_order)(jnp.asarray(env_id), jnp.asarray(rows))
  np.testing.assert_array_equal(np_out, [[0], [10], [20], [30]])
  np.testing.assert_array_equal(jnp_out, np_out)


def test_cartpole_autoreset_bookkeeping():
  env = ep.make("CartPole-v1", 4, seed=3, max_episode_steps=25, num_threads=1)  # short cap: truncations too.
  carry = env.reset()
  first_obs = np.asarray(carry.obs)
  carry, t = rollout(env, carry, jax.random.key(0), 600)
  assert t.obs.shape == (600, 4, 4) and t.reward.dtype == np.float32 and t.finished_length.dtype == np.int32
  np.testing.assert_array_equal(t.obs[0], first_obs)
  assert t.terminated.sum() > 10 and t.truncated.sum() > 5
  np.testing.assert_array_equal(t.episode_end, t.terminated | t.truncated)  # no lives outside Atari.
  np.testing.assert_array_equal(t.reward, t.valid.astype(np.float32))  # +1 per real step, 0 on reset steps.
  games = check_bookkeeping(t, t.reward)
  assert sum(map(len, games)) == t.episode_end.sum() > 20
  np.testing.assert_array_equal(t.finished_length[t.truncated], 25)
  # obs/next_obs: the carry's obs is the last next_obs, also across episode ends (final observation).
  np.testing.assert_array_equal(t.obs[1:], t.next_obs[:-1])
  np.testing.assert_array_equal(np.asarray(carry.obs), t.next_obs[-1])
  # Terminal next_obs is the final (out-of-bounds) state, the reset step's next_obs a fresh start.
  final = t.next_obs[t.terminated]
  assert ((np.abs(final[:, 0]) > 2.4) | (np.abs(final[:, 2]) > 0.2094)).all()
  fresh = t.next_obs[~t.valid]
  assert (np.abs(fresh) <= 0.05).all()
  env.close()


def test_reset_inside_jit_resets_on_every_call():
  """Under jit, `reset` is a host callback run at each call (evaluation resets its envs every time):
  the same first observations and steps as a host reset of a twin pool with the same seed."""
  host, traced = (ep.make("CartPole-v1", 3, seed=5, num_threads=1) for _ in range(2))
  actions = jnp.ones((3,), jnp.int32)
  reset_and_step = jax.jit(lambda a: traced.step(traced.reset(), a))
  for _ in range(2):
    carry = host.reset()
    want_carry, want = jax.jit(host.step)(carry, actions)
    got_carry, got = reset_and_step(actions)
    np.testing.assert_array_equal(got.obs, carry.obs)
    assert (np.abs(np.asarray(got.obs)) <= 0.05).all() and np.asarray(got.valid).all()
    np.testing.assert_array_equal(got.next_obs, want.next_obs)
    np.testing.assert_array_equal(got_carry.episode_length, want_carry.episode_length)
    np.testing.assert_array_equal(got_carry.episode_length, 1)
  host.close()
  traced.close()


def test_atari_games_span_lives_with_raw_returns():
  """Asterix (3 lives, 50 points per item, random games end in ~200-300 steps): the same seed and
  actions with and without reward clipping give the same trajectory, so the clipped (training) env's
  whole-game returns can be checked against the raw rewards."""
  kw = dict(num_threads=1)
  train = ep.make("Asterix-v5", 2, seed=7, **kw)
  raw = ep.make("Asterix-v5", 2, seed=7, reward_clip=False, **kw)
  c_train, c_raw = train.reset(), raw.reset()
  np.testing.assert_array_equal(c_train.obs, c_raw.obs)
  chunks_train, chunks_raw = [], []
  for k in range(8):  # Until each env has finished a game.
    c_train, t = rollout(train, c_train, jax.random.key(k), 150)
    c_raw, r = rollout(raw, c_raw, jax.random.key(k), 150)
    chunks_train.append(t)
    chunks_raw.append(r)
    if concat(chunks_train).episode_end.any(axis=0).all():
      break
  t, r = concat(chunks_train), concat(chunks_raw)
  same = ("obs", "terminated", "truncated", "valid", "episode_end", "finished_return", "finished_length")
  for name in same:
    np.testing.assert_array_equal(getattr(t, name), getattr(r, name), err_msg=name)
  np.testing.assert_array_equal(t.reward, np.sign(r.reward))
  games = check_bookkeeping(t, r.reward)
  assert all(games), "each env should finish a game"
  for i, env_games in enumerate(games):
    for start, end in env_games:
      game = slice(start, end + 1)
      life_losses = (t.terminated[game, i] & ~t.episode_end[game, i]).sum()
      assert life_losses == 2  # 3 lives: two life-loss terminations, then game over.
      assert t.finished_return[end, i] > t.reward[game, i].sum() > 0  # raw 50s, not clipped 1s.
  # A life-loss reset step continues the game: the frame stack shifts by one frame. A game-over reset
  # step starts a new one: the stack is refilled with the same first frame.
  after = np.zeros_like(t.valid)
  after[1:] = t.terminated[:-1] & ~t.episode_end[:-1]
  assert after.any()
  np.testing.assert_array_equal(t.next_obs[after][:, :3], t.obs[after][:, 1:])
  after_end = np.zeros_like(t.valid)
  after_end[1:] = t.episode_end[:-1]
  new = t.next_obs[after_end]
  assert (new[:, :1] == new).all()
  train.close()
  raw.close()


def test_atari_evaluation_plays_whole_games_unclipped():
  env = ep.make("Asterix-v5", 2, seed=1, evaluation=True, num_threads=1)
  carry, t = rollout(env, env.reset(), jax.random.key(1), 300)
  np.testing.assert_array_equal(t.terminated & ~t.episode_end, False)  # life loss is not terminal.
  assert (t.reward > 1).any()  # raw score
  check_bookkeeping(t, t.reward)
  env.close()
