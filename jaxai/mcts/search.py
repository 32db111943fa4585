"""Batched MCTS over fixed-size tree arrays: each simulation walks down (simulate), evaluates one new node
with the model (expand) and backs its value up to the root (backward). All loops are lax loops.

Randomness: the key is split per simulation into (next key, selection key, expansion key); the selection key
is split once per game and then once per step of the walk. Only PUCT's tie-break jitter and recurrent_fn
consume these keys.
"""
import jax
import jax.numpy as jnp

from jaxai.mcts.tree import Tree, init_tree


def search(params, rng, *, root, recurrent_fn, root_select_fn, interior_select_fn, num_simulations: int,
           max_depth: int | None = None, invalid_actions=None, extra_data=None) -> Tree:
  """Runs `num_simulations` simulations for every game of the batch and returns the tree.

  root: RootFnOutput (B, A) logits / (B,) value / (B, ...) embedding. root_select_fn / interior_select_fn:
  rules from action_selection (one game, `(rng, tree, node, depth) -> action`). max_depth: longest walk in
  edges (None = unlimited); a walk stopped by it re-evaluates an existing node. invalid_actions: (B, A) bool.
  """
  batch_size = root.value.shape[0]
  max_depth = num_simulations if max_depth is None else max_depth
  if invalid_actions is None:
    invalid_actions = jnp.zeros(root.prior_logits.shape, bool)
  tree = init_tree(root, num_simulations, invalid_actions.astype(bool), extra_data)
  walk = jax.vmap(lambda key, game_tree: simulate(key, game_tree, root_select_fn, interior_select_fn,
                                                  max_depth))

  def one_simulation(sim, carry):
    rng, tree = carry
    rng, select_key, expand_key = jax.random.split(rng, 3)
    parent, action = walk(jax.random.split(select_key, batch_size), tree)  # (B,), (B,)
    existing = tree.children_index[jnp.arange(batch_size), parent, action]  # (B,)
    # Simulation `sim` creates node sim + 1 unless max_depth made it stop on an existing node.
    node = jnp.where(existing == Tree.UNVISITED, sim + 1, existing)
    tree = expand(params, expand_key, tree, recurrent_fn, parent, action, node)
    return rng, backward(tree, node)

  _, tree = jax.lax.fori_loop(0, num_simulations, one_simulation, (rng, tree))
  return tree


def simulate(rng, tree: Tree, root_select_fn, interior_select_fn, max_depth: int):
  """Walks ONE game's tree from the root until an unexpanded edge or max_depth edges.

  Returns (parent (), action ()): the edge to expand. The root step is taken before the loop, so the loop
  body only ever runs the interior rule.
  """
  rng, key = jax.random.split(rng)
  action = root_select_fn(key, tree, Tree.ROOT_INDEX, 0)
  start = (rng, jnp.int32(Tree.ROOT_INDEX), action, tree.children_index[Tree.ROOT_INDEX, action],
           jnp.int32(1))

  def keep_walking(carry):
    _, _, _, child, depth = carry
    return jnp.logical_and(child != Tree.UNVISITED, depth < max_depth)

  def step(carry):
    rng, _, _, node, depth = carry
    rng, key = jax.random.split(rng)
    action = interior_select_fn(key, tree, node, depth)
    return rng, node, action, tree.children_index[node, action], depth + 1

  _, parent, action, _, _ = jax.lax.while_loop(keep_walking, step, start)
  return parent, action


def expand(params, rng, tree: Tree, recurrent_fn, parent, action, node) -> Tree:
  """Evaluates edge (parent, action) of every game with one recurrent_fn call and stores the result as
  `node`. parent, action, node: (B,) int32."""
  batch_size, num_actions = tree.root_invalid_actions.shape
  games = jnp.arange(batch_size)
  embedding = jax.tree.map(lambda x: x[games, parent], tree.embeddings)  # (B, ...)
  out, embedding = recurrent_fn(params, rng, action, embedding)
  _check_recurrent_output(out, batch_size, num_actions)
  return tree.replace(
      node_visits=tree.node_visits.at[games, node].add(1),
      raw_values=tree.raw_values.at[games, node].set(out.value),
      node_values=tree.node_values.at[games, node].set(out.value),
      parents=tree.parents.at[games, node].set(parent),
      action_from_parent=tree.action_from_parent.at[games, node].set(action),
      children_index=tree.children_index.at[games, parent, action].set(node),
      children_prior_logits=tree.children_prior_logits.at[games, node].set(out.prior_logits),
      children_rewards=tree.children_rewards.at[games, parent, action].set(out.reward),
      children_discounts=tree.children_discounts.at[games, parent, action].set(out.discount),
      embeddings=jax.tree.map(lambda x, e: x.at[games, node].set(e), tree.embeddings, embedding))


def backward(tree: Tree, leaf) -> Tree:
  """Backs each game's leaf value up to its root: along the path, value <- reward + discount * value, and
  every node's value becomes the running mean of what passed through it. leaf: (B,) int32.

  The loop runs over the batch at once; games whose walk has reached the root write out of bounds (dropped),
  so each step costs B element updates, not a select over whole tree arrays.
  """
  batch_size, num_nodes = tree.node_visits.shape
  games = jnp.arange(batch_size)

  def not_done(carry):
    _, node, _ = carry
    return jnp.any(node != Tree.ROOT_INDEX)

  def step(carry):
    tree, node, value = carry  # node, value: (B,)
    active = node != Tree.ROOT_INDEX
    parent = jnp.where(active, tree.parents[games, node], Tree.ROOT_INDEX)
    action = jnp.where(active, tree.action_from_parent[games, node], 0)
    value = jnp.where(active, tree.children_rewards[games, parent, action]
                      + tree.children_discounts[games, parent, action] * value, value)
    count = tree.node_visits[games, parent]
    parent_value = (tree.node_values[games, parent] * count + value) / (count + 1.0)
    target = jnp.where(active, parent, num_nodes)  # out of bounds: the write is dropped
    tree = tree.replace(
        node_values=tree.node_values.at[games, target].set(parent_value, mode="drop"),
        node_visits=tree.node_visits.at[games, target].set(count + 1, mode="drop"),
        children_values=tree.children_values.at[games, target, action].set(
            tree.node_values[games, node], mode="drop"),
        children_visits=tree.children_visits.at[games, target, action].add(1, mode="drop"))
    return tree, parent, value

  tree, _, _ = jax.lax.while_loop(not_done, step, (tree, leaf, tree.node_values[games, leaf]))
  return tree


def _check_recurrent_output(out, batch_size: int, num_actions: int):
  expected = {"reward": (batch_size,), "discount": (batch_size,), "value": (batch_size,),
              "prior_logits": (batch_size, num_actions)}
  for name, shape in expected.items():
    got = getattr(out, name).shape
    if got != shape:
      raise ValueError(f"recurrent_fn returned {name} of shape {got}, expected {shape} (B={batch_size}, "
                       f"A={num_actions}).")
