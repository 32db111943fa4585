"""Rules that pick the action to follow at one node of ONE game's tree (the search vmaps them over games).

Signature of every rule: `select(rng, tree, node_index, depth) -> () int32`, depth = edges from the root.
"""
import jax
import jax.numpy as jnp

from jaxai.mcts import qtransforms as qtransforms_lib
from jaxai.mcts import seq_halving

# Size of the random jitter that breaks exact ties in PUCT: far below any meaningful score difference.
_TIE_BREAK_SCALE = 1e-7


def masked_argmax(scores, invalid) -> jax.Array:
  """Index of the best score among the valid entries (entry 0 if all are invalid). (..., A) -> (...)."""
  return jnp.argmax(jnp.where(invalid, -jnp.inf, scores), axis=-1).astype(jnp.int32)


def puct(rng, tree, node_index, depth, *, pb_c_init: float = 1.25, pb_c_base: float = 19652.0,
         qtransform=qtransforms_lib.qtransform_by_parent_and_siblings) -> jax.Array:
  """AlphaZero / MuZero PUCT: argmax_a q(a) + c(N) * P(a) * sqrt(N) / (1 + n(a)).

  N = node visits, n(a) = edge visits, c(N) = pb_c_init + log((N + pb_c_base + 1) / pb_c_base) (MuZero,
  appendix B); q comes from `qtransform` (in [0, 1] by default). Illegal root actions are never chosen; below
  the root the model is trusted to give illegal moves negligible prior.
  """
  visits = tree.children_visits[node_index]  # (A,)
  node_visits = tree.node_visits[node_index]  # ()
  pb_c = pb_c_init + jnp.log((node_visits + pb_c_base + 1.0) / pb_c_base)
  prior = jax.nn.softmax(tree.children_prior_logits[node_index])  # (A,)
  exploration = jnp.sqrt(node_visits) * pb_c * prior / (visits + 1)
  tie_break = _TIE_BREAK_SCALE * jax.random.uniform(rng, visits.shape)
  scores = qtransform(tree, node_index) + exploration + tie_break
  return masked_argmax(scores, jnp.logical_and(tree.root_invalid_actions, depth == 0))


def gumbel_root(rng, tree, node_index, depth, *, num_simulations: int, max_num_considered_actions: int,
                qtransform=qtransforms_lib.qtransform_completed_by_mix_value) -> jax.Array:
  """Gumbel MuZero at the root: Sequential Halving with Gumbel over the top-m of gumbel + logits.

  The schedule says which visit count the next simulation goes to; among the actions with that count, the
  one with the highest gumbel + logits + sigma(completed q) is visited. m is capped by the number of legal
  actions. Deterministic given the Gumbel noise stored in tree.extra_data.root_gumbel.
  """
  del rng, depth
  visits = tree.children_visits[node_index]  # (A,)
  table = jnp.asarray(seq_halving.considered_visit_table(max_num_considered_actions, num_simulations))
  num_legal = jnp.sum(jnp.logical_not(tree.root_invalid_actions)).astype(jnp.int32)
  num_considered = jnp.minimum(max_num_considered_actions, num_legal)
  simulation_index = jnp.sum(visits)  # at the root, one visit per finished simulation
  considered_visit = table[num_considered, simulation_index]
  scores = seq_halving.score_considered(considered_visit, tree.extra_data.root_gumbel,
                                        tree.children_prior_logits[node_index],
                                        qtransform(tree, node_index), visits)
  return masked_argmax(scores, tree.root_invalid_actions)


def gumbel_interior(rng, tree, node_index, depth, *,
                    qtransform=qtransforms_lib.qtransform_completed_by_mix_value) -> jax.Array:
  """Gumbel MuZero below the root: deterministic selection whose visit frequencies track the improved
  policy pi' = softmax(logits + completed q) (section 5 of the paper): argmax pi'(a) - n(a) / (1 + sum n)."""
  del rng, depth
  visits = tree.children_visits[node_index]  # (A,)
  improved = jax.nn.softmax(tree.children_prior_logits[node_index] + qtransform(tree, node_index))
  return jnp.argmax(improved - visits / (1 + jnp.sum(visits)), axis=-1).astype(jnp.int32)
