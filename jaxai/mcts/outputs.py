"""What a search consumes (the network's outputs at the root and inside the tree) and what it returns.

Shapes: B games searched together, A actions. Embeddings are any pytree whose leaves lead with B.

Two-player zero-sum games: every value and reward is from the perspective of the player to move at the node
it belongs to; `recurrent_fn` returns discount = -1 between a move and the opponent's value (and 0 at terminal
states), so q(s, a) = reward + discount * value(s') is seen from the mover's side.
"""
from typing import Any, Callable

import flax
import jax

Params = Any  # any pytree, forwarded untouched to recurrent_fn
Embedding = Any  # pytree, leaves (B, ...)


@flax.struct.dataclass
class RootFnOutput:
  prior_logits: jax.Array  # (B, A) policy-network logits at the root
  value: jax.Array  # (B,) value estimate of the root state
  embedding: Embedding  # (B, ...) whatever recurrent_fn needs to step from the root


@flax.struct.dataclass
class RecurrentFnOutput:
  reward: jax.Array  # (B,) reward of the transition, to the player who moved
  discount: jax.Array  # (B,) factor between reward and value: gamma, -1 for two-player games, 0 when terminal
  prior_logits: jax.Array  # (B, A) logits at the new state
  value: jax.Array  # (B,) value of the new state, to the player to move there


@flax.struct.dataclass
class PolicyOutput:
  action: jax.Array  # (B,) int32 action proposed by the search
  action_weights: jax.Array  # (B, A) policy target, sums to 1 (train with cross-entropy against it)
  search_tree: Any  # the finished jaxai.mcts.tree.Tree


# recurrent_fn(params, rng, action (B,) int32, embedding (B, ...)) -> (RecurrentFnOutput, new embedding (B, ...))
RecurrentFn = Callable[[Params, jax.Array, jax.Array, Embedding], tuple[RecurrentFnOutput, Embedding]]
