"""Search policies: AlphaZero/MuZero PUCT with Dirichlet root noise, and Gumbel MuZero.

Both follow mctx's conventions (same arguments, same random draws from the same key), so a search here and
one in mctx 0.0.71 with the same inputs give the same tree; tests/mcts checks this.
"""
import functools

import flax
import jax
import jax.numpy as jnp

from jaxai.mcts import action_selection, qtransforms, seq_halving
from jaxai.mcts.outputs import PolicyOutput, RootFnOutput
from jaxai.mcts.search import search


# PUCT breaks exact ties between actions at random with jitter of this size (far below any meaningful
# score difference); it is what mctx adds, drawn from the same keys.
_PUCT_TIE_BREAK = 1e-7


@flax.struct.dataclass
class GumbelExtraData:
  root_gumbel: jax.Array  # (B, A) Gumbel noise drawn once per search (0 with gumbel_scale=0)


def muzero_policy(params, rng, root: RootFnOutput, recurrent_fn, num_simulations: int,
                  invalid_actions=None, max_depth: int | None = None, *, dirichlet_fraction=0.25,
                  dirichlet_alpha=0.3, pb_c_init=1.25, pb_c_base=19652, temperature=1.0,
                  qtransform=qtransforms.qtransform_by_parent_and_siblings) -> PolicyOutput:
  """AlphaZero / MuZero search: PUCT everywhere, Dirichlet noise mixed into the root prior.

  params: forwarded to recurrent_fn. rng: a jax.random key. root: RootFnOutput for B games.
  invalid_actions: (B, A) bool, True = illegal at the root (never searched nor played).
  dirichlet_fraction: weight of Dirichlet(dirichlet_alpha) noise in the root prior (0 = no noise).
  pb_c_init, pb_c_base: PUCT exploration constants. temperature: the action is sampled proportionally to
  visits^(1 / temperature); 0 = most visited (ties broken at random). A scalar, or (B,) per game.
  Returns PolicyOutput(action (B,), action_weights = root visit frequencies (B, A), search_tree).
  """
  _check_root(root, invalid_actions, num_simulations)
  rng, noise_key, search_key = jax.random.split(rng, 3)
  probs = jax.nn.softmax(root.prior_logits)  # (B, A)
  if not (isinstance(dirichlet_fraction, (int, float)) and dirichlet_fraction == 0):  # no noise: skip the draw
    noise = jax.random.dirichlet(noise_key, jnp.full(probs.shape[-1:], dirichlet_alpha), probs.shape[:1])
    probs = (1 - dirichlet_fraction) * probs + dirichlet_fraction * noise
  root = root.replace(prior_logits=_mask_invalid(_safe_log(probs), invalid_actions))

  scores = functools.partial(action_selection.puct_scores, pb_c_init=pb_c_init, pb_c_base=pb_c_base,
                             qtransform=qtransform)
  tree = search(params, search_key, root=root, recurrent_fn=recurrent_fn, root_scores_fn=scores,
                interior_scores_fn=scores, num_simulations=num_simulations, max_depth=max_depth,
                invalid_actions=invalid_actions, tie_break=_PUCT_TIE_BREAK)

  action_weights = tree.root_visit_probs()  # (B, A)
  temperature = jnp.asarray(temperature, action_weights.dtype)
  if temperature.ndim == 1:  # one per game
    temperature = temperature[:, None]
  logits = _safe_log(action_weights)
  logits = logits - jnp.max(logits, axis=-1, keepdims=True)  # keeps logits / small temperature finite
  logits = logits / jnp.maximum(temperature, jnp.finfo(logits.dtype).tiny)
  action = jax.random.categorical(rng, logits).astype(jnp.int32)
  return PolicyOutput(action=action, action_weights=action_weights, search_tree=tree)


def gumbel_muzero_policy(params, rng, root: RootFnOutput, recurrent_fn, num_simulations: int,
                         invalid_actions=None, max_depth: int | None = None, *,
                         max_num_considered_actions: int = 16, gumbel_scale=1.0,
                         qtransform=qtransforms.qtransform_completed_by_mix_value) -> PolicyOutput:
  """Gumbel MuZero (Danihelka et al., 2022): Sequential Halving with Gumbel at the root, deterministic
  improved-policy selection below it. Improves the policy even with very few simulations.

  max_num_considered_actions: actions sampled without replacement (via Gumbel top-k) at the root.
  gumbel_scale: scale of the Gumbel noise (0 = deterministic, e.g. for evaluation).
  qtransform: completes and scales the q-values (see qtransforms).
  Returns PolicyOutput(action = the best surviving candidate (B,), action_weights =
  softmax(logits + completed q), the policy-improvement target (B, A), search_tree).
  """
  _check_root(root, invalid_actions, num_simulations)
  root = root.replace(prior_logits=_mask_invalid(root.prior_logits, invalid_actions))
  rng, gumbel_key = jax.random.split(rng)
  logits = root.prior_logits  # (B, A)
  gumbel = gumbel_scale * jax.random.gumbel(gumbel_key, logits.shape, logits.dtype)

  root_scores = functools.partial(action_selection.gumbel_root_scores, num_simulations=num_simulations,
                                  max_num_considered_actions=max_num_considered_actions,
                                  qtransform=qtransform)
  interior_scores = functools.partial(action_selection.gumbel_interior_scores, qtransform=qtransform)
  tree = search(params, rng, root=root, recurrent_fn=recurrent_fn, root_scores_fn=root_scores,
                interior_scores_fn=interior_scores, num_simulations=num_simulations, max_depth=max_depth,
                invalid_actions=invalid_actions, extra_data=GumbelExtraData(root_gumbel=gumbel))

  # Play the best of the most visited candidates (the survivors of the last halving phase).
  visits = tree.root_visit_counts()  # (B, A)
  completed_q = jax.vmap(qtransform, in_axes=(0, None))(tree, tree.ROOT_INDEX)  # (B, A)
  scores = seq_halving.score_considered(jnp.max(visits, axis=-1, keepdims=True), gumbel, logits,
                                        completed_q, visits)
  action = action_selection.masked_argmax(scores, tree.root_invalid_actions)
  action_weights = jax.nn.softmax(_mask_invalid(logits + completed_q, invalid_actions))
  return PolicyOutput(action=action, action_weights=action_weights, search_tree=tree)


def _safe_log(probs):
  return jnp.log(jnp.maximum(probs, jnp.finfo(probs.dtype).tiny))


def _mask_invalid(logits, invalid_actions):
  """Gives illegal actions the lowest finite logit (not -inf, so a row with no legal action stays NaN-free
  under softmax). Without a mask the logits are returned unchanged."""
  if invalid_actions is None:
    return logits
  logits = logits - jnp.max(logits, axis=-1, keepdims=True)
  return jnp.where(invalid_actions, jnp.finfo(logits.dtype).min, logits)


def _check_root(root: RootFnOutput, invalid_actions, num_simulations: int):
  if root.prior_logits.ndim != 2:
    raise ValueError(f"root.prior_logits must be (B, A), got shape {root.prior_logits.shape}.")
  batch_size, num_actions = root.prior_logits.shape
  if root.value.shape != (batch_size,):
    raise ValueError(f"root.value must be (B,) = ({batch_size},), got shape {root.value.shape}.")
  if invalid_actions is not None and invalid_actions.shape != (batch_size, num_actions):
    raise ValueError(f"invalid_actions must be (B, A) = ({batch_size}, {num_actions}), got shape "
                     f"{invalid_actions.shape}.")
  if num_simulations < 1:
    raise ValueError(f"num_simulations must be >= 1, got {num_simulations}.")
