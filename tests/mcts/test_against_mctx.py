"""jaxai.mcts against the reference implementation, mctx 0.0.71, on the same model, inputs and random keys.

Both libraries get the same deterministic toy recurrent_fn (tests/mcts/toy_model.py, two-player discount -1),
the same root and the same key; the whole trees (node ids, visit counts, values), the action weights and the
chosen actions must agree. The batch mixes games with all actions legal, games with some illegal actions and
a game with a single legal action. mctx draws its Dirichlet / Gumbel noise from the key in a fixed order and
jaxai.mcts follows that order, so the searches agree with the noise on as well as off.
"""
import jax
import jax.numpy as jnp
import mctx
import numpy as np
import pytest

import jaxai.mcts as ours
from tests.mcts import toy_model

BATCH, ACTIONS, SIMULATIONS = 8, 12, 24


def make_problem(quantum: float):
  params = toy_model.init_params(jax.random.key(0), ACTIONS, quantum=quantum)
  logits, value, embedding = toy_model.root_arrays(params, jax.random.key(1), BATCH)
  return params, logits, value, embedding


@pytest.fixture(scope="module")
def invalid():
  mask = np.zeros((BATCH, ACTIONS), bool)
  mask[4:7] = np.random.default_rng(0).random((3, ACTIONS)) < 0.4  # some illegal actions
  mask[7] = np.arange(ACTIONS) != 5  # one legal action
  return jnp.asarray(mask)


# Continuous outputs, and outputs rounded to multiples of 0.5 (many exact ties between actions).
PROBLEMS = [make_problem(0.0), make_problem(0.5)]


def run(library, policy_name, invalid, **static):
  """A jitted search of `library`; the model, root and noise / temperature settings are traced arguments."""
  recurrent_fn = toy_model.make_recurrent_fn(library.RecurrentFnOutput)

  @jax.jit
  def search(problem, rng, **traced):
    params, logits, value, embedding = problem
    root = library.RootFnOutput(prior_logits=logits, value=value, embedding=embedding)
    return getattr(library, policy_name)(params, rng, root, recurrent_fn, SIMULATIONS, invalid, **static,
                                         **traced)

  return search


def assert_same_search(out, ref):
  tree, ref_tree = out.search_tree, ref.search_tree
  np.testing.assert_array_equal(tree.children_index, ref_tree.children_index)
  np.testing.assert_array_equal(tree.children_visits, ref_tree.children_visits)
  np.testing.assert_array_equal(tree.node_visits, ref_tree.node_visits)
  np.testing.assert_allclose(tree.node_values, ref_tree.node_values, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(out.action_weights, ref.action_weights, rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(out.action, ref.action)
  summary, ref_summary = tree.summary(), ref_tree.summary()
  for field in ("visit_counts", "visit_probs", "value", "qvalues"):
    np.testing.assert_allclose(getattr(summary, field), getattr(ref_summary, field), rtol=1e-6, atol=1e-6)


def test_muzero_policy_matches_mctx(invalid):
  search = run(ours, "muzero_policy", invalid)
  reference = run(mctx, "muzero_policy", invalid)
  for problem in PROBLEMS:
    for seed, fraction, temperature in [(0, 0.0, 1.0), (1, 0.0, 0.0), (2, 0.25, 1.0), (3, 0.25, 0.5)]:
      settings = dict(dirichlet_fraction=jnp.float32(fraction), temperature=jnp.float32(temperature))
      out = search(problem, jax.random.key(seed), **settings)
      assert_same_search(out, reference(problem, jax.random.key(seed), **settings))
      # Illegal actions are never searched nor played; the weights are the root visit frequencies.
      assert not np.any(np.asarray(out.search_tree.children_visits[:, 0])[np.asarray(invalid)])
      assert not np.any(np.asarray(invalid)[np.arange(BATCH), np.asarray(out.action)])
      np.testing.assert_allclose(out.action_weights.sum(-1), 1.0, rtol=1e-6)


def test_gumbel_muzero_policy_matches_mctx_with_max_depth(invalid):
  static = dict(max_depth=3, max_num_considered_actions=4)
  search = run(ours, "gumbel_muzero_policy", invalid, **static)
  reference = run(mctx, "gumbel_muzero_policy", invalid, **static)
  for problem in PROBLEMS:
    for seed, scale in [(0, 0.0), (1, 0.0), (2, 1.0)]:
      out = search(problem, jax.random.key(seed), gumbel_scale=jnp.float32(scale))
      assert_same_search(out, reference(problem, jax.random.key(seed), gumbel_scale=jnp.float32(scale)))
      assert int(out.search_tree.node_visits[:, 0].min()) == SIMULATIONS + 1
      assert node_depths(np.asarray(out.search_tree.parents)).max() == 3  # walks were cut at max_depth


def node_depths(parents):
  """(B, N) edges from the root to each node, from the parent pointers (unused nodes count as depth 0)."""
  depths = np.zeros_like(parents)
  for _ in range(parents.shape[1]):
    depths = np.where(parents >= 0, np.take_along_axis(depths, np.maximum(parents, 0), 1) + 1, 0)
  return depths
