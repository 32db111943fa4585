"""The device mesh, and the only place that turns sharding rules into shardings.

Mesh: named axes over every device of every process, from `config.mesh` ('data=-1' by default:
one `data` axis over all devices; -1 takes the devices the other axes leave). A second axis such as
'data=-1,fsdp=2' shards parameters as well (FSDP); 'clients=-1' lays per-client state of federated
learning over the devices.

Rules: data that map state leaves to `PartitionSpec`s, as (pattern, spec) pairs. `pattern` is a
regular expression matched against the whole leaf path ('params/Dense_0/kernel',
'extra/replay/obs'); the first match wins and unmatched leaves are replicated. `spec` is a
`PartitionSpec`, a tuple (one entry per dimension: an axis name, a tuple of names, or None), or
'fsdp': split the leaf's largest dimension that divides evenly over the `fsdp` axis (replicated if
none does, or if the mesh has no such axis). Examples:
    ('extra/replay/obs', (None, 'data'))   a replay buffer's env columns split along `data`
    ('params/.*', ('clients',))            per-client parameters with a leading `clients` axis
    ('(params|opt_state)/.*', 'fsdp')      fully sharded parameters and optimizer state
Batches are split along every mesh axis on their batch axis (0 unless the source says otherwise,
e.g. 1 for time-major rollouts).
"""
import re
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxai.errors import UserError

DATA_AXIS = "data"
FSDP_AXIS = "fsdp"
Rules = Sequence[tuple[str, Any]]


def make_mesh(axes: Mapping[str, int] | None = None) -> Mesh:
  """A mesh over all devices (all hosts) with named axes {name: size}; one size may be -1."""
  axes = dict(axes or {DATA_AXIS: -1})
  n = jax.device_count()
  known = int(np.prod([s for s in axes.values() if s != -1]))
  if list(axes.values()).count(-1) > 1 or any(s == 0 or s < -1 for s in axes.values()):
    raise UserError(f"config.mesh={axes}: sizes must be >= 1, with at most one -1 (the rest).")
  sizes = {k: (n // known if s == -1 else s) for k, s in axes.items()}
  if int(np.prod(list(sizes.values()))) != n:
    raise UserError(f"config.mesh={axes} does not cover the {n} devices ({jax.process_count()} "
                    f"process(es)): the sizes must multiply to {n}; use -1 for one axis to take the rest.")
  return jax.make_mesh(tuple(sizes.values()), tuple(sizes),
                       axis_types=(jax.sharding.AxisType.Auto,) * len(sizes))


def path_of(key_path) -> str:
  """'params/Dense_0/kernel' for a jax key path (the names checkpoints and rules use)."""
  return jax.tree_util.keystr(key_path, simple=True, separator="/")


def _axis_size(mesh: Mesh, names) -> int:
  names = names if isinstance(names, tuple) else (names,)
  return int(np.prod([mesh.shape[a] for a in names if a is not None]))


def spec_for(path: str, shape: tuple, rules: Rules, mesh: Mesh) -> P:
  """The PartitionSpec of one leaf; a UserError when a rule does not fit the leaf or the mesh."""
  for pattern, spec in rules:
    if not re.fullmatch(pattern, path):
      continue
    if spec == "fsdp":
      size = mesh.shape.get(FSDP_AXIS, 1)
      dims = sorted(range(len(shape)), key=lambda d: -shape[d])
      dim = next((d for d in dims if size > 1 and shape[d] % size == 0), None)
      return P() if dim is None else P(*([None] * dim + [FSDP_AXIS]))
    spec = tuple(spec)
    if len(spec) > len(shape):
      raise UserError(f"Sharding rule ({pattern!r}, {spec}) has {len(spec)} entries but leaf {path!r} "
                      f"has only {len(shape)} dimensions {shape}.")
    for dim, names in enumerate(spec):
      missing = [a for a in (names if isinstance(names, tuple) else (names,)) if a and a not in mesh.shape]
      if missing:
        raise UserError(f"Sharding rule ({pattern!r}, {spec}) names mesh axis {missing[0]!r}, but the "
                        f"mesh has axes {dict(mesh.shape)}; set --config.mesh accordingly.")
      if names is not None and shape[dim] % _axis_size(mesh, names):
        raise UserError(f"Leaf {path!r} {shape}: dimension {dim} ({shape[dim]}) does not split evenly "
                        f"over mesh axis {names!r} of size {_axis_size(mesh, names)} (rule {pattern!r}); "
                        "choose sizes that divide, or another rule.")
    return P(*spec)
  return P()


class Placement:
  """A mesh and its rules: shardings of states and batches, and global arrays from process rows."""

  def __init__(self, mesh: Mesh, rules: Rules = ()):
    self.mesh, self.rules = mesh, tuple(rules)
    self.replicated = NamedSharding(mesh, P())

  @property
  def batch_axes(self) -> tuple[str, ...]:
    return tuple(self.mesh.axis_names)

  def state(self, abstract: Any) -> Any:
    """NamedShardings for every leaf of a state (arrays or ShapeDtypeStructs)."""
    return jax.tree_util.tree_map_with_path(
        lambda k, x: NamedSharding(self.mesh, spec_for(path_of(k), tuple(x.shape), self.rules, self.mesh)),
        abstract)

  def split_leaves(self, abstract: Any) -> dict[str, P]:
    """{path: spec} of the leaves that are not replicated (for the log and tests)."""
    flat = jax.tree_util.tree_flatten_with_path(self.state(abstract))[0]
    return {path_of(k): s.spec for k, s in flat if s.spec != P()}

  def batch(self, tree: Any, axes: Any = 0) -> Any:
    """Shardings of a batch: each leaf split over all mesh axes on its batch axis. `axes` is an int
    for every leaf, or a dict {key: int or dict} for a dict batch (missing keys: 0)."""
    return jax.tree.map(lambda x, a: NamedSharding(self.mesh, P(*([None] * a + [self.batch_axes]))),
                        tree, axes_tree(axes, tree))

  def global_batch(self, local: Any, axes: Any = 0) -> Any:
    """Assembles each process's rows (numpy, or arrays on a local device) into global arrays."""
    shardings = self.batch(local, axes)
    if jax.process_count() == 1:
      return jax.device_put(local, shardings)
    return jax.tree.map(lambda x, s: jax.make_array_from_process_local_data(s, np.asarray(x)), local, shardings)

  def global_shapes(self, local: Any, axes: Any = 0) -> Any:
    """ShapeDtypeStructs of the global batch assembled from every process's rows shaped like `local`."""
    def one(x, s, axis):
      shape = list(x.shape)
      shape[axis] *= jax.process_count()
      return jax.ShapeDtypeStruct(tuple(shape), x.dtype, sharding=s)
    return jax.tree.map(one, local, self.batch(local, axes), axes_tree(axes, local))

  def put_state(self, state: Any) -> Any:
    return jax.device_put(state, self.state(state))

  def with_shardings(self, abstract: Any) -> Any:
    """`abstract` (ShapeDtypeStructs) carrying this placement's state shardings (what restore reads onto)."""
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract,
                        self.state(abstract))


def axes_tree(axes: Any, tree: Any) -> Any:
  """The batch axis of every leaf of `tree`, from an int or a dict prefix of it."""
  if isinstance(axes, int):
    return jax.tree.map(lambda _: axes, tree)
  return {k: axes_tree(axes.get(k, 0), v) for k, v in tree.items()}


def parse_mesh(text: str) -> dict[str, int]:
  """'data=-1,fsdp=2' -> {'data': -1, 'fsdp': 2}."""
  try:
    pairs = [item.split("=") for item in text.replace(" ", "").split(",") if item]
    return {name: int(size) for name, size in pairs}
  except ValueError:
    raise UserError(f"config.mesh={text!r} must look like 'data=-1' or 'data=-1,fsdp=2' "
                    "(axis=size, -1 = the remaining devices).") from None


def placement(config=None, rules: Rules = ()) -> Placement:
  """The run's placement: the mesh of `config.mesh` (default: one `data` axis), the config's
  `sharding_rules` first, then `rules` (the task's)."""
  config = config if config is not None else {}
  axes = parse_mesh(config.get("mesh", "") or "data=-1")
  return Placement(make_mesh(axes), tuple(config.get("sharding_rules", ())) + tuple(rules))


def check_batch_size(global_batch_size: int, mesh: Mesh, name: str = "batch_size") -> int:
  """Validates a global batch size and returns the rows each process must supply."""
  devices = mesh.devices.size
  if global_batch_size <= 0 or global_batch_size % devices:
    raise UserError(
        f"config.{name}={global_batch_size} is the global batch and must be a positive multiple of "
        f"the number of devices ({devices}, over {jax.process_count()} process(es)). "
        f"Use for example --config.{name}={max(devices, global_batch_size // devices * devices)}.")
  return global_batch_size // jax.process_count()


def local_copy(tree: Any) -> Any:
  """This process's copy of replicated arrays, as single-device arrays (for per-process work such as
  environment rollouts and host-side tools). Under jax.distributed a replicated array spans every
  process and cannot be moved or read whole; its first local shard is the full value."""
  return jax.tree.map(lambda x: x if not isinstance(x, jax.Array) or x.is_fully_addressable
                      else x.addressable_data(0), tree)


def on_local_device(fn: Callable, donate_argnums=()) -> Callable:
  """`fn` compiled for this process's first device; array arguments are moved there first (a
  replicated array that spans processes goes as its local copy). For work that cannot be
  partitioned over a mesh (EnvPool's XLA interface) and for tools that play or sample."""
  jitted = jax.jit(fn, donate_argnums=donate_argnums)
  device = jax.local_devices()[0]

  def call(*args):
    return jitted(*jax.device_put(local_copy(args), device))
  call.jitted = jitted
  return call
