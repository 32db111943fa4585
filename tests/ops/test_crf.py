"""Linear-chain CRF (jaxai.ops.crf) against brute force over all K^L tag paths of tiny random sequences."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxai.ops import crf

K, T = 3, 4
LENGTHS = (4, 2, 1)  # B = 3 left-aligned sequences of different lengths.

# Everything runs jitted (which is also the "jit works" check): eager dispatch compiles every primitive
# for every new shape, which made this file take ~40 s of CPU instead of a few.
log_partition = jax.jit(crf.log_partition)
sequence_score = jax.jit(crf.sequence_score)
log_likelihood = jax.jit(crf.log_likelihood)
viterbi_decode = jax.jit(crf.viterbi_decode)


def random_problem(seed=0, t=T, lengths=LENGTHS):
  rng = np.random.default_rng(seed)
  b = len(lengths)
  emissions = rng.normal(size=(b, t, K)).astype(np.float32)
  transitions = rng.normal(size=(K, K)).astype(np.float32)
  start = rng.normal(size=(K,)).astype(np.float32)
  end = rng.normal(size=(K,)).astype(np.float32)
  mask = np.arange(t)[None, :] < np.asarray(lengths)[:, None]
  return emissions, transitions, mask, start, end


def path_score(emissions, transitions, start, end, path):
  """The textbook score of one path over one sequence's real positions, in float64."""
  s = float(start[path[0]]) + float(end[path[-1]])
  s += sum(float(emissions[t, y]) for t, y in enumerate(path))
  s += sum(float(transitions[a, b]) for a, b in zip(path[:-1], path[1:]))
  return s


def all_paths(length):
  return list(itertools.product(range(K), repeat=length))


def brute_force(emissions, transitions, mask, start, end):
  """Per sequence: (log Z, best path, best score) by enumerating all K^L paths."""
  out = []
  for b, length in enumerate(mask.sum(1)):
    paths = all_paths(int(length))
    scores = np.array([path_score(emissions[b], transitions, start, end, p) for p in paths])
    top = scores.max()
    out.append((top + np.log(np.exp(scores - top).sum()), paths[int(scores.argmax())], top))
  return out


def padded(path, t=T):
  return list(path) + [0] * (t - len(path))


def test_log_partition_equals_brute_force():
  problem = random_problem()
  log_z = np.asarray(log_partition(*problem))
  expected = [z for z, _, _ in brute_force(*problem)]
  np.testing.assert_allclose(log_z, expected, rtol=1e-5, atol=1e-5)


def every_path_batch(emissions, mask):
  """Every path of every sequence as one batch: (emissions, tags, mask, row's sequence, path) per row."""
  rows = [(b, p) for b, length in enumerate(mask.sum(1)) for p in all_paths(int(length))]
  index = np.array([b for b, _ in rows])
  tags = np.array([padded(p, emissions.shape[1]) for _, p in rows])
  return emissions[index], tags, mask[index], index, [p for _, p in rows]


def test_sequence_score_equals_brute_force_on_every_path():
  emissions, transitions, mask, start, end = random_problem(seed=1)
  emissions_n, tags, mask_n, index, paths = every_path_batch(emissions, mask)
  got = sequence_score(emissions_n, tags, transitions, mask_n, start, end)
  expected = [path_score(emissions[b], transitions, start, end, p) for b, p in zip(index, paths)]
  np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)


def test_viterbi_equals_brute_force_argmax():
  for seed in range(3):
    problem = random_problem(seed=seed)
    tags, best = viterbi_decode(*problem)
    assert tags.dtype == jnp.int32 and tags.shape == (len(LENGTHS), T)
    for b, (_, path, top) in enumerate(brute_force(*problem)):
      assert list(np.asarray(tags[b])) == padded(path)  # padded positions are tag 0
      np.testing.assert_allclose(float(best[b]), top, rtol=1e-5, atol=1e-5)
    emissions, transitions, mask, start, end = problem
    np.testing.assert_allclose(np.asarray(sequence_score(emissions, tags, transitions, mask, start, end)),
                               np.asarray(best), rtol=1e-6, atol=1e-5)


def test_likelihoods_of_all_paths_sum_to_one():
  emissions, transitions, mask, start, end = random_problem(seed=2)
  emissions_n, tags, mask_n, index, _ = every_path_batch(emissions, mask)
  ll = np.asarray(log_likelihood(emissions_n, tags, transitions, mask_n, start, end), np.float64)
  assert np.all(ll <= 1e-6)
  np.testing.assert_allclose(np.bincount(index, weights=np.exp(ll)), np.ones(len(LENGTHS)), rtol=1e-5)


def test_gradient_is_finite_and_marginals_respect_the_mask():
  emissions, transitions, mask, start, end = random_problem(seed=3)
  tags = np.array([[0, 1, 2, 1], [2, 2, 0, 0], [1, 0, 0, 0]])

  def loss(emissions, transitions, start, end):
    return -jnp.mean(log_likelihood(emissions, tags, transitions, mask, start, end))

  @jax.jit
  def grads_and_marginals(emissions, transitions, start, end):
    grads = jax.grad(loss, argnums=(0, 1, 2, 3))(emissions, transitions, start, end)
    # d log Z / d emissions are the tag marginals: each real position sums to 1, padding gets nothing.
    marginals = jax.grad(lambda e: crf.log_partition(e, transitions, mask, start, end).sum())(emissions)
    return grads, marginals

  grads, marginals = grads_and_marginals(emissions, transitions, start, end)
  for g in grads:
    assert np.all(np.isfinite(np.asarray(g)))
  marginals = np.asarray(marginals)
  np.testing.assert_allclose(marginals.sum(-1), mask.astype(np.float32), atol=1e-5)


def test_eager_matches_jit():
  """The functions also run un-jitted (only log_likelihood here, which calls sequence_score and log_partition:
  eager dispatch compiles each primitive on its own, ~1-3 s of CPU per function)."""
  emissions, transitions, mask, start, end = random_problem(seed=4)
  tags = np.zeros(mask.shape, np.int32)
  eager = crf.log_likelihood(emissions, tags, transitions, mask, start, end)
  jitted = log_likelihood(emissions, tags, transitions, mask, start, end)
  np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-6)


def test_padding_changes_nothing():
  emissions, transitions, mask, start, end = random_problem(seed=5)
  tags = np.array([[0, 1, 2, 1], [2, 2, 0, 0], [1, 0, 0, 0]])
  rng = np.random.default_rng(6)
  extra = 3  # appended padding, with garbage emissions and tags there
  emissions_p = np.concatenate([emissions, 100 * rng.normal(size=(len(LENGTHS), extra, K))], 1).astype(np.float32)
  mask_p = np.concatenate([mask, np.zeros((len(LENGTHS), extra), bool)], 1)
  tags_p = np.concatenate([tags, rng.integers(0, K, size=(len(LENGTHS), extra))], 1)
  # Garbage at the already-padded positions too.
  emissions_p = np.where(mask_p[..., None], emissions_p, 100 * rng.normal(size=emissions_p.shape)).astype(np.float32)
  tags_p = np.where(mask_p, tags_p, rng.integers(0, K, size=tags_p.shape))

  np.testing.assert_allclose(np.asarray(log_partition(emissions_p, transitions, mask_p, start, end)),
                             np.asarray(log_partition(emissions, transitions, mask, start, end)), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(log_likelihood(emissions_p, tags_p, transitions, mask_p, start, end)),
                             np.asarray(log_likelihood(emissions, tags, transitions, mask, start, end)),
                             rtol=1e-6, atol=1e-6)
  path_p, best_p = viterbi_decode(emissions_p, transitions, mask_p, start, end)
  path, best = viterbi_decode(emissions, transitions, mask, start, end)
  np.testing.assert_array_equal(np.asarray(path_p)[:, :T], np.asarray(path))
  assert np.all(np.asarray(path_p)[:, T:] == 0)
  np.testing.assert_allclose(np.asarray(best_p), np.asarray(best), rtol=1e-6)


def test_single_position_sequences():
  """T = 1: the scans run zero steps."""
  emissions, transitions, mask, start, end = random_problem(seed=7, t=1, lengths=(1, 1))
  expected = brute_force(emissions, transitions, mask, start, end)
  np.testing.assert_allclose(np.asarray(log_partition(emissions, transitions, mask, start, end)),
                             [z for z, _, _ in expected], rtol=1e-5)
  tags, best = viterbi_decode(emissions, transitions, mask, start, end)
  assert [list(map(int, row)) for row in tags] == [list(p) for _, p, _ in expected]


def test_allowed_transitions_iob2_and_constrained_decoding():
  names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
  allowed = np.asarray(crf.allowed_transitions_iob2(names))
  expected = np.ones((5, 5), bool)
  expected[:, 2] = [False, True, True, False, False]  # I-PER only after B-PER / I-PER
  expected[:, 4] = [False, False, False, True, True]
  np.testing.assert_array_equal(allowed, expected)
  starts = np.asarray(crf.allowed_starts_iob2(names))
  np.testing.assert_array_equal(starts, [True, True, False, True, False])
  np.testing.assert_array_equal(np.asarray(crf.constrain(np.zeros(5), starts)), [0, 0, -1e4, 0, -1e4])
  with pytest.raises(ValueError, match="PER"):
    crf.allowed_transitions_iob2(["O", "PER"])

  # Emissions that favour an illegal path (I-LOC right after B-PER): the constrained decode avoids it.
  emissions = np.full((1, 3, 5), -5.0, np.float32)
  emissions[0, 0, 4] = emissions[0, 1, 1] = emissions[0, 2, 4] = 5.0
  mask = np.ones((1, 3), bool)
  zeros = np.zeros(5, np.float32)
  free, _ = viterbi_decode(emissions, np.zeros((5, 5), np.float32), mask, zeros, zeros)
  assert list(np.asarray(free[0])) == [4, 1, 4]
  # Through the module, whose `allowed` / `allowed_start` apply crf.constrain to its (zero) parameters.
  module = crf.CRF(num_tags=5, allowed=allowed, allowed_start=starts)
  variables = {"params": {"transitions": np.zeros((5, 5), np.float32), "start": zeros, "end": zeros}}
  tags, _ = jax.jit(lambda v, e, m: module.apply(v, e, m, method=crf.CRF.decode))(variables, emissions, mask)
  tags = [names[i] for i in np.asarray(tags[0])]
  assert tags[1] == "B-PER"
  for prev, cur in zip(["O"] + tags[:-1], tags):
    assert not cur.startswith("I-") or prev[2:] == cur[2:], tags


def test_flax_module():
  emissions, _, mask, _, _ = random_problem(seed=8)
  tags = np.array([[0, 1, 2, 1], [2, 2, 0, 0], [1, 0, 0, 0]])
  module = crf.CRF(num_tags=K, param_init=jax.nn.initializers.normal(0.1))
  variables = jax.jit(module.init)(jax.random.PRNGKey(0), emissions, tags, mask)
  params = variables["params"]
  assert params["transitions"].shape == (K, K) and params["start"].shape == (K,) and params["end"].shape == (K,)

  @jax.jit
  def everything(params):
    v = {"params": params}
    ll = module.apply(v, emissions, tags, mask)
    grads = jax.grad(lambda p: -module.apply({"params": p}, emissions, tags, mask).mean())(params)
    return (ll, module.apply(v, emissions, mask, method=crf.CRF.decode),
            module.apply(v, emissions, mask, method=crf.CRF.log_partition), grads)

  ll, (path, best), log_z, grads = everything(params)
  expected = brute_force(emissions, np.asarray(params["transitions"]), mask, np.asarray(params["start"]),
                         np.asarray(params["end"]))
  np.testing.assert_allclose(np.asarray(log_z), [z for z, _, _ in expected], rtol=1e-5)
  np.testing.assert_allclose(np.asarray(ll), np.asarray(log_likelihood(
      emissions, tags, params["transitions"], mask, params["start"], params["end"])), rtol=1e-6)
  assert [list(map(int, row)) for row in path] == [padded(p) for _, p, _ in expected]
  assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))
