"""The AlphaZero player for GTP and matches: a search over the network before every move."""
import jax
import jax.numpy as jnp
import numpy as np

from jaxai.core import sharding
from jaxai.go import rules
from jaxai.tasks.alphazero.search import Searcher


class Agent:
  """Search player: `select_action(state) -> int`, always a legal action of `state`. Deterministic,
  except that positions with fewer than `explore_moves` moves played get the self-play noise (so
  that games against another deterministic player, like GNU Go, differ). `params` may be replaced
  between moves (the search is compiled once, on this process's first device)."""

  def __init__(self, go: rules.Go, searcher: Searcher, params, num_simulations: int, seed: int = 0,
               explore_moves: int = 0):
    self.go, self.params, self.num_simulations = go, params, num_simulations
    self.searcher = searcher
    self._rng = jax.random.key(seed)
    self._moves = 0

    def choose(params, rng, state):
      batch = jax.tree.map(lambda x: jnp.asarray(x)[None], state)  # one game: (1, ...)
      out = searcher(params, rng, batch, num_simulations, explore=batch.num_moves[0] < explore_moves)
      return out.action[0], jax.vmap(go.legal_actions)(batch)[0]

    self._choose = sharding.on_local_device(choose)

  def select_action(self, state: rules.State) -> int:
    self._moves += 1
    action, legal = jax.device_get(self._choose(self.params, jax.random.fold_in(self._rng, self._moves), state))
    action = int(action)
    if not legal[action]:  # only if the search had no legal move to offer (a finished game).
      legal_moves = np.flatnonzero(legal)
      action = int(legal_moves[-1]) if legal_moves.size else self.go.pass_action
    return action
