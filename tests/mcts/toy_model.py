"""A small deterministic model for search tests: a random linear-tanh state machine over a D-dim embedding.

Its recurrent_fn has the shape of the real thing (params pytree, batched actions, embedding pytree). With
quantum = 0 its priors and values are continuous, so exact ties between actions are rare; with quantum > 0
logits, values and rewards are rounded to multiples of it, so many actions tie exactly and the searches'
random tie-breaking is exercised.
"""
import jax
import jax.numpy as jnp


def init_params(rng, num_actions: int, dim: int = 8, quantum: float = 0.0):
  keys = jax.random.split(rng, 5)
  return {"quantum": jnp.float32(quantum),
          "action_embed": jax.random.normal(keys[0], (num_actions, dim)),
          "transition": jax.random.normal(keys[1], (dim, dim)) / jnp.sqrt(dim),
          "policy": jax.random.normal(keys[2], (dim, num_actions)),
          "value": jax.random.normal(keys[3], (dim,)) / jnp.sqrt(dim),
          "reward": jax.random.normal(keys[4], (dim,)) / jnp.sqrt(dim)}


def root_arrays(params, rng, batch_size: int):
  """(prior_logits (B, A), value (B,), embedding (B, D)) of random root states."""
  dim = params["transition"].shape[0]
  embedding = jax.random.normal(rng, (batch_size, dim))
  return (quantize(params, embedding @ params["policy"]), quantize(params, jnp.tanh(embedding @ params["value"])),
          embedding)


def quantize(params, x):
  quantum = params["quantum"]
  return jnp.where(quantum > 0, jnp.round(x / jnp.maximum(quantum, 1e-6)) * quantum, x)


def make_recurrent_fn(output_cls, discount: float = -1.0):
  """recurrent_fn for either library: output_cls is jaxai.mcts.RecurrentFnOutput or mctx.RecurrentFnOutput."""

  def recurrent_fn(params, rng, action, embedding):
    del rng
    embedding = jnp.tanh(embedding @ params["transition"] + params["action_embed"][action])  # (B, D)
    out = output_cls(reward=quantize(params, 0.1 * jnp.tanh(embedding @ params["reward"])),
                     discount=jnp.full(action.shape, discount, embedding.dtype),
                     prior_logits=quantize(params, embedding @ params["policy"]),
                     value=quantize(params, jnp.tanh(embedding @ params["value"])))
    return out, embedding

  return recurrent_fn
