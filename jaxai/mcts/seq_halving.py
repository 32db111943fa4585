"""Sequential Halving (Karnin et al., 2013) as a schedule of visit counts, for Gumbel MuZero's root.

The root keeps m candidate actions and spends the budget in phases; each phase gives every remaining
candidate the same number of extra visits, then keeps the better half (at least 2). Writing that down as the
sequence "which visit count the next simulation should go to" lets the search run it with a plain argmax: the
next simulation goes to the best-scoring candidate whose visit count equals the scheduled one.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np


def considered_visit_sequence(max_num_considered: int, num_simulations: int) -> tuple[int, ...]:
  """For each simulation, the visit count that the action to visit currently has. Length num_simulations.

  With m = max_num_considered candidates and n simulations, a phase with k candidates gives each
  max(1, floor(n / (ceil(log2 m) * k))) visits, one round at a time: a round appends k copies of the current
  visit level. With m <= 1 there is nothing to halve and the one action is visited every time.
  """
  if max_num_considered <= 1:
    return tuple(range(num_simulations))
  num_phases = math.ceil(math.log2(max_num_considered))
  sequence: list[int] = []
  level, considered = 0, max_num_considered
  while len(sequence) < num_simulations:
    rounds = max(1, int(num_simulations / (num_phases * considered)))
    for _ in range(rounds):
      sequence += [level] * considered
      level += 1
    considered = max(2, considered // 2)
  return tuple(sequence[:num_simulations])


def considered_visit_table(max_num_considered: int, num_simulations: int) -> np.ndarray:
  """(max_num_considered + 1, num_simulations) int32: row m is the sequence for m candidates, so a game
  with fewer legal actions than max_num_considered looks up its own row."""
  return np.array([considered_visit_sequence(m, num_simulations) for m in range(max_num_considered + 1)],
                  np.int32).reshape(max_num_considered + 1, num_simulations)


def score_considered(considered_visit, gumbel, logits, qvalues, visits) -> jax.Array:
  """gumbel + logits + sigma(q), restricted to the actions whose visit count equals considered_visit
  (all others -inf). Shapes broadcast: (...,) or (..., 1) and (..., A) -> (..., A).

  The sum is floored at -1e9 so a masked-out logit never yields -inf for a candidate: an action that is the
  only candidate can still be chosen.
  """
  logits = logits - jnp.max(logits, axis=-1, keepdims=True)
  penalty = jnp.where(visits == considered_visit, 0.0, -jnp.inf)
  return jnp.maximum(-1e9, gumbel + logits + qvalues) + penalty
