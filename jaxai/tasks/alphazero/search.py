"""The network-guided tree search over Go positions: root and recurrent functions for `jaxai.mcts`.

The search embedding is (positions, their legal moves). Values follow the two-player convention of
`jaxai.mcts`: every value is from the perspective of the player to move at its node, rewards go to
the player who moved, discount is -1 between plies and 0 once the game is over.
"""
import jax
import jax.numpy as jnp
import ml_collections

from jaxai import mcts
from jaxai.errors import UserError
from jaxai.go import rules
from jaxai.models.go import masked_logits

POLICIES = ("gumbel", "muzero")


def search_config() -> ml_collections.ConfigDict:
  """Search settings, shared by self-play, evaluation and play (each may override the number)."""
  return ml_collections.ConfigDict(dict(
      policy="gumbel",               # 'gumbel' (Gumbel MuZero, Danihelka et al. 2022) or 'muzero' (PUCT).
      num_simulations=16,            # network evaluations per move in self-play.
      max_num_considered_actions=16,  # gumbel: root actions kept by sequential halving.
      dirichlet_fraction=0.25,       # muzero: root prior noise weight in self-play (0 in play).
      dirichlet_alpha=0.3,           # muzero: Dirichlet concentration of the root noise.
      temperature_moves=10,          # muzero: moves per game sampled from the visit counts, then greedy.
  ))


class Searcher:
  """Runs the search for a batch of positions with a given network and rules."""

  def __init__(self, go: rules.Go, model, cfg: ml_collections.ConfigDict):
    if cfg.policy not in POLICIES:
      raise UserError(f"config.search.policy={cfg.policy!r} is unknown; use one of {POLICIES}.")
    self.go, self.model, self.cfg = go, model, cfg

  def evaluate(self, params, states: rules.State):
    """Network outputs for positions (B, ...): masked logits (B, A), value (B,), legal (B, A)."""
    legal = jax.vmap(self.go.legal_actions)(states)
    logits, value = self.model.apply({"params": params}, jax.vmap(self.go.features)(states))
    return masked_logits(logits, legal), value, legal

  def recurrent_fn(self, params, rng, action, embedding):
    del rng
    states, legal = embedding
    mover = states.to_play.astype(jnp.float32)
    # The search should only follow legal moves (their priors are masked); should a zero-prior
    # illegal move still be tried, it is treated as a lost game for its player and the position
    # is kept, so the engine never sees an illegal move.
    illegal = ~jnp.take_along_axis(legal, action[:, None], 1)[:, 0] & ~states.terminated
    safe_action = jnp.where(illegal, self.go.pass_action, action)
    stepped = jax.vmap(self.go.step)(states, safe_action)
    nxt = jax.tree.map(lambda old, new: jnp.where(
        illegal.reshape((-1,) + (1,) * (new.ndim - 1)), old, new), states, stepped)
    logits, value, next_legal = self.evaluate(params, nxt)
    ended = nxt.terminated & ~states.terminated
    outcome = jax.vmap(self.go.winner)(nxt).astype(jnp.float32) * mover  # to the player who moved.
    reward = jnp.where(illegal, -1.0, jnp.where(ended, outcome, 0.0))
    over = nxt.terminated | illegal
    discount = jnp.where(over, 0.0, -1.0)
    value = jnp.where(over, 0.0, value)
    return mcts.RecurrentFnOutput(reward=reward, discount=discount, prior_logits=logits,
                                  value=value), (nxt, next_legal)

  def __call__(self, params, rng, states: rules.State, num_simulations: int, explore) -> mcts.PolicyOutput:
    """Searches from `states` (B, ...). `explore` (a bool, traced or not): self-play noise (Gumbel
    sampling, or Dirichlet noise and visit-count sampling for the first `temperature_moves` moves);
    without it the search is deterministic and `action` is the move to play."""
    cfg = self.cfg
    explore = jnp.asarray(explore, jnp.float32)
    logits, value, legal = self.evaluate(params, states)
    root = mcts.RootFnOutput(prior_logits=logits, value=value, embedding=(states, legal))
    if cfg.policy == "gumbel":
      return mcts.gumbel_muzero_policy(
          params, rng, root, self.recurrent_fn, num_simulations, invalid_actions=~legal,
          max_num_considered_actions=cfg.max_num_considered_actions, gumbel_scale=explore)
    temperature = explore * (states.num_moves < cfg.temperature_moves)  # (B,); 0 = most visited.
    return mcts.muzero_policy(
        params, rng, root, self.recurrent_fn, num_simulations, invalid_actions=~legal,
        dirichlet_fraction=cfg.dirichlet_fraction * explore, dirichlet_alpha=cfg.dirichlet_alpha,
        temperature=temperature)
