"""Evaluation games against GNU Go over GTP (placeholder until the match runner is wired in)."""
from absl import logging

from jaxai.go import gnugo


class GnuGoEvaluation:
  def __init__(self, config, go, searcher):
    self.config, self.go, self.searcher = config, go, searcher
    self.available = gnugo.available()
    if not self.available:
      logging.warning("GNU Go not found: eval/win_rate_vs_gnugo is omitted. Install it with "
                      "`apt-get install gnugo`, or set --config.eval_gnugo_games=0.")

  def __call__(self, params, step: int) -> dict:
    return {}
