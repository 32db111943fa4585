"""Where the rows of each train step come from: one protocol, two implementations.

    source.open(placement, rng)         once, before the first step (loads data, starts environments)
    source.rows(step, state) -> (batch, metrics)   the global batch of `step` (arrays on the mesh)
    source.position(step) -> dict       JSON: where `step` is in the input; saved with checkpoints
    source.batch_axes                   the batch axis of every leaf (an int, or a dict prefix)

DatasetSource: random access by step over in-memory examples, so the batch of a step depends only
on (seed, step) and a resumed run sees exactly the batches of an uninterrupted one. Every process
computes the same global batch indices and materializes only its own rows. Sampling:
  'shuffle'       without replacement: a fresh permutation per epoch, the last partial batch dropped.
  'replacement'   uniform with replacement (e.g. random text windows, as nanoGPT draws them).
  'poisson'       each example independently with probability batch_size / num_examples (what
                  differentially private accounting assumes); rows are padded to `max_rows` and a
                  boolean 'mask' marks the real ones (rows beyond max_rows are dropped and counted).

CollectionSource: rows generated with the current parameters by a pure `collect(policy, carry, rng)
-> (carry, rows, metrics)` (environments, self-play), jitted by the core: on this process's first
device (EnvPool's XLA interface cannot be partitioned; the rows become this process's share of the
global batch) or, with `on_mesh=True` (pure-JAX collection), data-parallel over the mesh with the
carry split along its axis 0. `policy` is `policy_of(state)` ({'params', 'step'} by default). The
carry (environments, games in progress) is not checkpointed: environments restart on resume.
"""
import math
from typing import Any, Callable, Mapping

import jax
import numpy as np

from jaxai.core import sharding
from jaxai.data.pipeline import process_rows
from jaxai.errors import UserError

SAMPLING = ("shuffle", "replacement", "poisson")


class DatasetSource:
  """Batches of examples drawn by index from in-memory arrays.

  arrays: {name: array (N, ...)}, or a function returning them (called on first use, so a task
    restored for a tool never reads its training data).
  num_examples / gather: for examples that are not rows of the arrays (text windows):
    `num_examples(arrays) -> int` and `gather(arrays, indices) -> rows`. Default: len and row take.
    An int `num_examples` is the count known without the data (a saved run's facts).
  """

  def __init__(self, arrays: Mapping[str, np.ndarray] | Callable[[], Mapping[str, np.ndarray]],
               batch_size: int, seed: int, *, sampling: str = "shuffle", max_rows: int = 0,
               num_examples: int | Callable[[Mapping], int] | None = None,
               gather: Callable[[Mapping, np.ndarray], dict] | None = None, batch_axes: Any = 0,
               process_index: int | None = None, process_count: int | None = None):
    if sampling not in SAMPLING:
      raise UserError(f"Dataset sampling {sampling!r} is unknown; use one of {SAMPLING}.")
    self.batch_size, self.seed, self.sampling, self.batch_axes = batch_size, seed, sampling, batch_axes
    self._arrays, self._count, self._gather = arrays, num_examples, gather
    self._process = (process_index, process_count)
    self.max_rows = max_rows or (batch_size + math.ceil(4 * math.sqrt(batch_size)) if sampling == "poisson"
                                 else batch_size)
    self._auto_rows = sampling == "poisson" and not max_rows
    self._perm_epoch, self._perm, self._placement = None, None, None
    self._draw_step, self._draw = None, None

  @property
  def arrays(self) -> dict:
    if callable(self._arrays):
      self._arrays = dict(self._arrays())
    return self._arrays

  @property
  def num_examples(self) -> int:
    if isinstance(self._count, int):
      return self._count
    if self._count is not None:
      return int(self._count(self.arrays))
    sizes = {len(v) for v in self.arrays.values()}
    if len(sizes) != 1:
      raise ValueError(f"Arrays have different lengths: { {k: len(v) for k, v in self.arrays.items()} }")
    return sizes.pop()

  @property
  def steps_per_epoch(self) -> int:
    """Train steps per pass over the examples (for 'shuffle'; the expected number otherwise)."""
    return max(1, self.num_examples // self.batch_size)

  def check(self) -> None:
    if self.batch_size > self.num_examples and self.sampling != "replacement":
      raise UserError(f"Global batch size {self.batch_size} exceeds the {self.num_examples} "
                      "training examples; lower batch_size.")

  def open(self, placement: sharding.Placement, rng=None) -> None:
    self.check()
    if self._auto_rows:  # Poisson padding: rounded up so the rows split over the devices.
      self.max_rows = -(-self.max_rows // placement.mesh.size) * placement.mesh.size
    if self.max_rows % placement.mesh.size:
      raise UserError(f"{self.max_rows} rows per step ({self.sampling} sampling) do not split over the "
                      f"{placement.mesh.size} devices; choose max_rows (or batch_size) as a multiple of it.")
    self._placement = placement

  def _permutation(self, epoch: int) -> np.ndarray:
    if epoch != self._perm_epoch:
      self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
      self._perm_epoch = epoch
    return self._perm

  def indices(self, step: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(example indices of the whole global batch of `step`, per-row mask or None)."""
    n, b = self.num_examples, self.batch_size
    if self.sampling == "shuffle":
      epoch, index = divmod(step, n // b)
      # Sorted: a faster gather, and the same global batch whatever the process count.
      return np.sort(self._permutation(epoch)[index * b:(index + 1) * b]), None
    if self.sampling == "replacement":
      return np.random.default_rng([self.seed, step]).integers(0, n, b), None
    chosen = self._poisson_draw(step)[:self.max_rows]
    mask = np.arange(self.max_rows) < len(chosen)
    return np.pad(chosen, (0, self.max_rows - len(chosen))), mask

  def batch(self, step: int) -> dict:
    """This process's rows of the global batch of `step` (numpy)."""
    index, mask = self.indices(step)
    rows = process_rows(len(index), *self._process)
    index = index[rows]
    out = self._gather(self.arrays, index) if self._gather else {k: v[index] for k, v in self.arrays.items()}
    if mask is not None:
      out["mask"] = mask[rows]
    return out

  def dropped(self, step: int) -> int:
    """Poisson sampling: examples drawn at `step` that did not fit in max_rows."""
    if self.sampling != "poisson":
      return 0
    return max(0, len(self._poisson_draw(step)) - self.max_rows)

  def _poisson_draw(self, step: int) -> np.ndarray:
    """Every example drawn at `step` (each with probability batch_size / N); the last step's is kept,
    since the batch and its dropped count both read it."""
    if self._draw_step != step:
      n = self.num_examples
      rng = np.random.default_rng([self.seed, step])
      self._draw_step, self._draw = step, np.flatnonzero(rng.random(n) < self.batch_size / n)
    return self._draw

  def rows(self, step: int, state=None) -> tuple[Any, dict]:
    metrics = {"data/dropped_examples": self.dropped(step)} if self.sampling == "poisson" else {}
    return self._placement.global_batch(self.batch(step), self.batch_axes), metrics

  def position(self, step: int) -> dict:
    out = {"step": step, "seed": self.seed, "sampling": self.sampling, "global_batch_size": self.batch_size,
           "num_examples": self.num_examples}
    if self.sampling == "shuffle":
      out["epoch"], out["batch_in_epoch"] = divmod(step, self.steps_per_epoch)
    return out


def default_policy(state) -> dict:
  return {"params": state.params, "step": state.step}


class CollectionSource:
  """Rows collected with the current parameters (see the module docstring)."""

  rows_follow_state = True  # step t's rows need the state after step t-1: one step per call.

  def __init__(self, collect: Callable, init_carry: Callable[[], Any], *, on_mesh: bool = False,
               batch_axes: Any = 0, policy_of: Callable[[Any], Any] = default_policy):
    self.collect, self.init_carry, self.on_mesh = collect, init_carry, on_mesh
    self.batch_axes, self.policy_of = batch_axes, policy_of
    self._fn = self._carry = self._rng = self._placement = None

  def _collect_with_rng(self, policy, carry, base_rng):
    return self.collect(policy, carry, jax.random.fold_in(base_rng, policy["step"]))

  def open(self, placement: sharding.Placement, rng) -> None:
    self._placement, self._rng = placement, rng  # rng uncommitted: jit replicates it (also across processes).
    if self.on_mesh:
      self._carry = placement.global_batch(self.init_carry())
    else:
      self._fn = sharding.on_local_device(self._collect_with_rng, donate_argnums=(1,))
      self._carry = self.init_carry()

  def _compile_on_mesh(self, policy):
    placement, repl = self._placement, self._placement.replicated
    carry_sharding = jax.tree.map(lambda x: x.sharding, self._carry)
    shapes = jax.eval_shape(self._collect_with_rng, policy, self._carry, self._rng)
    rows_sharding = placement.batch(shapes[1], self.batch_axes)
    return jax.jit(self._collect_with_rng, in_shardings=(repl, carry_sharding, repl),
                   out_shardings=(carry_sharding, rows_sharding, repl), donate_argnums=(1,))

  def rows(self, step: int, state) -> tuple[Any, dict]:
    policy = self.policy_of(state)
    if self._fn is None:
      self._fn = self._compile_on_mesh(policy)
    self._carry, rows, metrics = self._fn(policy, self._carry, self._rng)
    if not self.on_mesh:
      rows = self._placement.global_batch(rows, self.batch_axes)
    return rows, metrics

  def position(self, step: int) -> dict:
    return {"step": step}

