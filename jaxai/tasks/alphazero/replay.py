"""The replay window: the most recent self-play positions, held as arrays in the train state.

Insertion and sampling run inside the jitted train step; a checkpoint saves the window with the
parameters, so a resumed run trains on the same data. Rows arrive with a `valid` mask (positions
whose outcome is not known yet); only valid rows are kept, oldest first out.
"""
import jax
import jax.numpy as jnp

FIELDS = ("planes", "policy", "legal", "value")


def init(capacity: int, example_row: dict) -> dict:
  """An empty window for rows shaped like `example_row` (one position, no batch dim)."""
  window = {k: jnp.zeros((capacity,) + jnp.shape(example_row[k]), jnp.asarray(example_row[k]).dtype)
            for k in FIELDS}
  return window | {"valid": jnp.zeros((capacity,), bool), "next": jnp.zeros((), jnp.int32)}


def capacity(window: dict) -> int:
  return window["valid"].shape[0]


def size(window: dict) -> jax.Array:
  return jnp.sum(window["valid"].astype(jnp.int32))


def add(window: dict, rows: dict) -> dict:
  """Appends the valid rows of `rows` (leaves (N, ...)), overwriting the oldest entries."""
  n, cap = rows["valid"].shape[0], capacity(window)
  if n > cap:
    raise ValueError(f"{n} rows per insertion do not fit a replay window of {cap}.")
  order = jnp.argsort(~rows["valid"], stable=True)   # valid rows first, in their original order.
  rows = jax.tree.map(lambda x: x[order], rows)
  index = (window["next"] + jnp.arange(n)) % cap
  index = jnp.where(rows["valid"], index, cap)        # out of bounds: invalid rows are dropped.
  out = {k: window[k].at[index].set(rows[k], mode="drop") for k in FIELDS + ("valid",)}
  out["next"] = (window["next"] + jnp.sum(rows["valid"].astype(jnp.int32))) % cap
  return out


def sample(window: dict, rng, batch_size: int) -> dict:
  """`batch_size` valid entries drawn uniformly with replacement (call only when `size` > 0)."""
  weights = window["valid"].astype(jnp.float32)
  index = jax.random.choice(rng, capacity(window), (batch_size,), p=weights / jnp.maximum(weights.sum(), 1.0))
  return {k: window[k][index] for k in FIELDS}
