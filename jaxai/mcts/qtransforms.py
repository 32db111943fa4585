"""Q-value transforms: map one node's raw q-values to the scale its action selection expects.

Every transform has the signature `qtransform(tree, node_index) -> (A,)` on ONE game's tree (the search vmaps
over games); pass options with functools.partial. Unvisited actions have no q-value of their own; each
transform says what it fills in for them.
"""
import jax
import jax.numpy as jnp


def qtransform_by_parent_and_siblings(tree, node_index, *, epsilon: float = 1e-8) -> jax.Array:
  """Min-max normalisation to [0, 1] over the node's own value and its visited children's q-values
  (MuZero's normalisation, with the bounds taken locally instead of over the whole tree).

  Unvisited actions get 0, the pessimistic end of the range.
  """
  q = tree.qvalues(node_index)  # (A,)
  visited = tree.children_visits[node_index] > 0  # (A,)
  node_value = tree.node_values[node_index]  # ()
  # Unvisited actions must not widen the range: they stand in as the node's value.
  candidates = jnp.where(visited, q, node_value)
  low = jnp.minimum(node_value, jnp.min(candidates))
  high = jnp.maximum(node_value, jnp.max(candidates))
  q = jnp.where(visited, q, low)
  return (q - low) / jnp.maximum(high - low, epsilon)


def mixed_value(raw_value, q, visits, prior_probs) -> jax.Array:
  """v_mix (Gumbel MuZero, appendix D): the network value blended with the prior-weighted mean q-value of
  the visited actions, weighted by how many visits those q-values rest on. Shapes: (), (A,), (A,), (A,) -> ()."""
  total_visits = jnp.sum(visits)
  visited = visits > 0
  # A visited action with zero prior must not make the weights 0/0.
  prior_probs = jnp.maximum(prior_probs, jnp.finfo(prior_probs.dtype).tiny)
  visited_mass = jnp.sum(jnp.where(visited, prior_probs, 0.0))
  weighted_q = jnp.sum(jnp.where(visited, prior_probs * q / jnp.where(visited, visited_mass, 1.0), 0.0))
  return (raw_value + total_visits * weighted_q) / (total_visits + 1)


def qtransform_completed_by_mix_value(tree, node_index, *, value_scale: float = 0.1,
                                      maxvisit_init: float = 50.0, rescale_values: bool = True,
                                      use_mixed_value: bool = True, epsilon: float = 1e-8) -> jax.Array:
  """Completed q-values of Gumbel MuZero: unvisited actions get v_mix (or the raw network value), then the
  result is optionally min-max rescaled to [0, 1] and multiplied by sigma = (maxvisit_init + max visits) *
  value_scale, so the q-values weigh more against the logits as the search grows.
  """
  q = tree.qvalues(node_index)  # (A,)
  visits = tree.children_visits[node_index]  # (A,)
  raw_value = tree.raw_values[node_index]
  if use_mixed_value:
    prior_probs = jax.nn.softmax(tree.children_prior_logits[node_index])
    fill = mixed_value(raw_value, q, visits, prior_probs)
  else:
    fill = raw_value
  completed = jnp.where(visits > 0, q, fill)
  if rescale_values:
    low, high = jnp.min(completed), jnp.max(completed)
    completed = (completed - low) / jnp.maximum(high - low, epsilon)
  sigma_scale = (maxvisit_init + jnp.max(visits)) * value_scale
  return sigma_scale * completed
