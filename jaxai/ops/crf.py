"""Linear-chain conditional random field (Lafferty et al. 2001) as pure functions, for BiLSTM-CRF taggers.

Shapes: B sequences, T positions, K tags.
  emissions   (B, T, K) float: unary scores from the encoder (e.g. a BiLSTM's per-token logits).
  transitions (K, K)    float: transitions[i, j] is the score of tag j directly after tag i.
  start, end  (K,)      float: scores of a sequence's first and last tag (Lample et al.'s extra start and
                                end states, kept as vectors instead of two more rows of `transitions`).
  mask        (B, T)    bool : True at real tokens. Sequences are LEFT-ALIGNED (mask is True on a prefix)
                                with length >= 1; position 0 is always treated as real.
  tags        (B, T)    int  : tag ids; values at padded positions are ignored.

The score of a tag path y_0..y_{L-1} of a sequence of length L is
  start[y_0] + sum_{t<L} emissions[t, y_t] + sum_{0<t<L} transitions[y_{t-1}, y_t] + end[y_{L-1}],
and its probability is exp(score - log_partition), log_partition being the logsumexp of the scores of all
K^L paths. Padded positions (mask False) carry the forward/Viterbi state through unchanged, so appending
padding (or changing the emissions or tags there) changes no result.

Constraints (e.g. IOB2's "I-X only after B-X or I-X") are applied by adding a large negative number to the
illegal entries of `transitions` and `start`; see `allowed_transitions_iob2` and `constrain`.
"""
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _prepare(emissions, mask):
  """Float emissions and a bool mask whose position 0 is True (length >= 1)."""
  emissions = jnp.asarray(emissions)
  emissions = emissions.astype(jnp.result_type(emissions, jnp.float32))
  mask = jnp.asarray(mask, bool).at[:, 0].set(True)
  return emissions, mask


def log_partition(emissions, transitions, mask, start, end) -> jax.Array:
  """log Z per sequence, (B,): the forward algorithm in lax.scan with logsumexp (numerically stable).

  alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + transitions[i, j]) + emissions[t, j]; a padded position keeps
  alpha_{t-1}. log Z = logsumexp_j(alpha_{L-1}[j] + end[j]).
  """
  emissions, mask = _prepare(emissions, mask)
  alpha = start[None, :] + emissions[:, 0]  # (B, K)

  def step(alpha, inputs):
    emit, m = inputs  # (B, K), (B,)
    # (B, K_prev, 1) + (1, K_prev, K_next) -> reduce over the previous tag.
    nxt = jax.nn.logsumexp(alpha[:, :, None] + transitions[None], axis=1) + emit
    return jnp.where(m[:, None], nxt, alpha), None

  xs = (jnp.swapaxes(emissions[:, 1:], 0, 1), jnp.swapaxes(mask[:, 1:], 0, 1))  # time-major
  alpha, _ = jax.lax.scan(step, alpha, xs)
  return jax.nn.logsumexp(alpha + end[None, :], axis=-1)


def sequence_score(emissions, tags, transitions, mask, start, end) -> jax.Array:
  """The unnormalized score of the given tag paths, (B,) (see the module docstring)."""
  emissions, mask = _prepare(emissions, mask)
  tags = jnp.asarray(tags, jnp.int32)
  m = mask.astype(emissions.dtype)
  emit = jnp.take_along_axis(emissions, tags[:, :, None], axis=-1)[..., 0]  # (B, T)
  trans = transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1): transition into position t >= 1
  lengths = jnp.sum(mask, axis=-1).astype(jnp.int32)  # (B,) left-aligned, so the last real index is L-1
  last = jnp.take_along_axis(tags, (lengths - 1)[:, None], axis=-1)[:, 0]
  return (start[tags[:, 0]] + jnp.sum(emit * m, axis=-1) + jnp.sum(trans * m[:, 1:], axis=-1) + end[last])


def log_likelihood(emissions, tags, transitions, mask, start, end) -> jax.Array:
  """log p(tags | emissions) per sequence, (B,) = sequence_score - log_partition (<= 0).

  The training loss is its negative mean: `-log_likelihood(...).mean()`.
  """
  return (sequence_score(emissions, tags, transitions, mask, start, end) -
          log_partition(emissions, transitions, mask, start, end))


def viterbi_decode(emissions, transitions, mask, start, end) -> tuple[jax.Array, jax.Array]:
  """The highest-scoring tag path per sequence: (tags (B, T) int32, best_score (B,)).

  Max-product recursion with backpointers in lax.scan, then the backtrace in a reverse lax.scan. Padded
  positions get backpointer "stay on the same tag", so the backtrace passes through them to the last real
  token; in the returned `tags` they are set to 0 (ignore them: use `mask`). best_score equals
  sequence_score of the returned path.
  """
  emissions, mask = _prepare(emissions, mask)
  num_tags = emissions.shape[-1]
  score = start[None, :] + emissions[:, 0]  # (B, K)
  identity = jnp.arange(num_tags, dtype=jnp.int32)

  def forward(score, inputs):
    emit, m = inputs  # (B, K), (B,)
    cand = score[:, :, None] + transitions[None]  # (B, K_prev, K_next)
    best_prev = jnp.argmax(cand, axis=1).astype(jnp.int32)  # (B, K_next)
    nxt = jnp.max(cand, axis=1) + emit
    score = jnp.where(m[:, None], nxt, score)
    backpointer = jnp.where(m[:, None], best_prev, identity[None, :])
    return score, backpointer

  xs = (jnp.swapaxes(emissions[:, 1:], 0, 1), jnp.swapaxes(mask[:, 1:], 0, 1))
  score, backpointers = jax.lax.scan(forward, score, xs)  # backpointers (T-1, B, K): for positions 1..T-1
  final = score + end[None, :]
  best_last = jnp.argmax(final, axis=-1).astype(jnp.int32)  # the tag at position T-1 (= at L-1, via padding)
  best_score = jnp.max(final, axis=-1)

  def backward(tag, backpointer):  # tag at position t, backpointer of position t -> tag at t-1
    prev = jnp.take_along_axis(backpointer, tag[:, None], axis=-1)[:, 0]
    return prev, tag

  first, later = jax.lax.scan(backward, best_last, backpointers, reverse=True)  # later (T-1, B): tags 1..T-1
  tags = jnp.concatenate([first[None], later], axis=0).T  # (B, T)
  return jnp.where(mask, tags, 0).astype(jnp.int32), best_score


def allowed_transitions_iob2(tag_names: Sequence[str]) -> jax.Array:
  """(K, K) bool: allowed[i, j] says tag_names[j] may directly follow tag_names[i] in IOB2.

  The only illegal transitions are into I-X from anything but B-X or I-X. Tags are 'O', 'B-X' or 'I-X'.
  A sequence may not start with I-X either: that is `allowed_starts_iob2`.
  """
  kinds = [_split_tag(name) for name in tag_names]
  rows = []
  for prefix_i, type_i in kinds:
    rows.append([prefix_j != "I" or (prefix_i in ("B", "I") and type_i == type_j) for prefix_j, type_j in kinds])
  return jnp.asarray(rows, bool)


def allowed_starts_iob2(tag_names: Sequence[str]) -> jax.Array:
  """(K,) bool: which tags may start a sequence in IOB2 (all but I-X)."""
  return jnp.asarray([_split_tag(name)[0] != "I" for name in tag_names], bool)


def constrain(scores, allowed, penalty: float = -1e4) -> jax.Array:
  """`scores` (transitions or start) with `penalty` added where `allowed` is False.

  A finite penalty (not -inf) keeps log_partition and its gradients finite even for a gold path that breaks
  the constraint; -1e4 is far below any learned score, so Viterbi never picks an illegal transition.
  """
  return jnp.where(allowed, scores, scores + penalty)


def _split_tag(name: str) -> tuple[str, str]:
  if name == "O":
    return "O", ""
  if len(name) > 2 and name[:2] in ("B-", "I-"):
    return name[0], name[2:]
  raise ValueError(f"Tag {name!r} is neither 'O' nor 'B-TYPE' / 'I-TYPE'.")


class CRF(nn.Module):
  """Parameters of a linear-chain CRF over `num_tags` tags: `transitions` (K, K), `start` (K,), `end` (K,).

  `__call__` returns the per-sequence log-likelihood of `tags`; `decode` the Viterbi path (see
  `viterbi_decode`), `log_partition` log Z. With `allowed`/`allowed_start` (e.g. from
  `allowed_transitions_iob2`), illegal transitions and starts get a -1e4 penalty in every method.
  """
  num_tags: int
  param_init: Callable = nn.initializers.zeros_init()
  allowed: jax.Array | None = None
  allowed_start: jax.Array | None = None

  def setup(self):
    k = self.num_tags
    self.transitions = self.param("transitions", self.param_init, (k, k), jnp.float32)
    self.start = self.param("start", self.param_init, (k,), jnp.float32)
    self.end = self.param("end", self.param_init, (k,), jnp.float32)

  def _params(self):
    transitions, start = self.transitions, self.start
    if self.allowed is not None:
      transitions = constrain(transitions, self.allowed)
    if self.allowed_start is not None:
      start = constrain(start, self.allowed_start)
    return transitions, start, self.end

  def __call__(self, emissions, tags, mask):
    transitions, start, end = self._params()
    return log_likelihood(emissions, tags, transitions, mask, start, end)

  def log_partition(self, emissions, mask):
    transitions, start, end = self._params()
    return log_partition(emissions, transitions, mask, start, end)

  def decode(self, emissions, mask):
    transitions, start, end = self._params()
    return viterbi_decode(emissions, transitions, mask, start, end)
