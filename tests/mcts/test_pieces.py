"""The small pieces of the search checked by hand: the Sequential Halving schedule, the mixed value, the
q-value normalisation; and compilation (one trace for repeated calls of a jitted search)."""
import jax
import jax.numpy as jnp
import numpy as np

import jaxai.mcts as mcts
from jaxai.mcts import qtransforms, seq_halving
from jaxai.mcts.tree import init_tree
from tests.mcts import toy_model


def test_sequential_halving_schedule_by_hand():
  # 4 candidates, 8 simulations, 2 phases: one round over 4 actions (level 0), then two rounds over 2.
  assert seq_halving.considered_visit_sequence(4, 8) == (0, 0, 0, 0, 1, 1, 2, 2)
  # 16 candidates, 32 simulations, 4 phases: 16x0, then 8x1, then rounds over 4 (2, 3 cut at 32).
  assert seq_halving.considered_visit_sequence(16, 32) == (0,) * 16 + (1,) * 8 + (2,) * 4 + (3,) * 4
  # A single candidate takes every visit; the table has one row per candidate count.
  assert seq_halving.considered_visit_sequence(1, 5) == (0, 1, 2, 3, 4)
  table = seq_halving.considered_visit_table(4, 8)
  assert table.shape == (5, 8) and tuple(table[4]) == (0, 0, 0, 0, 1, 1, 2, 2)


def test_score_considered_keeps_only_the_scheduled_visit_count():
  scores = seq_halving.score_considered(jnp.float32(1), jnp.zeros(4), jnp.array([0.0, -1e30, 1.0, 2.0]),
                                        jnp.array([0.5, 0.0, 0.0, 0.0]), jnp.array([1, 1, 0, 1]))
  # Action 1's logit is -1e30 yet it stays finite (floored at -1e9); action 2 has the wrong count.
  np.testing.assert_allclose(scores, [-1.5, -1e9, -np.inf, 0.0])


def one_node_tree(q, visits, node_value, raw_value, logits):
  """A one-game tree whose root has the given child q-values (as rewards, discount 0) and visits."""
  q, visits = jnp.asarray(q, jnp.float32), jnp.asarray(visits, jnp.int32)
  root = mcts.RootFnOutput(prior_logits=jnp.asarray(logits, jnp.float32)[None], value=jnp.float32([raw_value]),
                           embedding=jnp.zeros((1, 1)))
  tree = init_tree(root, 1, jnp.zeros((1, q.shape[0]), bool))
  tree = tree.replace(children_rewards=tree.children_rewards.at[0, 0].set(q),
                      children_visits=tree.children_visits.at[0, 0].set(visits),
                      node_values=tree.node_values.at[0, 0].set(node_value))
  return jax.tree.map(lambda x: x[0], tree)  # one game's tree, as the selection rules see it


def test_mixed_value_and_completed_qvalues_by_hand():
  tree = one_node_tree(q=[1.0, 0.0, 9.0], visits=[1, 3, 0], node_value=0.0, raw_value=0.5,
                       logits=np.log([0.5, 0.25, 0.25]))
  # Visited prior mass 0.75: weighted q = (0.5 * 1 + 0.25 * 0) / 0.75 = 2/3; 4 visits:
  # v_mix = (0.5 + 4 * 2/3) / 5.
  v_mix = (0.5 + 4 * 2 / 3) / 5
  completed = qtransforms.qtransform_completed_by_mix_value(tree, 0, rescale_values=False)
  np.testing.assert_allclose(completed, (50 + 3) * 0.1 * np.array([1.0, 0.0, v_mix]), rtol=1e-6)
  rescaled = qtransforms.qtransform_completed_by_mix_value(tree, 0)
  np.testing.assert_allclose(rescaled, 5.3 * np.array([1.0, 0.0, v_mix]), rtol=1e-6)  # already spans [0, 1]


def test_parent_and_siblings_normalisation_by_hand():
  # Visited q-values 0.2 and 0.6, node value 1.0: range [0.2, 1.0]; the unvisited action gets the minimum.
  tree = one_node_tree(q=[0.2, 0.6, 5.0], visits=[2, 1, 0], node_value=1.0, raw_value=0.0, logits=[0, 0, 0])
  np.testing.assert_allclose(qtransforms.qtransform_by_parent_and_siblings(tree, 0), [0.0, 0.5, 0.0],
                             atol=1e-6)


def test_jitted_search_traces_once_for_new_values_of_the_same_shapes():
  traces = []
  recurrent = toy_model.make_recurrent_fn(mcts.RecurrentFnOutput)

  @jax.jit
  def act(params, rng, logits, value, embedding):
    traces.append(1)  # runs only while tracing
    root = mcts.RootFnOutput(prior_logits=logits, value=value, embedding=embedding)
    return mcts.gumbel_muzero_policy(params, rng, root, recurrent, 8, max_num_considered_actions=4)

  for seed in range(3):
    params = toy_model.init_params(jax.random.key(seed), 5)
    out = act(params, jax.random.key(seed), *toy_model.root_arrays(params, jax.random.key(10 + seed), 3))
    assert out.action.shape == (3,) and out.action_weights.shape == (3, 5)
    assert out.search_tree.children_visits[:, 0].sum() == 3 * 8
  assert len(traces) == 1
  assert act._cache_size() == 1
