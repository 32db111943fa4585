"""Device mesh and shardings: one `data` axis over every device of every process.

The global batch is split along `data`; parameters and optimizer state are replicated. Under
`jax.distributed` the same code spans hosts: each process hands in only its own rows of the batch
(`global_batch`) and `jax.jit` sees one global array.
"""
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxai.core.errors import UserError

DATA_AXIS = "data"


def make_mesh() -> Mesh:
  """A 1-D mesh over all devices (all hosts)."""
  n = jax.device_count()
  return jax.make_mesh((n,), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Leading (batch) dimension split over the `data` axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(global_batch_size: int, mesh: Mesh, name: str = "batch_size") -> int:
  """Validates a global batch size and returns the rows each process must supply."""
  devices = mesh.devices.size
  if global_batch_size <= 0 or global_batch_size % devices:
    raise UserError(
        f"config.{name}={global_batch_size} is the global batch and must be a positive multiple of "
        f"the number of devices ({devices}, over {jax.process_count()} process(es)). "
        f"Use for example --config.{name}={max(devices, global_batch_size // devices * devices)}.")
  return global_batch_size // jax.process_count()


def global_batch(local_batch: Any, mesh: Mesh) -> Any:
  """Assembles each process's rows (numpy, or arrays on a local device) into global arrays split on `data`."""
  sharding = batch_sharded(mesh)
  if jax.process_count() == 1:
    return jax.device_put(local_batch, sharding)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def local_copy(tree: Any) -> Any:
  """This process's copy of replicated arrays, as single-device arrays (for host-side or per-process
  work such as environment rollouts and evaluation). Under jax.distributed a replicated array spans
  every process and cannot be moved or read whole; its first local shard is the full value."""
  return jax.tree.map(lambda x: x if not isinstance(x, jax.Array) or x.is_fully_addressable
                      else x.addressable_data(0), tree)
