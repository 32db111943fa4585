"""Reinforcement-learning math on time-major rollouts: GAE, n-step targets, Huber loss, epsilon schedules.

Row conventions (EnvPool auto-reset): row t holds (obs_t, action_t, reward_t, terminated_t, episode_end_t,
valid_t). When an episode ends at row t, obs[t+1] is that episode's FINAL observation s_T and row t+1 is a
fake reset transition (action ignored, reward 0, valid=False) whose next observation starts a new episode.
  terminated:  the episode reached a true terminal state (or an Atari life loss): never bootstrap past it.
  episode_end: the episode stops (terminated OR truncated by a time limit): never chain returns past it,
               but a truncated episode still bootstraps from V(s_T) = V(obs[t+1]).
Quantities computed AT a reset row (valid=False) are meaningless; callers mask them out of their losses.
"""
import jax
import jax.numpy as jnp


def gae(rewards, values, bootstrap_value, terminated, episode_end, gamma: float,
        lam: float) -> tuple[jax.Array, jax.Array]:
  """Generalized advantage estimation over a time-major rollout, with lax.scan in reverse.

  rewards, values, terminated, episode_end: (T, N); bootstrap_value: (N,) = V(obs after the last row).
  next_value_t = values[t+1] (t < T-1) else bootstrap_value
  delta_t = r_t + gamma * (1 - terminated_t) * next_value_t - values_t
  A_t = delta_t + gamma * lam * (1 - episode_end_t) * A_{t+1}
  Returns (advantages (T, N), returns = advantages + values (T, N)).
  """
  dtype = jnp.result_type(rewards, values, bootstrap_value, jnp.float32)
  rewards, values = rewards.astype(dtype), values.astype(dtype)
  bootstrap_value = bootstrap_value.astype(dtype)
  # After an episode end at row t, values[t+1] = V(s_T) (EnvPool puts the final observation in the next row),
  # which is exactly what a truncated episode bootstraps from; a terminated one multiplies it by 0.
  next_values = jnp.concatenate([values[1:], bootstrap_value[None]], axis=0)  # (T, N)
  not_terminated = 1.0 - terminated.astype(dtype)  # (T, N)
  continues = 1.0 - episode_end.astype(dtype)  # (T, N)
  deltas = rewards + gamma * not_terminated * next_values - values  # (T, N) one-step TD errors

  # A_t is the (gamma * lam)-discounted sum of future TD errors, cut at the episode's end. The garbage delta
  # of a reset row t+1 never leaks into A_t, because episode_end_t zeroes the chain there.
  def step(next_advantage, inputs):
    delta, cont = inputs  # (N,), (N,)
    advantage = delta + gamma * lam * cont * next_advantage
    return advantage, advantage

  _, advantages = jax.lax.scan(step, jnp.zeros_like(bootstrap_value), (deltas, continues), reverse=True)
  return advantages, advantages + values


def n_step_target_parts(rewards, terminated, episode_end, gamma: float) -> tuple[jax.Array, jax.Array, jax.Array]:
  """For sequences of the next n rows after a sampled row: rewards, terminated, episode_end: (B, n).

  Stops at the first episode end: m = min(n, 1 + first j with episode_end_j).
  Returns (partial_return (B,) = sum_{j<m} gamma^j r_j,
           bootstrap_discount (B,) = gamma^m * (1 - terminated_{m-1}),
           m (B,) int32 in [1, n]); the caller's target is partial_return + bootstrap_discount * Q(obs[t+m]).
  A terminated row counts as an episode end even if its episode_end flag is False.
  """
  n = rewards.shape[-1]
  dtype = jnp.result_type(rewards, jnp.float32)
  ends = jnp.logical_or(episode_end, terminated)  # (B, n)
  # argmax returns the first True; with no end at all the sequence runs its full length n.
  first_end = jnp.argmax(ends, axis=-1)  # (B,)
  m = jnp.where(jnp.any(ends, axis=-1), first_end + 1, n).astype(jnp.int32)  # (B,)

  j = jnp.arange(n)  # (n,)
  discounts = jnp.asarray(gamma, dtype) ** j.astype(dtype)  # (n,) gamma^j
  in_episode = (j[None, :] < m[:, None]).astype(dtype)  # (B, n) rows j < m belong to the sampled episode
  partial_return = jnp.sum(discounts * in_episode * rewards.astype(dtype), axis=-1)  # (B,)

  # If the last used row m-1 is a true termination, obs[t+m] = s_T has no future value; after a truncation
  # (or when no end occurred within n rows) the value of obs[t+m] is discounted by gamma^m.
  last_terminated = jnp.take_along_axis(terminated, (m - 1)[:, None], axis=-1)[:, 0]  # (B,)
  bootstrap_discount = jnp.asarray(gamma, dtype) ** m.astype(dtype) * (1.0 - last_terminated.astype(dtype))
  return partial_return, bootstrap_discount, m


def huber(x, delta: float = 1.0) -> jax.Array:
  """Elementwise Huber loss: x^2 / 2 for |x| <= delta, delta * (|x| - delta / 2) beyond; same shape as x."""
  abs_x = jnp.abs(x)
  # Splitting |x| into a quadratic part (up to delta) and a linear remainder keeps the gradient exactly
  # clip(x, -delta, delta) everywhere, without a where() that would also differentiate the unused branch.
  quadratic = jnp.minimum(abs_x, delta)
  return 0.5 * quadratic ** 2 + delta * (abs_x - quadratic)


def linear_epsilon(step, start: float, end: float, duration: int) -> jax.Array:
  """float32 of step's shape (usually ()): linear from `start` at step 0 to `end` at `duration`, then `end`."""
  if duration <= 0:
    return jnp.asarray(end, jnp.float32)
  fraction = jnp.clip(jnp.asarray(step, jnp.float32) / duration, 0.0, 1.0)
  return jnp.asarray(start + fraction * (end - start), jnp.float32)
