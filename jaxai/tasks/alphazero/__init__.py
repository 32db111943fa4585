"""AlphaZero for Go: self-play with tree search and a residual network, all in JAX.

  python -m jaxai.main --config=configs/go9_alphazero.py --workdir=/tmp/go9
  agent = load_agent("/tmp/go9"); agent.select_action(state)   # for GTP / matches
"""
from jaxai.tasks.alphazero.agent import Agent, load_agent
from jaxai.tasks.alphazero.task import default_config, make_task

__all__ = ["Agent", "default_config", "load_agent", "make_task"]
