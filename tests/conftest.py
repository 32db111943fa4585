import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # before anything imports jax.
# One persistent compilation cache for the session, shared with every CLI subprocess (they inherit the
# environment): the same tiny programs are compiled by many tests, and compiling is most of their time.
# Fresh for each session, so a run never depends on an earlier one.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", tempfile.mkdtemp(prefix="jaxai_tests_compile_cache_"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# Random bits from JAX's non-partitionable threefry (also in every subprocess and notebook kernel):
# the same generator, other bits, and on any sharding the same values, but XLA:CPU compiles it about
# 3x faster than the partitionable default (a tiny CNN's initialization: 2.1 s of CPU against 6.7 s),
# and compiling is most of a tiny test's time. Runs outside the tests keep JAX's default.
os.environ.setdefault("JAX_THREEFRY_PARTITIONABLE", "0")

import pytest

from tests.helpers import DATA_DIR


@pytest.fixture(scope="session")
def data_dir():
  """The prepared TFDS datasets (mnist, fashion_mnist); tests never download."""
  for name in ("mnist", "fashion_mnist"):
    if not (DATA_DIR / name).is_dir():
      pytest.fail(f"{name} not found in {DATA_DIR}: put the prepared TFDS datasets in ../shared/data/tfds "
                  "beside the checkout, or point $TFDS_DATA_DIR at them.")
  return DATA_DIR


def pytest_ignore_collect(collection_path, config):
  """tests/multidevice runs in its own 4-device process (tests/test_multidevice.py)."""
  if collection_path.name == "multidevice" and "device_count" not in os.environ.get("XLA_FLAGS", ""):
    return True
  return None
