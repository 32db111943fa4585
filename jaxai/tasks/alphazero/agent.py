"""A trained AlphaZero player for GTP and matches: `load_agent(workdir)` rebuilds the run's rules and
network from `<workdir>/config.json`, restores its latest checkpoint and searches before every move."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxai.core import runs
from jaxai.go import rules
from jaxai.tasks.alphazero.search import Searcher


class Agent:
  """Search player: `select_action(state) -> int`, always a legal action of `state`. Deterministic,
  except that positions with fewer than `explore_moves` moves played get the self-play noise (so
  that games against another deterministic player, like GNU Go, differ)."""

  def __init__(self, go: rules.Go, searcher: Searcher, params, num_simulations: int, seed: int = 0,
               explore_moves: int = 0):
    self.go, self.params, self.num_simulations = go, params, num_simulations
    self.searcher = searcher
    self._rng = jax.random.key(seed)
    self._moves = 0

    @jax.jit
    def choose(params, rng, state):
      batch = jax.tree.map(lambda x: jnp.asarray(x)[None], state)  # one game: (1, ...)
      out = searcher(params, rng, batch, num_simulations, explore=batch.num_moves[0] < explore_moves)
      return out.action[0], jax.vmap(go.legal_actions)(batch)[0]

    self._choose = choose

  def select_action(self, state: rules.State) -> int:
    self._moves += 1
    action, legal = jax.device_get(self._choose(self.params, jax.random.fold_in(self._rng, self._moves), state))
    action = int(action)
    if not legal[action]:  # only if the search had no legal move to offer (a finished game).
      legal_moves = np.flatnonzero(legal)
      action = int(legal_moves[-1]) if legal_moves.size else self.go.pass_action
    return action


def load_agent(workdir: str, num_simulations: int | None = None, policy: str | None = None,
               seed: int = 0, max_moves: int = 0) -> Agent:
  """The latest checkpoint of the AlphaZero run in `workdir` as a player.

  num_simulations: search simulations per move (default: the run's eval_simulations).
  policy: 'gumbel' or 'muzero' search (default: the run's).
  max_moves: game length the player's rules allow (default 2 * size^2, not the run's self-play cap,
    which short training configs set low; the network does not depend on it).
  """
  from jaxai.tasks.alphazero import task as task_lib
  config = runs.load_config(workdir, "alphazero", defaults=task_lib.default_config())
  if policy is not None:
    config.search.policy = policy
  play_config = ml_collections.ConfigDict(config.to_dict())
  play_config.max_moves = max_moves
  go = task_lib.make_game(play_config)
  model = task_lib.make_model(config, go)
  searcher = Searcher(go, model, config.search)
  state, _ = runs.restore_latest_state(workdir, task_lib.make_task(_without_gnugo(config)))
  params = jax.device_put(state.params, jax.local_devices()[0])
  agent = Agent(go, searcher, params, num_simulations or config.eval_simulations, seed)
  agent.config = config
  return agent


def _without_gnugo(config):
  config = ml_collections.ConfigDict(config.to_dict())
  config.eval_gnugo_games = 0  # the agent needs the state's layout only, no evaluation opponents.
  return config
