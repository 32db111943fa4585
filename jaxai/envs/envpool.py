"""EnvPool environments with a pure, jittable `step` (EnvPool's XLA interface, gymnasium API).

    env = make("Breakout-v5", num_envs=8, seed=0)
    carry = env.reset()                                    # on the host, or inside jit
    def body(carry, action):
      return env.step(carry, action)                       # pure: usable under jit / lax.scan
    carry, transitions = jax.lax.scan(body, carry, actions)  # actions: (T, N) int32

The pool is synchronous (batch_size == num_envs): every step sends one action per env (env ids
0..N-1) and receives all N rows; rows are put back in env-id order, whatever order EnvPool returns.

Auto-reset (checked empirically with envpool 1.2.5, see tests/envs/test_envpool.py): EnvPool resets
an env on the step *after* it reported terminated or truncated. That step ignores its action and
returns reward 0 and the first observation of the new episode (elapsed_step 0). So a Transition
right after an episode end has valid=False, and its `obs` is the final observation of the previous
episode; `next_obs` of the step that ended an episode is that final observation, never the reset one.

Atari life loss with episodic_life=True (the training default): the life-loss step reports
terminated=True (info['terminated'] stays False: the game goes on). The next step is again a reset
step: its action is ignored, reward 0, and EnvPool runs its reset routine (no-ops, FIRE where the
game has it) *without* restarting the game: lives stay, elapsed_step does not advance, and the frame
stack keeps its history (one new frame is pushed; after a game over the whole stack is refilled).
Such a step also gets valid=False. Hence `needs_reset` = the env's terminated | truncated (life loss
included), while episode statistics count whole games: `episode_end` = info['terminated'] (game
over) | truncated, and returns add info['reward'] (the unclipped reward). A game's length counts its
valid steps only, which equals EnvPool's elapsed_step at the game's end. With episodic_life=False a
life loss is an ordinary step and FIRE is pressed only at game start (in Breakout the agent must
serve again itself). Non-Atari envs (CartPole-v1, ...): episode end = terminated | truncated, raw
reward = reward.

Atari *-v5 defaults (`ATARI_DEFAULTS`; options passed to `make` override them):
  * 84x84 grayscale frames, a stack of the last 4, frame_skip 4, up to 30 random no-ops at reset,
    reward clipping to sign(r) and life loss as episode end for training: the DQN protocol of Mnih
    et al. 2015 (Nature), as in CleanRL's EnvPool Atari scripts (e.g. ppo_atari_envpool.py:
    `episodic_life=True, reward_clip=True`, EnvPool's defaults otherwise).
  * use_fire_reset=True: press FIRE at reset in games that need it (OpenAI Baselines' FireResetEnv;
    EnvPool's default, which CleanRL keeps).
  * repeat_action_probability=0.0: deterministic emulator, as CleanRL. Machado et al. 2018 (JAIR,
    "Revisiting the ALE") recommend sticky actions with probability 0.25 and no life-loss signal;
    pass repeat_action_probability=0.25 (and episodic_life=False) for that protocol.
  * max_episode_steps=27000 agent steps = 108k frames (30 minutes of play), the usual cap (e.g.
    Dopamine, Castro et al. 2018); hitting it sets truncated.
  With evaluation=True: episodic_life=False and reward_clip=False, i.e. whole games and raw scores.
"""
import difflib
import warnings

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from jaxai.errors import UserError

ATARI_DEFAULTS = dict(
    img_height=84,                    # frames resized to 84x84 ...
    img_width=84,
    gray_scale=True,                  # ... grayscale
    stack_num=4,                      # observation = last 4 frames: (4, 84, 84) uint8
    frame_skip=4,                     # one agent step = 4 emulator frames
    noop_max=30,                      # 1..30 random no-ops at reset
    episodic_life=True,               # training: life loss -> terminated (games still counted whole)
    reward_clip=True,                 # training: reward = sign(raw reward)
    repeat_action_probability=0.0,    # no sticky actions (Machado et al. 2018 recommend 0.25)
    use_fire_reset=True,              # press FIRE at reset where the game needs it
    max_episode_steps=27000,          # 108k frames; then truncated
)
ATARI_EVAL_DEFAULTS = dict(episodic_life=False, reward_clip=False)  # applied on top with evaluation=True

# EnvPool config keys that `make` sets itself or that must not change.
_INTERNAL_OPTIONS = frozenset({
    "num_envs", "batch_size", "seed", "env_seed", "base_path", "max_num_players",
    "gym_reset_return_info", "task", "reward_threshold"})


@flax.struct.dataclass
class EnvCarry:
  """What `Env.step` threads from one step to the next."""
  handle: jax.Array          # (8,) uint8 EnvPool XLA handle (threaded through jit for ordering)
  obs: jax.Array             # (N, *obs_shape) current observation, rows in env-id order
  needs_reset: jax.Array     # (N,) bool: the previous step ended this env's episode (game, or a life
                             #   with episodic_life), so EnvPool resets it on the next step and
                             #   ignores that step's action
  episode_return: jax.Array  # (N,) float32 raw (unclipped) return of the current whole game so far
  episode_length: jax.Array  # (N,) int32 agent steps (valid steps) of the current whole game so far


@flax.struct.dataclass
class Transition:
  """One step of N envs, rows in env-id order."""
  obs: jax.Array             # (N, *obs_shape) observation the action was taken in
  action: jax.Array          # (N,) int32
  reward: jax.Array          # (N,) float32 reward as the env returns it (clipped for Atari training envs)
  next_obs: jax.Array        # (N, *obs_shape) observation after the step (episode end: the final one)
  terminated: jax.Array      # (N,) bool: no bootstrapping past this step (life loss with episodic_life)
  truncated: jax.Array       # (N,) bool: time limit; bootstrap from next_obs
  valid: jax.Array           # (N,) bool: False for a reset step (action ignored, not a real transition)
  episode_end: jax.Array     # (N,) bool: a whole game ended here (Atari: game over or truncation)
  finished_return: jax.Array  # (N,) float32 raw return of the game that ended here; 0 elsewhere
  finished_length: jax.Array  # (N,) int32 its length in valid agent steps; 0 elsewhere


def _envpool():
  try:
    import envpool
  except ImportError:
    raise UserError("EnvPool is not installed: pip install envpool (Linux only).") from None
  return envpool


def to_env_order(env_id, *arrays):
  """Rows of `arrays` scattered to their env ids (env_id: (N,) a permutation of 0..N-1)."""
  xp = jnp if isinstance(env_id, jax.Array) else np
  out = []
  for a in arrays:
    if xp is jnp:
      out.append(jnp.zeros_like(a).at[env_id].set(a, unique_indices=True))
    else:
      b = np.empty_like(a)
      b[env_id] = a
      out.append(b)
  return tuple(out)


def make(env_id: str, num_envs: int, seed: int, *, evaluation: bool = False, **options) -> "Env":
  """A synchronous pool of `num_envs` copies of `env_id`; Atari gets `ATARI_DEFAULTS` (see module doc).

  `options` are EnvPool config keys of that env (e.g. num_threads, max_episode_steps, stack_num);
  they override the defaults. `evaluation=True` plays whole Atari games with raw rewards.
  """
  envpool = _envpool()
  all_ids = envpool.list_all_envs()
  if env_id not in all_ids:
    close = difflib.get_close_matches(env_id, all_ids, n=5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UserError(f"EnvPool has no environment {env_id!r}.{hint} List them all with "
                    "`python -c 'import envpool; print(envpool.list_all_envs())'`.")
  if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
    raise UserError(f"num_envs must be an integer >= 1, got {num_envs!r}.")
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not -2**31 <= seed < 2**31:
    raise UserError(f"seed must be an int32 integer, got {seed!r}.")
  spec = envpool.make_spec(env_id)
  valid_keys = sorted(k for k in spec.config._asdict() if k not in _INTERNAL_OPTIONS)
  unknown = sorted(set(options) - set(valid_keys))
  if unknown:
    close = {k: difflib.get_close_matches(k, valid_keys, n=1) for k in unknown}
    hint = "".join(f" ({k!r}: did you mean {c[0]!r}?)" for k, c in close.items() if c)
    raise UserError(f"Unknown option(s) {unknown} for {env_id}.{hint} Valid options: {valid_keys}.")
  is_atari = type(spec).__name__ == "AtariEnvSpec"
  kwargs = {}
  if is_atari:
    kwargs.update(ATARI_DEFAULTS)
    if evaluation:
      kwargs.update(ATARI_EVAL_DEFAULTS)
  kwargs.update(options)
  try:
    pool = envpool.make(env_id, env_type="gymnasium", num_envs=int(num_envs), batch_size=int(num_envs),
                        seed=int(seed), **kwargs)
  except (TypeError, ValueError, AssertionError, RuntimeError) as e:
    raise UserError(f"EnvPool could not make {env_id} with options {kwargs}: {e}") from None
  return Env(pool, env_id, is_atari, kwargs)


class Env:
  """One EnvPool pool (host side) and its jittable step. Build it with `make`."""

  def __init__(self, pool, env_id: str, is_atari: bool, options: dict):
    import gymnasium
    with warnings.catch_warnings():  # gymnasium's notice about float64 bounds cast to float32.
      warnings.filterwarnings("ignore", message=".*precision lowered.*")
      obs_space, act_space = pool.observation_space, pool.action_space
    if not isinstance(act_space, gymnasium.spaces.Discrete):
      raise UserError(f"{env_id} has action space {act_space}; only discrete actions are supported.")
    if not isinstance(obs_space, gymnasium.spaces.Box):
      raise UserError(f"{env_id} has observation space {obs_space}; only a single array (Box) is supported.")
    self.pool = pool                              # the envpool gymnasium pool
    self.env_id = env_id
    self.num_envs = int(pool.config["num_envs"])
    self.is_atari = is_atari
    self.options = dict(options)                  # options given to envpool beyond num_envs/batch_size/seed
    self.obs_shape = tuple(obs_space.shape)
    self.obs_dtype = np.dtype(obs_space.dtype)
    self.num_actions = int(act_space.n)
    self._handle, self._recv, self._send, _ = pool.xla()
    self._env_ids = np.arange(self.num_envs, dtype=np.int32)

  def __repr__(self):
    return (f"Env({self.env_id!r}, num_envs={self.num_envs}, obs={self.obs_shape} {self.obs_dtype}, "
            f"num_actions={self.num_actions}, options={self.options})")

  def reset(self) -> EnvCarry:
    """Resets every env and returns the first carry. Callable on the host and inside `jit`: there
    the reset is a host callback that runs each time the compiled function runs (e.g. at the start
    of every evaluation), ordered before the steps that follow by the handle it returns."""
    n = self.num_envs
    handle = np.asarray(self._handle)
    shapes = (jax.ShapeDtypeStruct(handle.shape, handle.dtype),
              jax.ShapeDtypeStruct((n,) + self.obs_shape, self.obs_dtype))
    handle, obs = io_callback(self._reset_on_host, shapes)
    return EnvCarry(
        handle=handle,
        obs=obs,
        needs_reset=jnp.zeros((n,), bool),
        episode_return=jnp.zeros((n,), jnp.float32),
        episode_length=jnp.zeros((n,), jnp.int32))

  def _reset_on_host(self) -> tuple[np.ndarray, np.ndarray]:
    """(handle (8,) uint8, first observations (N, *obs_shape) in env-id order)."""
    self.pool.async_reset()
    obs, _, _, _, info = self.pool.recv()  # The one recv that completes the reset.
    (obs,) = to_env_order(np.asarray(info["env_id"]), np.asarray(obs, self.obs_dtype))
    return np.asarray(self._handle), obs

  def step(self, carry: EnvCarry, action: jax.Array) -> tuple[EnvCarry, Transition]:
    """Sends `action` ((N,) ints, env-id order) and receives the result; pure and jittable."""
    action = jnp.asarray(action)
    if action.shape != (self.num_envs,) or not jnp.issubdtype(action.dtype, jnp.integer):
      raise UserError(f"{self.env_id}: action must be ({self.num_envs},) integers, got {action.shape} "
                      f"{action.dtype}.")
    action = action.astype(jnp.int32)
    handle = self._send(carry.handle, action, self._env_ids)
    handle, (obs, reward, terminated, truncated, info) = self._recv(handle)
    if self.is_atari:
      raw_reward, game_over = info["reward"], info["terminated"]
    else:
      raw_reward, game_over = reward, terminated
    obs, reward, raw_reward, terminated, truncated, game_over = to_env_order(
        info["env_id"], obs, reward.astype(jnp.float32), raw_reward.astype(jnp.float32),
        terminated.astype(bool), truncated.astype(bool), game_over.astype(bool))
    valid = ~carry.needs_reset
    episode_end = game_over | truncated
    game_return = carry.episode_return + jnp.where(valid, raw_reward, 0.0)
    game_length = carry.episode_length + valid.astype(jnp.int32)
    transition = Transition(
        obs=carry.obs, action=action, reward=reward, next_obs=obs, terminated=terminated,
        truncated=truncated, valid=valid, episode_end=episode_end,
        finished_return=jnp.where(episode_end, game_return, 0.0),
        finished_length=jnp.where(episode_end, game_length, 0))
    carry = EnvCarry(
        handle=handle, obs=obs, needs_reset=terminated | truncated,
        episode_return=jnp.where(episode_end, 0.0, game_return),
        episode_length=jnp.where(episode_end, 0, game_length))
    return carry, transition

  def close(self):
    """Stops the pool's threads."""
    self.pool.close()
