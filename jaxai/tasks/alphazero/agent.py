"""Loading a trained AlphaZero run as a player: `load_agent(workdir)` rebuilds the run's rules and
network from `<workdir>/config.json` (jaxai.core.runs), restores its latest checkpoint and returns
an `Agent` that searches before every move."""
import ml_collections

from jaxai.core import runs
from jaxai.tasks.alphazero import task as task_lib
from jaxai.tasks.alphazero.player import Agent
from jaxai.tasks.alphazero.search import Searcher


def load_agent(workdir: str, num_simulations: int | None = None, policy: str | None = None,
               seed: int = 0, max_moves: int = 0) -> Agent:
  """The latest checkpoint of the AlphaZero run in `workdir` as a player.

  num_simulations: search simulations per move (default: the run's eval_simulations).
  policy: 'gumbel' or 'muzero' search (default: the run's).
  max_moves: game length the player's rules allow (default 2 * size^2, not the run's self-play cap,
    which short training configs set low; the network does not depend on it).
  """
  config = runs.load_config(workdir, "alphazero", defaults=task_lib.default_config())
  if policy is not None:
    config.search.policy = policy
  play_config = ml_collections.ConfigDict(config.to_dict())
  play_config.max_moves = max_moves
  go = task_lib.make_game(play_config)
  searcher = Searcher(go, task_lib.make_model(config, go), config.search)
  # Building the task is cheap (no self-play, compilation or GNU Go): it gives the state's layout.
  state, _ = runs.restore_latest_state(workdir, task_lib.make_task(config, runs.load_facts(workdir)))
  agent = Agent(go, searcher, state.params, num_simulations or config.eval_simulations, seed)
  agent.config = config
  return agent
