"""A small deterministic model for search tests: a random linear-tanh state machine over a D-dim embedding.

Its recurrent_fn has the shape of the real thing (params pytree, batched actions, embedding pytree) and gives
distinct, continuous priors and values, so exact ties (which mctx and jaxai.mcts break at random) do not occur.
"""
import jax
import jax.numpy as jnp


def init_params(rng, num_actions: int, dim: int = 8):
  keys = jax.random.split(rng, 5)
  return {"action_embed": jax.random.normal(keys[0], (num_actions, dim)),
          "transition": jax.random.normal(keys[1], (dim, dim)) / jnp.sqrt(dim),
          "policy": jax.random.normal(keys[2], (dim, num_actions)),
          "value": jax.random.normal(keys[3], (dim,)) / jnp.sqrt(dim),
          "reward": jax.random.normal(keys[4], (dim,)) / jnp.sqrt(dim)}


def root_arrays(params, rng, batch_size: int):
  """(prior_logits (B, A), value (B,), embedding (B, D)) of random root states."""
  dim = params["transition"].shape[0]
  embedding = jax.random.normal(rng, (batch_size, dim))
  return embedding @ params["policy"], jnp.tanh(embedding @ params["value"]), embedding


def make_recurrent_fn(output_cls, discount: float = -1.0):
  """recurrent_fn for either library: output_cls is jaxai.mcts.RecurrentFnOutput or mctx.RecurrentFnOutput."""

  def recurrent_fn(params, rng, action, embedding):
    del rng
    embedding = jnp.tanh(embedding @ params["transition"] + params["action_embed"][action])  # (B, D)
    out = output_cls(reward=0.1 * jnp.tanh(embedding @ params["reward"]),
                     discount=jnp.full(action.shape, discount, embedding.dtype),
                     prior_logits=embedding @ params["policy"],
                     value=jnp.tanh(embedding @ params["value"]))
    return out, embedding

  return recurrent_fn
