"""What a pod user needs to predict scaling: the compiled train step's collectives, bytes and memory.

  python benchmarks/sharding_costs.py        # mnist_cnn at 1, 4, 8 devices; DQN's replay buffer at 1, 4
  python benchmarks/sharding_costs.py --config=configs/cifar10_resnet.py --devices=1,8,32
  python benchmarks/sharding_costs.py --config=configs/atari_dqn.py --devices=1,4 --set=num_envs=4

Scaling efficiency measured on fake CPU devices of a 2-core machine would be meaningless, so this
compiles the real train step (`jaxai.core.trainer.compile_train_step`: the same jit, shardings and
donation as a run, with the task's sharding rules) for each device count, in a fresh process with
that many fake CPU devices, and reads:
  * collectives: every all-reduce / all-gather / reduce-scatter / all-to-all / collective-permute in
    the optimized HLO, with the bytes of its result (what each device receives per step; for a ring
    all-reduce the traffic per device is about 2 x bytes x (n-1)/n);
  * the XLA cost analysis: FLOPs and bytes accessed per device per step;
  * the memory analysis: argument, output, temporary and generated-code bytes per device;
  * the train state's bytes per device, in all and for the leaves of each sharding rule (e.g. DQN's
    replay buffer, split along `data` on its env columns), from the state's shardings.
The global batch stays the config's, so with more devices each holds fewer rows: the gradient
all-reduce stays the size of the parameters, while compute per device shrinks.

Without --config it measures configs/mnist_cnn.py at --devices, then DQN's replay buffer
(configs/atari_dqn.py with 4 envs: 100k transitions of 4x84x84 frames) at --dqn_devices.

Measured with `python benchmarks/sharding_costs.py` (jax 0.10.2, fake CPU devices): mnist_cnn as in
the README (9 all-reduces of 3.32 MiB at 4 and 8 devices; temporaries 185 / 46 / 23 MiB at 1 / 4 / 8);
Atari DQN with 4 envs: replay buffer 2692.70 MiB per device at 1 device, 673.17 MiB at 4 (args
2718.86 -> 699.01 MiB, temporaries 20.75 MiB at both: the buffer is never gathered). The 4
all-reduces (1.72 MiB in all) carry the 32 sampled transitions from the devices holding their
columns; the Q-network's update on them is then replicated (2.8 GFLOP per device at 1 and 4
devices): more devices hold a bigger buffer, not a faster update.
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys

COLLECTIVES = ("all-reduce", "all-gather", "reduce-scatter", "all-to-all", "collective-permute")
DTYPE_BYTES = {"f32": 4, "f16": 2, "bf16": 2, "f64": 8, "s32": 4, "u32": 4, "s64": 8, "u64": 8, "s8": 1,
               "u8": 1, "pred": 1, "s16": 2, "u16": 2}


def shape_bytes(text: str) -> int:
  """Bytes of an HLO result type such as `f32[3,3,32]{...}` or a tuple `(f32[10], s32[])`."""
  total = 0
  for dtype, dims in re.findall(r"\b([a-z]+\d*)\[([\d,]*)\]", text):
    if dtype in DTYPE_BYTES:
      n = 1
      for d in filter(None, dims.split(",")):
        n *= int(d)
      total += n * DTYPE_BYTES[dtype]
  return total


def collectives(hlo: str) -> dict:
  """{op: (count, result bytes)} over the optimized HLO module (async starts counted once)."""
  found = collections.defaultdict(lambda: [0, 0])
  for line in hlo.splitlines():
    m = re.match(r"\s*(?:ROOT )?%?[\w.\-]+ = (.+?) ([a-z\-]+)\(", line)
    if not m:
      continue
    result_type, op = m.groups()
    op = op.removesuffix("-start")
    if op in COLLECTIVES:
      found[op][0] += 1
      found[op][1] += shape_bytes(result_type.split("->")[-1] if op != "all-gather" else result_type)
  return {k: tuple(v) for k, v in found.items()}


def load_config(config_path: str, settings: list[str]):
  """configs/<name>.py[:variant] with `key=value` settings (dotted keys, values parsed like the CLI's)."""
  import ast
  import importlib.util
  path, _, variant = config_path.partition(":")
  spec = importlib.util.spec_from_file_location("benchmark_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(variant)
  for setting in settings:
    key, _, text = setting.partition("=")
    *parents, leaf = key.split(".")
    node = config
    for name in parents:
      node = node[name]
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    node[leaf] = value
  return config


def state_bytes(placement, abstract) -> dict:
  """Bytes of the train state per device: {'total': ..., <rule pattern>: ... for each rule}."""
  import jax
  import numpy as np
  from jaxai.core import sharding
  out = {"total": 0} | {pattern: 0 for pattern, _ in placement.rules}
  shardings = placement.state(abstract)
  for (key, leaf), s in zip(jax.tree_util.tree_flatten_with_path(abstract)[0], jax.tree.leaves(shardings)):
    size = int(np.prod(s.shard_shape(leaf.shape))) * np.dtype(leaf.dtype).itemsize
    out["total"] += size
    path = sharding.path_of(key)
    rule = next((pattern for pattern, _ in placement.rules if re.fullmatch(pattern, path)), None)
    if rule is not None:
      out[rule] += size
  return out


def measure(config_path: str, settings: list[str]) -> dict:
  """In this process (its fake device count already set): compile the config's train step, read costs."""
  import jax
  from jaxai import tasks
  from jaxai.core import sharding, trainer
  from jaxai.core.sources import DatasetSource

  config = load_config(config_path, settings)
  if os.environ.get("JAXAI_DATA_DIR") and "data_dir" in config:
    config.data_dir = os.environ["JAXAI_DATA_DIR"]
  trainer.check_config(config)
  task = tasks.make_task(config)
  placement = sharding.placement(config, task.sharding_rules)
  abstract = jax.eval_shape(task.init, jax.random.key(0))
  source = task.source
  if isinstance(source, DatasetSource):
    local = source.batch(0)
  else:  # collected rows: the shapes of one collection.
    _, local, _ = jax.eval_shape(source.collect, source.policy_of(abstract), source.init_carry(),
                                 jax.random.key(0))
  local = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), local)
  batch = placement.global_shapes(local, source.batch_axes)
  compiled = trainer.compile_train_step(task, placement, abstract, batch)
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  memory = compiled.memory_analysis()
  first, axis = jax.tree.leaves(batch)[0], jax.tree.leaves(sharding.axes_tree(source.batch_axes, local))[0]
  return {
      "devices": jax.device_count(),
      "params": sum(x.size for x in jax.tree.leaves(abstract.params)),
      "global_batch_rows": int(first.shape[axis]),
      "collectives": collectives(compiled.as_text()),
      "flops": float(cost.get("flops", 0.0)),
      "bytes_accessed": float(cost.get("bytes accessed", 0.0)),
      "memory": {k: int(getattr(memory, f"{k}_size_in_bytes")) for k in
                 ("argument", "output", "temp", "generated_code")},
      "state_bytes": state_bytes(placement, abstract),
  }


def measure_at(config: str, settings: list[str], devices: list[int], data_dir: str) -> list[dict]:
  """`measure` in a fresh process for each device count."""
  rows = []
  for n in devices:
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAXAI_DATA_DIR=os.path.abspath(data_dir),
               XLA_FLAGS=" ".join(flags + [f"--xla_force_host_platform_device_count={n}"]))
    out = subprocess.run([sys.executable, __file__, "--child", f"--config={config}",
                          *[f"--set={s}" for s in settings]], env=env, capture_output=True, text=True)
    if out.returncode:
      sys.exit(f"measuring {config} at {n} devices failed:\n{out.stderr[-3000:]}")
    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
  return rows


def report(config: str, settings: list[str], rows: list[dict]) -> None:
  mib = lambda b: f"{b / 2**20:8.2f}"
  where = config + (f" ({', '.join(settings)})" if settings else "")
  print(f"{where}: {rows[0]['params']:,} parameters, global batch {rows[0]['global_batch_rows']} rows")
  print(f"{'devices':>7} {'collectives (count x op: MiB of results)':<58} {'GFLOP/dev':>9} {'GB acc/dev':>10} "
        f"{'args MiB':>8} {'temp MiB':>8} {'out MiB':>8} {'state MiB':>9}")
  for r in rows:
    coll = ", ".join(f"{c}x {op}: {b / 2**20:.2f}" for op, (c, b) in sorted(r["collectives"].items())) or "none"
    m = r["memory"]
    print(f"{r['devices']:>7} {coll:<58} {r['flops'] / 1e9:9.3f} {r['bytes_accessed'] / 1e9:10.3f} "
          f"{mib(m['argument'])} {mib(m['temp'])} {mib(m['output'])} {mib(r['state_bytes']['total']):>9}")
  for rule in [k for k in rows[0]["state_bytes"] if k != "total"]:
    per_device = ", ".join(f"{mib(r['state_bytes'][rule]).strip()} at {r['devices']}" for r in rows)
    print(f"  state leaves of rule {rule!r}: MiB per device {per_device}")


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="", help="config[:variant]; default: mnist_cnn, then DQN's replay buffer")
  parser.add_argument("--set", action="append", default=[], help="key=value config setting (repeatable)")
  parser.add_argument("--devices", default="1,4,8")
  parser.add_argument("--dqn_devices", default="1,4", help="device counts of the DQN replay-buffer measurement")
  parser.add_argument("--data_dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                                         "data", "tfds"))
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(json.dumps(measure(args.config, args.set)))
    return
  devices = [int(n) for n in args.devices.split(",")]
  jobs = [(args.config, args.set, devices)] if args.config else [
      ("configs/mnist_cnn.py", args.set, devices),
      ("configs/atari_dqn.py", ["num_envs=4"], [int(n) for n in args.dqn_devices.split(",")])]
  for config, settings, counts in jobs:
    report(config, settings, measure_at(config, settings, counts, args.data_dir))
    print()
  print("Bytes are per step and per device; a ring all-reduce moves ~2 x bytes x (n-1)/n over each link.")


if __name__ == "__main__":
  main()
