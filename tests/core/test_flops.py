"""The machine's peak FLOP/s for MFU: measured once per process, a plausible CPU figure."""
from jaxai.core import flops


def test_peak_is_measured_once_and_plausible():
  flops.matmul_flops_per_sec.cache_clear()
  first = flops.peak_flops_per_sec()
  assert flops.peak_flops_per_sec() == first
  assert flops.matmul_flops_per_sec.cache_info().misses == 1
  assert 1e8 < first < 1e13  # 0.1 GFLOP/s .. 10 TFLOP/s: any CPU this runs on.
