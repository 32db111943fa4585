"""The search tree: fixed-size arrays for B games, N = num_simulations + 1 nodes each, A actions per node.

Node 0 is the root; the node first created by simulation i (0-based) gets index i + 1, so the arrays never
grow. An edge (node, action) that has not been expanded yet has children_index == UNVISITED.
"""
from typing import Any, ClassVar

import flax
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class Tree:
  node_visits: jax.Array  # (B, N) int32 visits of each node (its evaluation counts as one)
  raw_values: jax.Array  # (B, N) network value of each node when it was evaluated
  node_values: jax.Array  # (B, N) running mean of the values backed up through each node
  parents: jax.Array  # (B, N) int32 parent node index (NO_PARENT for the root and unused nodes)
  action_from_parent: jax.Array  # (B, N) int32 action leading from the parent (NO_PARENT if none)
  children_index: jax.Array  # (B, N, A) int32 child node index per action (UNVISITED if not expanded)
  children_prior_logits: jax.Array  # (B, N, A) prior logits at each node
  children_visits: jax.Array  # (B, N, A) int32 visits of each edge
  children_rewards: jax.Array  # (B, N, A) reward of each edge
  children_discounts: jax.Array  # (B, N, A) discount of each edge
  children_values: jax.Array  # (B, N, A) node_values of the child reached by each edge
  embeddings: Any  # pytree, leaves (B, N, ...) embedding of each node
  root_invalid_actions: jax.Array  # (B, A) bool, True where the action is illegal at the root
  extra_data: Any  # pytree, leaves (B, ...) policy-specific data (e.g. the root Gumbel noise)

  ROOT_INDEX: ClassVar[int] = 0
  NO_PARENT: ClassVar[int] = -1
  UNVISITED: ClassVar[int] = -1

  @property
  def num_actions(self) -> int:
    return self.children_index.shape[-1]

  @property
  def num_simulations(self) -> int:
    return self.node_visits.shape[-1] - 1

  def qvalues(self, node_index) -> jax.Array:
    """q(node, a) = reward + discount * value(child) for every action: (A,) on one game's tree, or
    (B, A) on a batched tree with node_index (B,)."""
    if self.node_visits.ndim == 1:  # one game's tree (inside a vmap)
      return (self.children_rewards[node_index]
              + self.children_discounts[node_index] * self.children_values[node_index])
    batch = jnp.arange(self.node_visits.shape[0])
    return (self.children_rewards[batch, node_index]
            + self.children_discounts[batch, node_index] * self.children_values[batch, node_index])

  def root_visit_counts(self) -> jax.Array:
    """(B, A) visits of each root action, as floats."""
    return self.children_visits[:, self.ROOT_INDEX].astype(self.node_values.dtype)

  def root_visit_probs(self) -> jax.Array:
    """(B, A) root visit counts normalised to sum to 1 (uniform when the root has no visited child)."""
    counts = self.root_visit_counts()
    total = jnp.sum(counts, axis=-1, keepdims=True)  # (B, 1)
    return jnp.where(total > 0, counts / jnp.maximum(total, 1), 1 / self.num_actions)

  def root_value(self) -> jax.Array:
    """(B,) search value of the root (mean of all backed-up values)."""
    return self.node_values[:, self.ROOT_INDEX]

  def root_qvalues(self) -> jax.Array:
    """(B, A) q-values of the root actions (0 + discount * 0 for unvisited ones)."""
    return self.qvalues(jnp.full(self.node_visits.shape[:1], self.ROOT_INDEX))

  def summary(self) -> "SearchSummary":
    """The root statistics in one container (the same fields as mctx's Tree.summary())."""
    return SearchSummary(visit_counts=self.root_visit_counts(), visit_probs=self.root_visit_probs(),
                         value=self.root_value(), qvalues=self.root_qvalues())


@flax.struct.dataclass
class SearchSummary:
  """Root statistics of a finished search (Tree.summary())."""
  visit_counts: jax.Array  # (B, A) root action visits, as floats
  visit_probs: jax.Array  # (B, A) visit counts normalised to sum to 1
  value: jax.Array  # (B,) search value of the root
  qvalues: jax.Array  # (B, A) q-values of the root actions


def init_tree(root, num_simulations: int, invalid_actions: jax.Array, extra_data: Any = None) -> Tree:
  """An empty tree with the root evaluated (one visit, its network value and priors)."""
  batch_size, num_actions = root.prior_logits.shape
  nodes = (batch_size, num_simulations + 1)
  edges = nodes + (num_actions,)
  dtype = root.value.dtype

  def node_storage(leaf):  # (B, ...) -> (B, N, ...) with the root filled in
    storage = jnp.zeros(nodes + leaf.shape[1:], leaf.dtype)
    return storage.at[:, Tree.ROOT_INDEX].set(leaf)

  return Tree(
      node_visits=jnp.zeros(nodes, jnp.int32).at[:, Tree.ROOT_INDEX].set(1),
      raw_values=node_storage(root.value),
      node_values=node_storage(root.value),
      parents=jnp.full(nodes, Tree.NO_PARENT, jnp.int32),
      action_from_parent=jnp.full(nodes, Tree.NO_PARENT, jnp.int32),
      children_index=jnp.full(edges, Tree.UNVISITED, jnp.int32),
      children_prior_logits=node_storage(root.prior_logits),
      children_visits=jnp.zeros(edges, jnp.int32),
      children_rewards=jnp.zeros(edges, dtype),
      children_discounts=jnp.zeros(edges, dtype),
      children_values=jnp.zeros(edges, dtype),
      embeddings=jax.tree.map(node_storage, root.embedding),
      root_invalid_actions=invalid_actions,
      extra_data=extra_data)
