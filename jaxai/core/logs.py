"""Console logging of the command-line tools: jaxai's own INFO lines, and warnings from everyone."""
import logging as std_logging
import os

from absl import logging


class _OnlyOwnInfo(std_logging.Filter):
  """Keeps INFO lines from jaxai itself and warnings from everyone (Orbax logs every save at INFO)."""

  def filter(self, record):
    return record.levelno >= std_logging.WARNING or f"{os.sep}jaxai{os.sep}" in record.pathname


def quiet_libraries():
  logging.get_absl_handler().addFilter(_OnlyOwnInfo())
