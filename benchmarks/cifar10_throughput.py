"""Training throughput of configs/cifar10_resnet.py (ResNet-18, CIFAR variant) on this machine.

  python benchmarks/cifar10_throughput.py                   # batch 128, ~30 s on 2 CPU cores
  python benchmarks/cifar10_throughput.py --batch_size=512  # the config's batch, ~2 min on 2 CPU cores

Measured: examples/s of the jitted train step exactly as the trainer runs it (the executable from
`jaxai.core.trainer.compile_train_step`: augmentation with random crop and flip, label smoothing, forward,
backward, SGD+Nesterov with weight decay, BatchNorm statistics), on synthetic 32x32x3 uint8 batches
(`synthetic:32x32x3:10`, CIFAR-10's shape; no CIFAR-10 files needed) of 128 examples by default:
the config's 512 takes ~20 s per step on 2 CPU cores, and is no faster per example there. Batches are placed on the device beforehand, so host input costs
are not included (benchmarks/trainer_overhead.py measures those). After --warmup steps, --steps steps
are timed, blocking on the result at the end. The FLOPs per example come from XLA's cost analysis of
the compiled step.

Reference (the config's docstring, not measured here): on one A100/H100 the full recipe takes about
30 s per epoch at batch 512, i.e. ~1,700 examples/s end to end (50,000 images / 30 s), and reaches
~95% test accuracy in 40 epochs (~20 min). On 2 CPU cores expect ~60 examples/s, so one epoch
takes ~15 min and the 40-epoch recipe ~10 hours: CIFAR-10 training is for accelerators.
"""
import argparse
import importlib.util
import os
import sys
import time

import jax
from absl import logging

from jaxai import tasks
from jaxai.core import sharding, trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPU_EXAMPLES_PER_SEC = 50_000 / 30  # the config docstring's ~30 s per epoch on one A100/H100.


def load_config(path: str):
  spec = importlib.util.spec_from_file_location("bench_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", default=os.path.join(REPO, "configs", "cifar10_resnet.py"))
  parser.add_argument("--batch_size", type=int, default=128, help="global batch (0: the config's, 512)")
  parser.add_argument("--steps", type=int, default=4, help="timed steps")
  parser.add_argument("--warmup", type=int, default=1, help="untimed steps after compilation")
  args = parser.parse_args()
  logging.set_verbosity(logging.WARNING)

  config = load_config(args.config)
  config.batch_size = args.batch_size or config.batch_size
  config.dataset = "synthetic:32x32x3:10"
  config.max_train_examples = config.batch_size * (args.warmup + args.steps)
  config.max_eval_examples = config.eval_batch_size
  config.num_train_steps = 1000  # only sets the learning-rate schedule's length; steps run here: warmup + steps.
  task = tasks.make_task(config)
  placement = sharding.placement(config, task.sharding_rules)
  init_rng, train_rng = jax.random.split(jax.random.key(config.seed))
  abstract = jax.eval_shape(task.init, init_rng)
  params = sum(x.size for x in jax.tree.leaves(abstract.params))
  print(f"{os.path.relpath(args.config, REPO)}: {config.model['name']} stages {tuple(config.model['stage_sizes'])} "
        f"width {config.model['width']}, {params / 1e6:.1f}M params, synthetic 32x32x3 batches of "
        f"{config.batch_size}, {jax.device_count()} {jax.default_backend()} device(s)", flush=True)

  task.source.open(placement, None)
  batches = [task.source.rows(s, None)[0] for s in range(args.warmup + args.steps)]
  start = time.perf_counter()
  train = trainer.compile_train_step(task, placement, abstract, batches[0])
  compile_s = time.perf_counter() - start
  cost = train.cost_analysis()
  flops = (cost[0] if isinstance(cost, (list, tuple)) else cost or {}).get("flops", float("nan"))
  state = jax.jit(task.init, out_shardings=placement.state(abstract))(init_rng)
  for batch in batches[:args.warmup]:
    state, _ = train(state, batch, train_rng)
  jax.block_until_ready(state)
  start = time.perf_counter()
  for batch in batches[args.warmup:]:
    state, metrics = train(state, batch, train_rng)
  jax.block_until_ready(state)
  seconds = (time.perf_counter() - start) / args.steps
  rate = config.batch_size / seconds

  print(f"  compile              {compile_s:8.1f} s")
  print(f"  step time            {seconds * 1e3:8.1f} ms  (mean of {args.steps} steps after {args.warmup} warmup)")
  print(f"  throughput           {rate:8.1f} examples/s  ({flops / config.batch_size / 1e9:.2f} GFLOP per example, "
        f"{flops / seconds / 1e9:.0f} GFLOP/s)")
  print(f"  one epoch (50,000)   {50_000 / rate / 60:8.1f} min here; ~{50_000 / GPU_EXAMPLES_PER_SEC:.0f} s on one "
        f"A100/H100 per the config (~{GPU_EXAMPLES_PER_SEC:.0f} examples/s)")
  print(f"  loss after the run   {float(metrics['loss']):8.3f}")
  print(f"SUMMARY cifar10_throughput batch {config.batch_size} on {jax.default_backend()}: {rate:.1f} examples/s, "
        f"{seconds * 1e3:.0f} ms/step; expected GPU ~{GPU_EXAMPLES_PER_SEC:.0f} examples/s "
        f"({GPU_EXAMPLES_PER_SEC / rate:.0f}x)")


if __name__ == "__main__":
  sys.exit(main())
