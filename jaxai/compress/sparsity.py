"""How sparse a model is: per-layer zero counts of the prunable weights, an evaluator that logs them
during training, and the text table reports print.

    evaluator(prunable)       summaries {'prune/sparsity': fraction of prunable weights that are zero,
                              'prune/layers': Text table of each layer's sparsity}
    layer_sparsity(params, prunable) -> {'Dense_0/kernel': 0.91, ...}
    table(params, prunable) -> str

Prunable weights are those `jaxai.compress.pruning` would prune: the leaves whose path inside
params fully matches `prunable`, with ndim >= 2.
"""
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxai.compress import pruning
from jaxai.core.evaluators import Evaluator
from jaxai.core.summaries import Text


def _leaves(params, prunable: str) -> dict:
  """{path: leaf} of the prunable leaves, in tree order."""
  paths = set(pruning.prunable_paths(params, prunable))
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return {pruning.path_of(k): x for k, x in flat if pruning.path_of(k) in paths}


def zero_counts(params, prunable: str = r".*kernel") -> dict:
  """{path: (zeros, weights, shape)} of the prunable leaves, on the host."""
  return {path: (int(np.sum(np.asarray(x) == 0)), int(np.size(x)), tuple(np.shape(x)))
          for path, x in _leaves(jax.device_get(params), prunable).items()}


def layer_sparsity(params, prunable: str = r".*kernel") -> dict:
  """{path: fraction of the leaf's weights that are exactly zero} of the prunable leaves."""
  return {path: zeros / size for path, (zeros, size, _) in zero_counts(params, prunable).items()}


def total_sparsity(counts: dict) -> float:
  weights = sum(size for _, size, _ in counts.values())
  return sum(zeros for zeros, _, _ in counts.values()) / max(weights, 1)


def format_table(counts: dict) -> str:
  """The table of `zero_counts` output: one row per layer and a total."""
  rows = [(path, "x".join(map(str, shape)), size, zeros) for path, (zeros, size, shape) in counts.items()]
  rows.append(("total", "", sum(r[2] for r in rows), sum(r[3] for r in rows)))
  width = max(len("layer"), *(len(r[0]) for r in rows))
  lines = [f"{'layer':<{width}}  {'shape':>14}  {'weights':>10}  {'zeros':>10}  sparsity"]
  for path, shape, size, zeros in rows:
    lines.append(f"{path:<{width}}  {shape:>14}  {size:>10,}  {zeros:>10,}  {zeros / max(size, 1):8.2%}")
  return "\n".join(lines)


def table(params, prunable: str = r".*kernel") -> str:
  """A text table of each prunable layer's shape, weights, zeros and sparsity, with the total."""
  return format_table(zero_counts(params, prunable))


def evaluator(prunable: str = r".*kernel", view: Callable = lambda state: state.params,
              every_steps: int = 0) -> Evaluator:
  """Logs 'prune/sparsity' and the 'prune/layers' table of `view(state)` (the params by default)."""

  def fn(params, rng):  # on device: zeros of each prunable leaf, and its shape (static) as an array.
    del rng
    return {path: (jnp.sum(x == 0, dtype=jnp.int32), jnp.array(x.shape, jnp.int32))
            for path, x in _leaves(params, prunable).items()}

  def finish(outputs, step):
    del step
    counts = {path: (int(zeros), int(np.prod(shape)), tuple(int(d) for d in shape))
              for path, (zeros, shape) in outputs.items()}
    return {"prune/sparsity": total_sparsity(counts), "prune/layers": Text(format_table(counts))}

  return Evaluator(fn, finish, view=view, every_steps=every_steps)
