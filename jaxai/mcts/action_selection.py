"""Scores that rank the actions at one node of ONE game's tree; the walk takes their argmax.

Signature of every rule: `scores(tree, node_index, depth) -> (A,)` with -inf for actions that must not be
taken; depth = edges from the root (0 at the root). The search vmaps the rules over the games.
"""
import jax
import jax.numpy as jnp

from jaxai.mcts import qtransforms as qtransforms_lib
from jaxai.mcts import seq_halving


def masked_argmax(scores, invalid) -> jax.Array:
  """Index of the best score among the valid entries (entry 0 if all are invalid). (..., A) -> (...)."""
  return jnp.argmax(jnp.where(invalid, -jnp.inf, scores), axis=-1).astype(jnp.int32)


def puct_scores(tree, node_index, depth, *, pb_c_init: float = 1.25, pb_c_base: float = 19652.0,
                qtransform=qtransforms_lib.qtransform_by_parent_and_siblings) -> jax.Array:
  """AlphaZero / MuZero PUCT: q(a) + c(N) * P(a) * sqrt(N) / (1 + n(a)).

  N = node visits, n(a) = edge visits, c(N) = pb_c_init + log((N + pb_c_base + 1) / pb_c_base) (MuZero,
  appendix B); q comes from `qtransform` (in [0, 1] by default). Illegal root actions score -inf; below the
  root the model is trusted to give illegal moves negligible prior. Exact ties are left to the walk's
  tie-break jitter.
  """
  visits = tree.children_visits[node_index]  # (A,)
  node_visits = tree.node_visits[node_index]  # ()
  pb_c = pb_c_init + jnp.log((node_visits + pb_c_base + 1.0) / pb_c_base)
  prior = jax.nn.softmax(tree.children_prior_logits[node_index])  # (A,)
  exploration = jnp.sqrt(node_visits) * pb_c * prior / (visits + 1)
  scores = qtransform(tree, node_index) + exploration
  return jnp.where(jnp.logical_and(tree.root_invalid_actions, depth == 0), -jnp.inf, scores)


def gumbel_root_scores(tree, node_index, depth, *, num_simulations: int, max_num_considered_actions: int,
                       qtransform=qtransforms_lib.qtransform_completed_by_mix_value) -> jax.Array:
  """Gumbel MuZero at the root: Sequential Halving with Gumbel over the top-m of gumbel + logits.

  The schedule says which visit count the next simulation goes to; among the actions with that count, the
  one with the highest gumbel + logits + sigma(completed q) is visited. m is capped by the number of legal
  actions. Deterministic given the Gumbel noise stored in tree.extra_data.root_gumbel.
  """
  del depth
  visits = tree.children_visits[node_index]  # (A,)
  table = jnp.asarray(seq_halving.considered_visit_table(max_num_considered_actions, num_simulations))
  num_legal = jnp.sum(jnp.logical_not(tree.root_invalid_actions)).astype(jnp.int32)
  num_considered = jnp.minimum(max_num_considered_actions, num_legal)
  simulation_index = jnp.sum(visits)  # at the root, one visit per finished simulation
  considered_visit = table[num_considered, simulation_index]
  scores = seq_halving.score_considered(considered_visit, tree.extra_data.root_gumbel,
                                        tree.children_prior_logits[node_index],
                                        qtransform(tree, node_index), visits)
  return jnp.where(tree.root_invalid_actions, -jnp.inf, scores)


def gumbel_interior_scores(tree, node_index, depth, *,
                           qtransform=qtransforms_lib.qtransform_completed_by_mix_value) -> jax.Array:
  """Gumbel MuZero below the root: deterministic selection whose visit frequencies track the improved
  policy pi' = softmax(logits + completed q) (section 5 of the paper): pi'(a) - n(a) / (1 + sum n)."""
  del depth
  visits = tree.children_visits[node_index]  # (A,)
  improved = jax.nn.softmax(tree.children_prior_logits[node_index] + qtransform(tree, node_index))
  return improved - visits / (1 + jnp.sum(visits))
