"""Optimizers and schedules built from config: every name builds, schedules follow their formulas,
weight decay respects its mask, clipping bounds the update, and mistakes raise UserError."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxai.core import optim
from jaxai.core.errors import UserError


def make_cfg(**overrides):
  cfg = optim.default_config()
  cfg.update(overrides)
  return cfg


def params():
  return {"dense": {"kernel": jnp.ones((3, 2)), "bias": jnp.ones((2,))},
          "norm": {"scale": jnp.ones((2,))}}


def one_update(tx, params, grads):
  updates, _ = tx.update(grads, tx.init(params), params)
  return updates


@pytest.mark.parametrize("schedule", optim.SCHEDULES)
@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_every_optimizer_and_schedule_builds_and_steps(name, schedule):
  cfg = make_cfg(name=name, schedule=schedule, warmup_steps=2, learning_rate=0.1)
  tx = optim.make_optimizer(cfg, total_steps=10)
  p = params()
  grads = jax.tree.map(jnp.ones_like, p)
  state = tx.init(p)
  for _ in range(3):
    updates, state = tx.update(grads, state, p)
    p = optax.apply_updates(p, updates)
  for leaf in jax.tree.leaves(p):
    assert np.all(np.isfinite(leaf))
  assert np.all(p["dense"]["kernel"] < 1.0), "a positive gradient must lower the parameters"


def test_warmup_then_cosine_matches_formula():
  peak, warmup, total, alpha = 0.4, 10, 110, 0.1
  cfg = make_cfg(schedule="cosine", learning_rate=peak, warmup_steps=warmup, end_learning_rate_factor=alpha)
  lr = optim.make_schedule(cfg, total)

  def expected(t):
    if t < warmup:
      return peak * t / warmup
    progress = min(t - warmup, total - warmup) / (total - warmup)
    return peak * (alpha + (1 - alpha) * 0.5 * (1 + math.cos(math.pi * progress)))

  for t in (0, 1, 5, 9, 10, 11, 35, 60, 85, 109, 110, 200):
    assert float(lr(t)) == pytest.approx(expected(t), rel=1e-5, abs=1e-7), t
  assert float(lr(warmup)) == pytest.approx(peak)
  assert float(lr(total)) == pytest.approx(peak * alpha)


def test_linear_and_constant_schedules():
  lin = optim.make_schedule(make_cfg(schedule="linear", learning_rate=1.0, end_learning_rate_factor=0.5), 100)
  for t in (0, 25, 50, 100):
    assert float(lin(t)) == pytest.approx(1.0 - 0.5 * t / 100)
  const = optim.make_schedule(make_cfg(schedule="constant", learning_rate=0.3, warmup_steps=4), 100)
  assert [float(const(t)) for t in (0, 2, 4, 50, 99)] == pytest.approx([0.0, 0.15, 0.3, 0.3, 0.3])


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_kernels_mask_decays_only_kernels(name):
  wd = 0.1
  cfg = make_cfg(name=name, schedule="constant", learning_rate=1.0, momentum=0.0, weight_decay=wd,
                 weight_decay_mask="kernels")
  p = params()
  zero_grads = jax.tree.map(jnp.zeros_like, p)  # any update is then weight decay alone.
  updates = one_update(optim.make_optimizer(cfg, 10), p, zero_grads)
  np.testing.assert_allclose(updates["dense"]["kernel"], -wd * p["dense"]["kernel"], rtol=1e-6)
  np.testing.assert_array_equal(updates["dense"]["bias"], 0.0)
  np.testing.assert_array_equal(updates["norm"]["scale"], 0.0)

  cfg.weight_decay_mask = "all"
  updates = one_update(optim.make_optimizer(cfg, 10), p, zero_grads)
  for leaf, value in zip(jax.tree.leaves(updates), jax.tree.leaves(p)):
    np.testing.assert_allclose(leaf, -wd * value, rtol=1e-6)


def test_grad_clipping_bounds_the_update():
  clip, lr = 0.5, 1.0
  cfg = make_cfg(name="sgd", schedule="constant", learning_rate=lr, momentum=0.0, grad_clip_norm=clip)
  p = params()
  huge = jax.tree.map(lambda x: 1e6 * jnp.ones_like(x), p)
  updates = one_update(optim.make_optimizer(cfg, 10), p, huge)
  assert float(optax.global_norm(updates)) == pytest.approx(lr * clip, rel=1e-5)
  # Direction is kept: the clipped update is a positive multiple of -grad.
  for u in jax.tree.leaves(updates):
    assert np.all(u < 0)
  small = jax.tree.map(lambda x: 1e-3 * jnp.ones_like(x), p)  # below the threshold: untouched.
  updates = one_update(optim.make_optimizer(cfg, 10), p, small)
  for u, g in zip(jax.tree.leaves(updates), jax.tree.leaves(small)):
    np.testing.assert_allclose(u, -lr * g, rtol=1e-6)


@pytest.mark.parametrize("overrides, mentions", [
    (dict(name="rmsprop"), "optimizer.name"),
    (dict(schedule="exponential"), "optimizer.schedule"),
    (dict(weight_decay=0.1, weight_decay_mask="biases"), "weight_decay_mask"),
    (dict(name="adam", weight_decay=0.1), "adamw"),
    (dict(warmup_steps=10), "warmup_steps"),
    (dict(warmup_steps=-1), "warmup_steps"),
])
def test_bad_settings_raise_user_error(overrides, mentions):
  with pytest.raises(UserError, match=mentions):
    optim.make_optimizer(make_cfg(**overrides), total_steps=10)
