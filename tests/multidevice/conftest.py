"""Tests that need several devices in one process. tests/test_multidevice.py runs this folder in one
subprocess with 4 fake CPU devices; the main test process (1 device) does not collect it."""
import jax
import pytest


@pytest.fixture(autouse=True)
def four_devices():
  if jax.device_count() != 4:
    pytest.fail(f"tests/multidevice needs 4 devices, found {jax.device_count()}: run it through "
                "tests/test_multidevice.py (XLA_FLAGS=--xla_force_host_platform_device_count=4).")
