"""Search on problems whose answers are known: one-step bandits and a two-player depth-2 game tree."""
import jax
import jax.numpy as jnp
import numpy as np

import jaxai.mcts as mcts

# Arm payoffs of four one-step bandits (one per game), each with a different best arm.
ARM_MEANS = np.array([[0.1, 0.9, 0.3, 0.5, 0.2, 0.0],
                      [0.8, 0.1, 0.2, 0.3, 0.7, 0.4],
                      [0.0, 0.2, 0.4, 0.6, 0.5, 1.0],
                      [0.3, 0.2, 0.9, 0.1, 0.5, 0.7]], np.float32)


def bandit_recurrent_fn(means, action, embedding):
  """One step: reward = the arm's payoff, then the episode ends (discount 0, value 0)."""
  games = embedding  # (B,) game ids
  reward = means[games, action]
  zeros = jnp.zeros_like(reward)
  out = mcts.RecurrentFnOutput(reward=reward, discount=zeros, value=zeros,
                               prior_logits=jnp.zeros((games.shape[0], means.shape[1])))
  return out, games


def bandit_root(prior_logits):
  batch = prior_logits.shape[0]
  return mcts.RootFnOutput(prior_logits=prior_logits, value=jnp.zeros(batch), embedding=jnp.arange(batch))


def test_puct_spends_most_visits_on_the_best_legal_arm_and_never_an_illegal_one():
  # Game 3's best arm (2) is illegal: its answer is arm 5. Uniform prior; no Dirichlet noise (searches with
  # noise are compared with mctx in test_against_mctx.py). Unvisited arms count as the worst value seen, so
  # the first arm tried keeps the search for a while (~25 simulations here) before the exploration term
  # reaches the others: the budget covers that phase.
  simulations = 160
  invalid = np.zeros(ARM_MEANS.shape, bool)
  invalid[3, 2] = True
  policy = jax.jit(lambda rng: mcts.muzero_policy(
      jnp.asarray(ARM_MEANS), rng, bandit_root(jnp.zeros(ARM_MEANS.shape)),
      lambda means, _, action, embedding: bandit_recurrent_fn(means, action, embedding), simulations,
      invalid_actions=jnp.asarray(invalid), dirichlet_fraction=0.0, temperature=jnp.zeros(4)))
  for seed in range(3):  # the first arm tried (and so the course of the search) depends on the key
    out = policy(jax.random.key(seed))
    visits = np.asarray(out.search_tree.children_visits[:, 0])  # (B, A)
    np.testing.assert_array_equal(visits.argmax(-1), [1, 0, 5, 5])
    np.testing.assert_array_equal(out.action, [1, 0, 5, 5])  # temperature 0 (per game): the most visited
    assert visits[3, 2] == 0 and visits.sum() == 4 * simulations
    # The root value is the mean of the backed-up payoffs: it approaches the best payoff from below.
    best = np.array([0.9, 0.8, 1.0, 0.7])
    assert np.all(np.asarray(out.search_tree.node_values[:, 0]) < best)
    assert np.all(np.asarray(out.search_tree.node_values[:, 0]) > best - 0.25)


def test_gumbel_finds_the_best_arm_against_a_misleading_prior_with_few_simulations():
  # The prior puts most mass on each game's worst arm; 12 simulations over 6 arms must still find the best.
  worst = ARM_MEANS.argmin(-1)
  logits = 3.0 * jax.nn.one_hot(worst, ARM_MEANS.shape[1])
  policy = jax.jit(lambda rng, scale: mcts.gumbel_muzero_policy(
      jnp.asarray(ARM_MEANS), rng, bandit_root(logits),
      lambda means, _, action, embedding: bandit_recurrent_fn(means, action, embedding), 12,
      max_num_considered_actions=6, gumbel_scale=scale))
  out = policy(jax.random.key(0), 0.0)
  np.testing.assert_array_equal(out.action, ARM_MEANS.argmax(-1))
  # The policy target moves mass from the prior's favourite to the best arm.
  weights = np.asarray(out.action_weights)
  assert np.all(weights[np.arange(4), ARM_MEANS.argmax(-1)] > weights[np.arange(4), worst])
  # With Gumbel noise the policy is stochastic (close arms such as 0.8 vs 0.7 swap places), but over many
  # keys the best arm is each game's most frequent choice and the prior's favourite is rare.
  actions = np.stack([policy(jax.random.key(seed), 1.0).action for seed in range(1, 21)])  # (20, B)
  counts = np.stack([np.bincount(game, minlength=6) for game in actions.T])  # (B, A)
  np.testing.assert_array_equal(counts.argmax(-1), ARM_MEANS.argmax(-1))
  assert counts[np.arange(4), worst].sum() <= 0.2 * actions.size  # the prior alone: 80%


# A two-player game of depth 2: the player to move picks a row, the opponent a column, then the game ends
# with PAYOFF[row, col] to the first player. Row 1 is the maximin answer (its worst case 0.2 beats -1 and
# -0.5), while row 0 has the best single payoff and row 2 the best average: only a search that models the
# opponent's reply as a minimisation picks row 1.
PAYOFF = np.array([[1.0, 1.0, -1.0],
                   [0.2, 0.3, 0.25],
                   [0.9, -0.5, 0.8]], np.float32)


def minimax_recurrent_fn(payoff, action, embedding):
  """embedding (B, 2) int32 = (depth, first move). Rewards are to the player who moved; discount -1 between
  the players, 0 once the game is over (depth 2), after which every step is worth 0."""
  depth, first = embedding[:, 0], embedding[:, 1]
  reward = jnp.where(depth == 1, -payoff[first, action], 0.0)  # the opponent's reward is minus the payoff
  discount = jnp.where(depth == 0, -1.0, 0.0)
  out = mcts.RecurrentFnOutput(reward=reward, discount=discount, value=jnp.zeros_like(reward),
                               prior_logits=jnp.zeros((action.shape[0], 3)))
  first = jnp.where(depth == 0, action, first)
  return out, jnp.stack([depth + 1, first], axis=-1)


def test_two_player_depth_two_tree_is_solved_by_both_policies():
  root = mcts.RootFnOutput(prior_logits=jnp.zeros((2, 3)), value=jnp.zeros(2),
                           embedding=jnp.zeros((2, 2), jnp.int32))
  recurrent_fn = lambda payoff, _, action, embedding: minimax_recurrent_fn(payoff, action, embedding)
  puct = jax.jit(lambda rng: mcts.muzero_policy(jnp.asarray(PAYOFF), rng, root, recurrent_fn, 200,
                                                dirichlet_fraction=0.0, temperature=0.0))(jax.random.key(0))
  visits = np.asarray(puct.search_tree.children_visits[:, 0])
  np.testing.assert_array_equal(visits.argmax(-1), [1, 1])
  np.testing.assert_array_equal(puct.action, [1, 1])
  # The root's q-values approach each row's worst case (0.2 exactly for row 1, whose replies are all close).
  q = np.asarray(puct.search_tree.root_qvalues())
  assert abs(q[0, 1] - 0.2) < 0.05 and q[0, 0] < 0.2 and q[0, 2] < 0.2

  gumbel = jax.jit(lambda rng: mcts.gumbel_muzero_policy(jnp.asarray(PAYOFF), rng, root, recurrent_fn, 32,
                                                         gumbel_scale=0.0))(jax.random.key(0))
  np.testing.assert_array_equal(gumbel.action, [1, 1])
