"""The machine's peak matmul throughput, measured once per process, for model FLOPs utilization (MFU).

MFU = (model FLOPs per step x steps per second) / peak. The peak is not a datasheet figure: it is the
best of a few timed square matmuls (n=2048 float32 on CPU, n=8192 bfloat16 on accelerators, the
compute dtypes of mixed precision there), which is what a well-shaped training step could reach here.
On CPU every device of a process shares the same cores, so the run's peak is one measurement per
process; on accelerators it is one device's measurement times the number of devices.
"""
import functools
import time

import jax
import jax.numpy as jnp
from absl import logging


@functools.lru_cache(maxsize=None)
def matmul_flops_per_sec(n: int, dtype: str, repeats: int = 5) -> float:
  """Best FLOP/s of an (n, n) @ (n, n) matmul in `dtype` on the first local device (2 n^3 FLOPs)."""
  device = jax.local_devices()[0]
  a = jax.device_put(jax.random.normal(jax.random.key(0), (n, n), dtype), device)
  b = jax.device_put(jax.random.normal(jax.random.key(1), (n, n), dtype), device)
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()  # compile and warm up.
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  logging.info("Peak of a %dx%d %s matmul on %s: %.1f GFLOP/s", n, n, dtype, device, 2.0 * n ** 3 / best / 1e9)
  return 2.0 * n ** 3 / best


def peak_flops_per_sec() -> float:
  """Peak FLOP/s of all devices of the run (see the module docstring); measured on first call, then cached."""
  if jax.default_backend() == "cpu":
    return matmul_flops_per_sec(2048, "float32") * jax.process_count()
  return matmul_flops_per_sec(8192, "bfloat16") * jax.device_count()
