"""Magnitude pruning (jaxai.compress.pruning): pruned weights are exactly zero after every update and
through checkpoint and resume, the cubic schedule reaches its target at end_step and not before, global
and per-layer scopes differ as they should, structured pruning zeroes whole channels, and bad settings
raise UserError before anything is compiled."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxai.compress import pruning, sparsity
from jaxai.core import optim
from jaxai.errors import UserError
from jaxai.tasks import classification

from tests.helpers import assert_resume_is_bitwise, checkpoint_steps, load_config, restore_state


def make_cfg(**overrides):
  cfg = pruning.default_config()
  cfg.method = "magnitude"
  cfg.update(overrides)
  return cfg


def toy_params(seed=0):
  k = jax.random.split(jax.random.key(seed), 3)
  return {"Dense_0": {"kernel": jax.random.normal(k[0], (40, 30)), "bias": jnp.ones((30,))},
          "Dense_1": {"kernel": 5.0 * jax.random.normal(k[1], (30, 20))},  # larger weights.
          "Conv_0": {"kernel": jax.random.normal(k[2], (3, 3, 4, 8))}}


def kernels(params):
  """The prunable leaves, as numpy arrays."""
  params = jax.device_get(params)
  return [np.asarray(params[name]["kernel"]) for name in ("Dense_0", "Dense_1", "Conv_0")]


def zero_fraction(params):
  ks = kernels(params)
  return sum(int((k == 0).sum()) for k in ks) / sum(k.size for k in ks)


def train(tx, steps, params=None):
  """Runs `steps` jitted adam-like updates on random gradients; yields (updates taken, params, state)."""
  params = toy_params() if params is None else params
  state = tx.init(params)

  @jax.jit
  def step(params, state, t):
    rng = jax.random.fold_in(jax.random.key(1), t)
    grads = jax.tree.map(lambda p: jax.random.normal(rng, p.shape), params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  for t in range(steps):
    params, state = step(params, state, t)
    yield t + 1, params, state


def test_gradual_schedule_reaches_target_at_end_step_and_not_before():
  cfg = make_cfg(sparsity=0.8, initial_sparsity=0.1, begin_step=3, end_step=13, frequency=4)
  schedule = pruning.check_config(cfg, 16)
  expected_after = jax.jit(jax.vmap(lambda t: pruning.polynomial_sparsity(t, *schedule)))(jnp.arange(17))
  tx = pruning.masked(optax.adam(0.05), cfg, total_steps=16)
  weights = sum(k.size for k in kernels(toy_params()))
  seen = []
  for t, params, state in train(tx, 16):
    expected = float(expected_after[t])
    assert zero_fraction(params) == pytest.approx(expected, abs=1.5 / weights), t
    for k, m in zip(kernels(params), kernels(state.masks)):  # pruned weights are exactly zero.
      assert np.all(k[~m] == 0.0), t
    assert state.masks["Dense_0"]["bias"] == optax.MaskedNode()
    seen.append(expected)
  # Zhu & Gupta at the mask steps 3, 7, 11 and 13 (end), held in between; nothing before begin_step.
  cubic = lambda t: 0.8 + (0.1 - 0.8) * (1 - (t - 3) / 10) ** 3
  want = [0, 0, cubic(3), cubic(3), cubic(3), cubic(3), cubic(7), cubic(7), cubic(7), cubic(7),
          cubic(11), cubic(11), 0.8, 0.8, 0.8, 0.8]
  np.testing.assert_allclose(seen, want, rtol=1e-6)
  assert max(seen[:12]) < 0.8 - 1e-3 and seen[12] == pytest.approx(0.8)


def test_one_shot_prunes_once_then_fine_tunes_the_rest():
  tx = pruning.masked(optax.sgd(0.1), make_cfg(sparsity=0.5, begin_step=4, end_step=4, scope="layer"), 8)
  masks_at = {}
  for t, params, state in train(tx, 8):
    for k in kernels(params):
      assert (k == 0).mean() == pytest.approx(0.5 if t >= 4 else 0.0, abs=0.01), t
    masks_at[t] = kernels(state.masks)
  for t in (5, 6, 7, 8):  # the masks never change after the one mask step.
    for a, b in zip(masks_at[4], masks_at[t]):
      np.testing.assert_array_equal(a, b)


def test_mask_step_at_zero_takes_effect_in_the_first_update():
  tx = pruning.masked(optax.sgd(0.1), make_cfg(sparsity=0.7, begin_step=0, end_step=0), 3)
  for t, params, _ in train(tx, 3):
    assert zero_fraction(params) == pytest.approx(0.7, abs=1e-3)


def test_global_scope_prunes_small_layers_harder_than_layer_scope():
  params = toy_params()
  glob, _ = pruning.prune(params, 0.6, scope="global")
  layer, _ = pruning.prune(params, 0.6, scope="layer")
  assert zero_fraction(glob) == pytest.approx(0.6, abs=1e-3) == zero_fraction(layer)
  per_layer = sparsity.layer_sparsity(layer)
  assert set(per_layer) == {"Dense_0/kernel", "Dense_1/kernel", "Conv_0/kernel"}  # not the bias.
  for fraction in per_layer.values():
    assert fraction == pytest.approx(0.6, abs=1e-3)
  per_global = sparsity.layer_sparsity(glob)
  assert per_global["Dense_1/kernel"] < 0.2 < 0.7 < per_global["Dense_0/kernel"]  # 5x larger weights survive.
  # One threshold: every pruned weight is no larger than every kept one, across layers.
  flat = lambda tree: np.concatenate([np.abs(k).ravel() for k in kernels(tree)])
  original, pruned = flat(params), flat(glob)
  assert original[pruned == 0].max() <= original[pruned != 0].min()
  np.testing.assert_array_equal(glob["Dense_0"]["bias"], params["Dense_0"]["bias"])


def test_structured_pruning_zeroes_whole_output_channels_by_l2_norm():
  params = toy_params()
  pruned, masks = pruning.prune(params, 0.5, scope="layer", structured=True, prunable=r"Conv_0/kernel")
  kernel, original = np.asarray(pruned["Conv_0"]["kernel"]), np.asarray(params["Conv_0"]["kernel"])
  norms = np.sqrt((original ** 2).sum(axis=(0, 1, 2)))          # (8,) one per output channel.
  zero_channels = np.all(kernel == 0, axis=(0, 1, 2))
  assert zero_channels.sum() == 4
  np.testing.assert_array_equal(zero_channels, norms < np.median(norms))
  np.testing.assert_array_equal(kernel[..., ~zero_channels], original[..., ~zero_channels])
  assert masks["Dense_0"]["kernel"] == optax.MaskedNode()
  np.testing.assert_array_equal(pruned["Dense_0"]["kernel"], params["Dense_0"]["kernel"])


def test_sparsity_evaluator_reports_each_layer():
  pruned, _ = pruning.prune(toy_params(), 0.6, scope="layer")
  ev = sparsity.evaluator()
  summaries = ev.finish(jax.device_get(jax.jit(ev.fn)(pruned, jax.random.key(0))), 0)
  assert summaries["prune/sparsity"] == pytest.approx(0.6, abs=1e-3)
  text = summaries["prune/layers"].text
  assert "Dense_1/kernel" in text and "3x3x4x8" in text and "bias" not in text
  assert text == sparsity.table(pruned)


@pytest.mark.parametrize("overrides, mentions", [
    (dict(sparsity=1.0), "pruning.sparsity"),
    (dict(sparsity=-0.1), "pruning.sparsity"),
    (dict(initial_sparsity=0.95), "initial_sparsity"),
    (dict(begin_step=8, end_step=4), "begin_step <= end_step"),
    (dict(end_step=11), "end_step"),
    (dict(begin_step=9), r"3/4 of the run: 7"),
    (dict(frequency=0), "pruning.frequency"),
    (dict(scope="row"), "pruning.scope"),
    (dict(method="random"), "pruning.method"),
    (dict(prunable="Dense_(0"), "pruning.prunable"),
])
def test_bad_settings_raise_user_error_when_the_optimizer_is_made(overrides, mentions):
  cfg = optim.default_config()
  cfg.pruning = make_cfg(**overrides)
  with pytest.raises(UserError, match=mentions):
    optim.make_optimizer(cfg, total_steps=10)


def test_prunable_that_matches_nothing_is_refused_at_init():
  cfg = optim.default_config()
  cfg.pruning = make_cfg(prunable=r"Dense_0/bias|Decoder_.*")  # a 1-D leaf and a typo.
  tx = optim.make_optimizer(cfg, total_steps=10)
  with pytest.raises(UserError, match=r"prunable=.*matches no parameter with ndim >= 2.*Dense_0/kernel"):
    jax.eval_shape(tx.init, toy_params())


def test_masks_stay_applied_through_training_checkpoint_and_resume(data_dir, tmp_path):
  config = load_config("mnist_pruning")  # 12 updates, mask steps at 2, 4, 6, 8; checkpoints every 4.
  assert_resume_is_bitwise(config, classification.make_task, tmp_path)  # trains twice: whole, then resumed.
  task = classification.make_task(config)
  schedule = pruning.check_config(config.optimizer.pruning, task.num_train_steps)
  assert checkpoint_steps(tmp_path) == [4, 8, 12]
  for step in (4, 8, 12):
    state = restore_state(tmp_path, task, step)
    expected = float(pruning.polynomial_sparsity(step, *schedule))
    assert sparsity.total_sparsity(sparsity.zero_counts(state.params)) == pytest.approx(expected, abs=1e-3)
    masks = pruning.masks_of(state.opt_state)
    for layer in ("Dense_0", "Dense_1", "Dense_2"):
      kernel, mask = np.asarray(state.params[layer]["kernel"]), np.asarray(masks[layer]["kernel"])
      assert mask.dtype == bool and not mask.all()
      np.testing.assert_array_equal(kernel[~mask], 0.0)
  assert expected == pytest.approx(0.9)
