"""Replay buffers held as arrays in the train state (`state.extra['replay']`), so that insertion and
sampling run inside the jitted train step and a checkpoint saves them with the parameters.

The convention both buffers follow:
- a `flax.struct.dataclass` whose row leaves lead with the capacity axis C (the oldest rows are
  overwritten first), so a sharding rule can split them over the mesh (`jaxai.core.sharding`);
- a `valid` mask per stored row;
- the vocabulary `Buffer.init(capacity, ...)`, `buffer.add(rows)`, `buffer.sample(rng, batch_size, ...)`
  (uniform, with replacement, inside the jitted step), `buffer.size` (rows held) and
  `buffer.can_sample(...)`.
Donate the train state to the jitted step that calls `add` (the core does), otherwise XLA copies the
whole buffer on every write.

Replay (DQN): transitions in time order, as an environment rollout delivers them. The module
functions `init`, `add`, `can_sample` and `sample` are its methods' implementations.
Window (AlphaZero): independent rows (self-play positions with their targets), no time order.

Replay's layout: a ring of C time-major rows, one column per env (C * N transitions). Row t holds
(obs_t, action_t, reward_t, terminated_t, episode_end_t, valid_t), exactly as an EnvPool rollout delivers
them; the next observation of row t is obs of row t+1 (after an episode end that is the episode's final
observation s_T, and row t+1 is the fake reset transition, valid=False).

Memory: only one copy of each observation is stored (next observations are read from the following row),
which halves memory versus storing (obs, next_obs) pairs. For Atari 4x84x84 uint8 frame stacks that is
~28 KB per transition, so 100k transitions (e.g. C=12_500 rows x N=8 envs) take ~2.8 GB instead of ~5.6 GB.
The price: reset rows occupy slots (one per episode), and the last n_step rows before the write head cannot
start a sample (their sequence is not complete yet). Its `cursor` and `size` are scalars, so a rule that
splits it names its row fields, e.g. their env columns along `data` (DQN's rule):
('extra/replay/(obs|action|reward|terminated|episode_end|valid)', (None, 'data')).
"""
import flax
import jax
import jax.numpy as jnp

_ROW_FIELDS = ("action", "reward", "terminated", "episode_end", "valid")


@flax.struct.dataclass
class Replay:
  """Transitions in time order (DQN); the layout is in the module docstring."""
  obs: jax.Array  # (C, N, *obs_shape) observation at each row (time-major, one column per env)
  action: jax.Array  # (C, N) int32
  reward: jax.Array  # (C, N) float32
  terminated: jax.Array  # (C, N) bool
  episode_end: jax.Array  # (C, N) bool
  valid: jax.Array  # (C, N) bool (False for EnvPool reset steps)
  cursor: jax.Array  # () int32 next row to write (mod C)
  size: jax.Array  # () int32 rows written so far, capped at C

  @classmethod
  def init(cls, capacity: int, num_envs: int, obs_shape, obs_dtype) -> "Replay":
    return init(capacity, num_envs, obs_shape, obs_dtype)

  def add(self, rows: dict) -> "Replay":
    return add(self, rows)

  def can_sample(self, n_step: int) -> jax.Array:
    return can_sample(self, n_step)

  def sample(self, rng, batch_size: int, n_step: int) -> dict:
    return sample(self, rng, batch_size, n_step)


def init(capacity: int, num_envs: int, obs_shape, obs_dtype) -> Replay:
  """An empty buffer of `capacity` rows (time steps), each holding `num_envs` transitions."""
  rows = (capacity, num_envs)
  return Replay(obs=jnp.zeros(rows + tuple(obs_shape), obs_dtype),
                action=jnp.zeros(rows, jnp.int32),
                reward=jnp.zeros(rows, jnp.float32),
                terminated=jnp.zeros(rows, jnp.bool_),
                episode_end=jnp.zeros(rows, jnp.bool_),
                valid=jnp.zeros(rows, jnp.bool_),
                cursor=jnp.zeros((), jnp.int32),
                size=jnp.zeros((), jnp.int32))


def add(replay: Replay, rows: dict) -> Replay:
  """Writes k consecutive rows at cursor..cursor+k-1 (mod C), overwriting the oldest once full.

  rows: obs (k, N, *obs_shape); action, reward, terminated, episode_end, valid (k, N). k is static, <= C.
  """
  capacity, num_envs = replay.action.shape
  k = rows["obs"].shape[0]
  if not 1 <= k <= capacity:
    raise ValueError(f"add() writes 1..{capacity} rows at once (the capacity), got {k}.")
  if rows["obs"].shape[1:] != replay.obs.shape[1:]:
    raise ValueError(f"rows['obs'] has shape {rows['obs'].shape}, expected (k, {num_envs}, *obs_shape) = "
                     f"({k}, *{replay.obs.shape[1:]}).")
  for name in _ROW_FIELDS:
    if rows[name].shape != (k, num_envs):
      raise ValueError(f"rows[{name!r}] has shape {rows[name].shape}, expected ({k}, {num_envs}).")
  index = (replay.cursor + jnp.arange(k)) % capacity  # (k,) distinct rows since k <= C
  written = {name: getattr(replay, name).at[index].set(rows[name].astype(getattr(replay, name).dtype))
             for name in ("obs",) + _ROW_FIELDS}
  return replay.replace(**written,
                        cursor=(replay.cursor + k) % capacity,
                        size=jnp.minimum(replay.size + k, capacity))


def _num_starts(replay: Replay, n_step: int):
  """() int32 rows that can start a sequence of n_step + 1 written rows in time order."""
  return jnp.maximum(replay.size - n_step, 0)


def can_sample(replay: Replay, n_step: int) -> jax.Array:
  """() bool: at least one start row t with rows t..t+n_step written, i.e. size >= n_step + 1.

  This counts rows regardless of their `valid` flag (the caller masks reset rows via sample()['valid']).
  """
  return _num_starts(replay, n_step) > 0


def sample(replay: Replay, rng, batch_size: int, n_step: int) -> dict:
  """Uniform (with replacement) over (row, env) pairs whose rows t..t+n_step are all written and in time order.

  Once the buffer has wrapped, t is never within n_step rows before the cursor: the sequence must not cross the
  write head, where rows jump from the newest back to the oldest. Returns (B = batch_size):
    obs (B, *obs_shape), action (B,), valid (B,) of row t;
    rewards, terminated, episode_end (B, n_step) of rows t..t+n_step-1;
    next_obs (B, n_step, *obs_shape) = obs of rows t+1..t+n_step (the caller picks obs[t+m], m from
    rl.n_step_target_parts).
  Call only when can_sample() holds; otherwise the returned rows are unwritten zeros.
  """
  capacity, num_envs = replay.action.shape
  row_key, env_key = jax.random.split(rng)
  # Logical index i counts rows from the oldest one still held; the oldest sits `size` rows behind the cursor
  # (row 0 before the buffer wraps). Starts i in [0, size - n_step) keep i + n_step <= size - 1, the newest row.
  oldest = (replay.cursor - replay.size) % capacity
  logical = jax.random.randint(row_key, (batch_size,), 0, jnp.maximum(_num_starts(replay, n_step), 1))
  start = (oldest + logical) % capacity  # (B,)
  env = jax.random.randint(env_key, (batch_size,), 0, num_envs)  # (B,)
  steps = (start[:, None] + jnp.arange(n_step + 1)) % capacity  # (B, n_step + 1) rows t..t+n_step
  seq = steps[:, :-1]  # (B, n_step) rows t..t+n_step-1
  column = env[:, None]  # (B, 1) broadcasts against the row indices
  return {"obs": replay.obs[start, env],
          "action": replay.action[start, env],
          "valid": replay.valid[start, env],
          "rewards": replay.reward[seq, column],
          "terminated": replay.terminated[seq, column],
          "episode_end": replay.episode_end[seq, column],
          "next_obs": replay.obs[steps[:, 1:], column]}


@flax.struct.dataclass
class Window:
  """The newest C rows of a stream of independent rows (AlphaZero's self-play positions), oldest out.

  Every leaf leads with C, bookkeeping included, so one rule splits the whole window over the mesh
  (e.g. config.sharding_rules=((r"extra/replay/.*", ("data",)),); C must divide by the axis size).
  Rows arrive with a `valid` mask (positions whose outcome is not known yet); only valid rows are
  stored, in their order, at the slots after the newest one.
  """
  rows: dict           # {name: (C, ...)} the stored rows.
  valid: jax.Array     # (C,) bool: the slot holds a row.
  serial: jax.Array    # (C,) int32: the slot's row was the serial-th valid row added (0-based; -1 empty).
                       # The next row goes to slot (max(serial) + 1) % C (int32: 2**31 rows in all).

  @classmethod
  def init(cls, capacity: int, example_row: dict) -> "Window":
    """An empty window for rows shaped like `example_row` ({name: one row, no batch axis})."""
    rows = {k: jnp.zeros((capacity,) + jnp.shape(v), jnp.asarray(v).dtype) for k, v in example_row.items()}
    return cls(rows=rows, valid=jnp.zeros((capacity,), bool), serial=jnp.full((capacity,), -1, jnp.int32))

  @property
  def capacity(self) -> int:
    return self.valid.shape[0]

  @property
  def size(self) -> jax.Array:
    """() int32 rows held."""
    return jnp.sum(self.valid.astype(jnp.int32))

  def can_sample(self) -> jax.Array:
    return self.size > 0

  def add(self, rows: dict) -> "Window":
    """Stores the valid rows of `rows` ({name: (N, ...)} and 'valid' (N,) bool), overwriting the oldest."""
    n, cap = rows["valid"].shape[0], self.capacity
    if n > cap:
      raise ValueError(f"{n} rows per insertion do not fit a replay window of {cap}.")
    missing = set(self.rows) - set(rows)
    if missing:
      raise ValueError(f"rows lack the window's fields {sorted(missing)}.")
    added = jnp.max(self.serial) + 1                     # () valid rows added so far.
    order = jnp.argsort(~rows["valid"], stable=True)     # valid rows first, in their original order.
    valid = rows["valid"][order]                         # (N,)
    index = jnp.where(valid, (added + jnp.arange(n)) % cap, cap)  # out of bounds: invalid rows dropped.
    put = lambda buf, x: buf.at[index].set(x.astype(buf.dtype), mode="drop")
    return self.replace(rows={k: put(v, rows[k][order]) for k, v in self.rows.items()},
                        valid=put(self.valid, valid), serial=put(self.serial, added + jnp.arange(n)))

  def sample(self, rng, batch_size: int) -> dict:
    """{name: (batch_size, ...)} rows drawn uniformly with replacement (only when `can_sample`)."""
    weights = self.valid.astype(jnp.float32)
    index = jax.random.choice(rng, self.capacity, (batch_size,), p=weights / jnp.maximum(weights.sum(), 1.0))
    return {k: v[index] for k, v in self.rows.items()}
