"""Evaluation games against GNU Go, over GTP with the project's match runner (`jaxai.go.match`).

GNU Go is deterministic, so the agent samples its moves in the first `eval_explore_moves` plies of
each game (self-play noise), and searches deterministically after. The agent plays in this process
(a `gtp.Engine` behind a `LocalClient`), GNU Go in a subprocess; the match's referee applies the same
rules as training (Tromp-Taylor, positional superko) and the same move limit. Without a GNU Go binary
a warning is logged once and the metric is omitted. Nothing is looked up, compiled or started before
the first evaluation, so building the task stays cheap.
"""
from absl import logging

from jaxai.core.evaluators import HostEvaluator
from jaxai.go import gnugo, gtp, match
from jaxai.tasks.alphazero.player import Agent


class GnuGoEvaluation:
  """`evaluation(params, step) -> {'eval/win_rate_vs_gnugo': ...}` over `eval_gnugo_games` games."""

  def __init__(self, config, go, searcher, level: int | None = None, games: int | None = None):
    self.go, self.komi = go, config.komi
    self.level = config.gnugo_level if level is None else level
    self.games = config.eval_gnugo_games if games is None else games
    self.agent = None
    self._make_agent = lambda params: Agent(go, searcher, params, config.eval_simulations, config.seed,
                                            explore_moves=config.eval_explore_moves)
    self._available = None  # looked up at the first evaluation.

  @property
  def available(self) -> bool:
    if self._available is None:
      self._available = gnugo.available()
      if not self._available:
        logging.warning("GNU Go not found, so eval/win_rate_vs_gnugo is left out: install it with "
                        "`apt-get install gnugo`, or set --config.eval_gnugo_games=0.")
    return self._available

  def play(self, params, log=logging.info) -> "match.MatchResult":
    if self.agent is None:
      self.agent = self._make_agent(params)  # compiled once, reused with new parameters.
    self.agent.params = params
    ours = match.LocalClient(gtp.Engine(gtp.fixed_player(self.agent), self.go.size, self.komi), "jaxai")
    theirs = match.GTPClient(gnugo.command(level=self.level, komi=self.komi, size=self.go.size),
                             f"gnugo-level{self.level}")
    try:
      return match.run_match(ours, theirs, self.games, size=self.go.size, komi=self.komi,
                             max_moves=self.go.max_moves, log=log)
    finally:
      theirs.close()

  def __call__(self, params, step: int) -> dict:
    if self.games == 0 or not self.available:
      return {}
    result = self.play(params, log=lambda line: logging.info("step %d vs GNU Go: %s", step, line))
    return {"eval/win_rate_vs_gnugo": result.win_rate, "eval/gnugo_games": float(result.games)}


def make_evaluator(config, go, searcher) -> HostEvaluator:
  """Host-side games on process 0 (where metrics are written), with its copy of the parameters."""
  evaluation = GnuGoEvaluation(config, go, searcher)
  return HostEvaluator(lambda state, step: evaluation(state.params, step))
