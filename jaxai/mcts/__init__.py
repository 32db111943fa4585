"""Batched Monte Carlo tree search in JAX with a function-valued API (a root output and a recurrent_fn).

    out = muzero_policy(params, rng, RootFnOutput(prior_logits, value, embedding), recurrent_fn, 64)
    out.action (B,), out.action_weights (B, A), out.search_tree (Tree)

Domain-agnostic: the game lives entirely in recurrent_fn. Conventions follow mctx (see outputs.py).
"""
from jaxai.mcts.outputs import PolicyOutput, RecurrentFnOutput, RootFnOutput
from jaxai.mcts.policies import GumbelExtraData, gumbel_muzero_policy, muzero_policy
from jaxai.mcts.qtransforms import qtransform_by_parent_and_siblings, qtransform_completed_by_mix_value
from jaxai.mcts.tree import SearchSummary, Tree

__all__ = ["RootFnOutput", "RecurrentFnOutput", "PolicyOutput", "muzero_policy", "gumbel_muzero_policy",
           "qtransform_by_parent_and_siblings", "qtransform_completed_by_mix_value", "Tree",
           "SearchSummary", "GumbelExtraData"]
