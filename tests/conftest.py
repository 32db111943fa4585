import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # before anything imports jax.

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
