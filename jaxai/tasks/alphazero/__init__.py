"""AlphaZero for Go: self-play with tree search and a residual network, all in JAX.

  python -m jaxai.main --config=configs/go9_alphazero.py --workdir=/tmp/go9
  python -m jaxai.gtp --workdir=/tmp/go9                       # serve it over GTP
  agent = load_agent("/tmp/go9"); agent.select_action(state)   # for matches

Modules: task (config, train step, Task), selfplay (collection), search (the tree search), arena
(JAX matches: the evaluator), gnugo_eval (games against GNU Go: the host evaluator), player (the
search player), agent (loading a run as a player). The replay window is jaxai.ops.replay.Window.
"""
from jaxai.tasks.alphazero.agent import load_agent
from jaxai.tasks.alphazero.player import Agent
from jaxai.tasks.alphazero.task import default_config, make_task

__all__ = ["Agent", "default_config", "load_agent", "make_task"]
