"""The train state: a pytree of arrays only, so checkpointing and sharding need nothing special.

Behaviour (the model's `apply`, the optax transformation) lives in the domain's step functions;
the state holds numbers. Domains with more to carry (target networks, a second model, masks) put it
in `extra`, or define their own dataclass with a `step` field.
"""
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # () int32: train steps taken (a train step may make several optimizer updates).
  params: Any              # trainable parameters (Flax 'params' collection).
  opt_state: Any           # optax state for `params`.
  model_state: Any = None  # other mutable collections, e.g. {'batch_stats': ...}; {} if none.
  extra: Any = None        # domain-specific arrays; None if unused.

  @classmethod
  def create(cls, params, tx, model_state=None, extra=None) -> "TrainState":
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
               model_state={} if model_state is None else model_state, extra=extra)

  def apply_gradients(self, tx, grads, **changes) -> "TrainState":
    """One optimizer update that is the whole train step (step + 1)."""
    updates, opt_state = tx.update(grads, self.opt_state, self.params)
    params = optax.apply_updates(self.params, updates)
    return self.replace(step=self.step + 1, params=params, opt_state=opt_state, **changes)
