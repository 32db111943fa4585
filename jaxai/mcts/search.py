"""Batched MCTS over fixed-size tree arrays: each simulation walks down (simulate), evaluates one new node
with the model (expand) and backs its value up to the root (backward). All loops are lax loops over the
whole batch at once; the per-node rules (action_selection) are vmapped over the games.

Randomness (the same stream as mctx): the key is split per simulation into (next key, walk key, expansion
key); the walk key is split once per game, and each game's key once per step of its walk into (next, jitter).
The jitter key draws PUCT's tie-break noise, tie_break * U[0, 1) per action; it can only change the argmax
when two scores lie within tie_break of each other, so it is drawn only for simulations whose walk meets such
a near tie (see simulate). recurrent_fn receives the expansion key.
"""
import jax
import jax.numpy as jnp

from jaxai.mcts.tree import Tree, init_tree


def search(params, rng, *, root, recurrent_fn, root_scores_fn, interior_scores_fn, num_simulations: int,
           max_depth: int | None = None, invalid_actions=None, extra_data=None,
           tie_break: float = 0.0) -> Tree:
  """Runs `num_simulations` simulations for every game of the batch and returns the tree.

  root: RootFnOutput (B, A) logits / (B,) value / (B, ...) embedding. root_scores_fn / interior_scores_fn:
  rules from action_selection (one game, `(tree, node, depth) -> scores (A,)`). max_depth: longest walk in
  edges (None = unlimited); a walk stopped by it re-evaluates an existing node. invalid_actions: (B, A) bool.
  tie_break: scale of the random jitter added to the scores (0 = argmax takes the first best action).
  """
  batch_size = root.value.shape[0]
  max_depth = num_simulations if max_depth is None else max_depth
  if invalid_actions is None:
    invalid_actions = jnp.zeros(root.prior_logits.shape, bool)
  tree = init_tree(root, num_simulations, invalid_actions.astype(bool), extra_data)

  def one_simulation(sim, carry):
    rng, tree = carry
    rng, walk_key, expand_key = jax.random.split(rng, 3)
    parent, action = simulate(jax.random.split(walk_key, batch_size), tree, root_scores_fn,
                              interior_scores_fn, max_depth, tie_break)  # (B,), (B,)
    existing = tree.children_index[jnp.arange(batch_size), parent, action]  # (B,)
    # Simulation `sim` creates node sim + 1 unless max_depth made it stop on an existing node.
    node = jnp.where(existing == Tree.UNVISITED, sim + 1, existing)
    tree = expand(params, expand_key, tree, recurrent_fn, parent, action, node)
    return rng, backward(tree, node)

  _, tree = jax.lax.fori_loop(0, num_simulations, one_simulation, (rng, tree))
  return tree


def simulate(keys, tree: Tree, root_scores_fn, interior_scores_fn, max_depth: int, tie_break: float = 0.0):
  """Walks every game's tree from the root until an unexpanded edge or max_depth edges. keys: (B,).

  Returns (parent (B,), action (B,)): the edge to expand. With tie_break > 0 the walk first runs without
  jitter, noting whether any game met a near tie on its way; only then is it rerun with the jitter (which
  costs a key split and A uniform draws per game and step, far more than the rest of the walk).
  """
  walk = lambda jitter: _walk(keys, tree, root_scores_fn, interior_scores_fn, max_depth, tie_break, jitter)
  parent, action, near_tie = walk(False)
  if not tie_break:
    return parent, action
  return jax.lax.cond(near_tie, lambda: walk(True)[:2], lambda: (parent, action))


def _walk(keys, tree, root_scores_fn, interior_scores_fn, max_depth, tie_break, jitter: bool):
  """The walk of all games in step (depth is shared); a game that has stopped keeps its edge while the
  others go on. Returns (parent (B,), action (B,), whether some step had a near tie)."""
  games = jnp.arange(keys.shape[0])

  def choose(keys, nodes, depth, scores_fn, active):
    """One step for every game: (keys advanced where active, argmax actions (B,), near tie ())."""
    scores = jax.vmap(scores_fn, in_axes=(0, 0, None))(tree, nodes, depth)  # (B, A)
    near_tie = _has_near_tie(scores, tie_break, active) if tie_break else jnp.bool_(False)
    if jitter:
      split = jax.vmap(jax.random.split)(keys)  # (B, 2): (next key, jitter key)
      keys = jnp.where(active, split[:, 0], keys)
      scores = scores + tie_break * jax.vmap(lambda key: jax.random.uniform(key, scores.shape[-1:]))(split[:, 1])
    return keys, jnp.argmax(scores, axis=-1).astype(jnp.int32), near_tie

  root = jnp.full(games.shape, Tree.ROOT_INDEX, jnp.int32)
  keys, action, near_tie = choose(keys, root, 0, root_scores_fn, jnp.ones(games.shape, bool))
  start = (keys, root, action, tree.children_index[games, root, action], jnp.int32(1), near_tie)

  def walking(child, depth):
    return jnp.logical_and(child != Tree.UNVISITED, depth < max_depth)  # (B,)

  def step(carry):
    keys, parent, action, child, depth, near_tie = carry
    going = walking(child, depth)
    node = jnp.where(going, child, parent)  # stopped games recompute their last node, and discard it
    keys, next_action, tie = choose(keys, node, depth, interior_scores_fn, going)
    return (keys, node, jnp.where(going, next_action, action),
            jnp.where(going, tree.children_index[games, node, next_action], child), depth + 1, near_tie | tie)

  _, parent, action, _, _, near_tie = jax.lax.while_loop(lambda c: jnp.any(walking(c[3], c[4])), step, start)
  return parent, action, near_tie


def _has_near_tie(scores, tie_break, active):
  """Whether some active game's best two scores are close enough for jitter below tie_break to reorder
  them (elsewhere the jitter cannot change the argmax). scores: (B, A); active: (B,)."""
  best = jnp.max(scores, axis=-1, keepdims=True)  # (B, 1)
  margin = tie_break + 4 * jnp.finfo(scores.dtype).eps * jnp.abs(best)  # the jitter plus rounding
  contenders = jnp.sum(scores >= best - margin, axis=-1)  # (B,) the best itself, plus near ties
  # A row with no finite score (no legal action) keeps -inf everywhere, jitter or not.
  return jnp.any(active & (contenders > 1) & jnp.isfinite(best[:, 0]))


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
