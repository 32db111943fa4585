"""Quantization through qwix (jaxai.compress.quantization): quantize-dequantize error within half a
scale step per channel (int8, int4), the PTQ int8 model close to float with 4x smaller kernels, static
scales calibrated from the batches they saw, the QAT forward pass fake-quantized with straight-through
gradients, and the settings qwix or XLA cannot run refused as UserErrors. (QAT training through the
trainer: tests/compress/test_compress_table.py, whose run is configs/mnist_qat.py:tiny.)"""
import functools

import jax
import numpy as np
import pytest
import qwix

from jaxai.compress import quantization
from jaxai.errors import UserError
from jaxai.models.cnn import CNN

X = jax.random.normal(jax.random.key(1), (8, 12, 12, 1))  # a batch of model inputs.


@functools.lru_cache(maxsize=None)
def small_cnn():
  model = CNN(features=(4, 8), dense=32, num_classes=5, convs_per_block=1)
  return model, jax.jit(model.init)(jax.random.key(0), X)


def forward(model, variables, x=X) -> np.ndarray:
  """Logits in inference mode, jitted (eagerly, each small op would compile on its own)."""
  return np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x))


def make_cfg(**overrides):
  cfg = quantization.default_config()
  cfg.update(overrides)
  return cfg


def kernels(qparams) -> dict:
  """{layer: QArray} of the quantized kernels."""
  return {name: layer["kernel"].array for name, layer in qparams.items()
          if "kernel" in layer and quantization.is_qarray(getattr(layer["kernel"], "array", None))}


@pytest.mark.parametrize("weights, bound", [("int8", 127), ("int4", 7)])
def test_quantize_dequantize_error_is_within_half_a_scale_step_per_channel(weights, bound):
  model, variables = small_cnn()
  _, qvars = quantization.quantize_variables(model, variables, make_cfg(weights=weights, activations="none"),
                                             X, train=False)
  quantized = kernels(qvars["params"])
  # Convolutions are int8 whatever the Dense weights are (int4 convolutions do not compile on XLA).
  assert {k: str(q.qvalue.dtype) for k, q in quantized.items()} == {
      "Conv_0": "int8", "Conv_1": "int8", "Dense_0": weights, "Dense_1": weights}
  for name, q in quantized.items():
    w = np.asarray(variables["params"][name]["kernel"])
    scale = np.asarray(q.scale)
    assert scale.shape == (1,) * (w.ndim - 1) + (w.shape[-1],)  # one scale per output channel.
    channel_bound = 127 if name.startswith("Conv") else bound
    absmax = np.abs(w).reshape(-1, w.shape[-1]).max(0)
    # qwix's symmetric scale: the largest weight maps to qmax + 0.5, the top of the qmax bucket.
    np.testing.assert_allclose(scale.reshape(-1), absmax / (channel_bound + 0.5), rtol=1e-6)
    error = np.abs(w - np.asarray(qwix.dequantize(q)))
    assert np.all(error <= scale / 2 * (1 + 1e-4)), (name, float((error / scale).max()))  # float32 rounding.
    assert error.max() > scale.min() / 100  # it did round.
    q_values = np.asarray(q.qvalue).astype(np.int32)  # -absmax lands on -(qmax + 0.5): rounds to -(qmax + 1).
    assert q_values.min() >= -channel_bound - 1 and q_values.max() <= channel_bound
    assert np.abs(q_values).max() >= channel_bound


def test_ptq_int8_logits_are_close_to_float_and_its_kernels_4x_smaller():
  model, variables = small_cnn()
  ptq, qvars = quantization.quantize_variables(model, variables, make_cfg(), X, train=False)
  logits, int8_logits = forward(model, variables), forward(ptq, qvars)
  error = np.abs(int8_logits - logits).max()
  assert 0 < error < 0.05 * np.abs(logits).max(), error
  assert (np.argmax(int8_logits, -1) == np.argmax(logits, -1)).mean() >= 0.75
  quantized = kernels(qvars["params"])
  float_kernels = quantization.size_bytes({k: variables["params"][k]["kernel"] for k in quantized})
  assert float_kernels == 4 * quantization.size_bytes([q.qvalue for q in quantized.values()])
  ratio = quantization.size_bytes(variables) / quantization.size_bytes(qvars)  # scales, biases, BN: float.
  assert 3.0 < ratio < 4.0, ratio
  int4 = quantization.quantize_variables(model, variables, make_cfg(weights="int4", activations="none"), X,
                                         train=False)[1]
  assert quantization.size_bytes(int4["params"]["Dense_0"]["kernel"].array.qvalue) == (
      quantization.size_bytes(qvars["params"]["Dense_0"]["kernel"].array.qvalue) / 2)


def test_calibration_collects_the_mean_absmax_of_the_batches_it_saw():
  model, variables = small_cnn()
  batches = [X, 3.0 * X, 0.5 * X]
  cfg = make_cfg(static_activations=True)
  stats = quantization.calibrate(model, variables, batches, cfg, train=False)
  assert set(stats) == {"Conv_0", "Conv_1", "Dense_0", "Dense_1"}
  first = stats["Conv_0"]["conv_general_dilated0_lhs"]  # Conv_0's input is the batch itself.
  assert int(first["count"]) == 3
  per_example_absmax = [np.abs(np.asarray(b)).reshape(len(b), -1).max(1).mean() for b in batches]
  np.testing.assert_allclose(float(first["sum_of_absmax"].reshape(())) / 3, np.mean(per_example_absmax),
                             rtol=1e-5)
  ptq, qvars = quantization.quantize_variables(model, variables, cfg, X, stats, train=False)
  scale = qvars["params"]["Conv_0"]["conv_general_dilated0_lhs_scale"].array
  np.testing.assert_allclose(float(scale.reshape(())), np.mean(per_example_absmax) / 127.5, rtol=1e-5)
  # One scale per tensor, fixed from batches up to 3x larger than X: coarser steps than X's own, so an
  # error larger than dynamic scales' (above), still small on average.
  logits = forward(model, variables)
  assert np.abs(forward(ptq, qvars) - logits).mean() < 0.1 * np.abs(logits).mean()
  with pytest.raises(UserError, match="calibration statistics"):
    quantization.quantize_variables(model, variables, cfg, X, None, train=False)


@pytest.mark.parametrize("overrides, message", [
    (dict(activations="int4"), "int4 x int4"),
    (dict(convs="int4"), "int4 convolutions"),
    (dict(weights="int2"), "weights='int2' is unknown"),
    (dict(mode="fp8"), "mode='fp8' is unknown"),
    (dict(activations="none", convs="float", static_activations=True), "nothing to calibrate"),
    (dict(mode="qat", static_activations=True), "leaks a tracer under jit"),
])
def test_settings_qwix_or_xla_cannot_run_are_user_errors(overrides, message):
  with pytest.raises(UserError, match=message):
    quantization.rules(make_cfg(**overrides))


def test_rules_are_explicit_per_layer_kind():
  conv, dense = quantization.rules(make_cfg(weights="int4", activations="none", static_activations=True))
  assert conv == dict(module_path=".*", op_names=quantization.CONV_OPS, weight_qtype="int8", act_qtype="int8",
                      act_static_scale=True)
  assert dense == dict(module_path=".*", op_names=quantization.DENSE_OPS, weight_qtype="int4", act_qtype=None,
                       act_static_scale=None)
  (dense,) = quantization.rules(make_cfg(convs="float"))
  assert dense["op_names"] == quantization.DENSE_OPS and dense["act_qtype"] == "int8"


def test_int4_packing_round_trips_two_values_per_byte():
  values = np.random.default_rng(0).integers(-8, 8, size=(7, 3)).astype(np.int8)  # 21: odd.
  packed = quantization.pack_int4(values)
  assert packed.dtype == np.uint8 and packed.shape == (11,)
  np.testing.assert_array_equal(quantization.unpack_int4(packed, values.shape), values)


def test_qat_forward_is_fake_quantized_with_straight_through_gradients():
  model, variables = small_cnn()
  qat = quantization.wrap(model, make_cfg(mode="qat"))
  fake, exact = forward(qat, variables), forward(model, variables)
  assert 0 < np.abs(fake - exact).max() < 0.05 * np.abs(exact).max()
  # Same params; the integer model computes what the fake-quantized forward pass did.
  ptq, qvars = quantization.quantize_variables(model, variables, make_cfg(), X, train=False)
  np.testing.assert_allclose(forward(ptq, qvars), fake, atol=1e-5)
  # Straight-through: the gradient of the rounded forward pass is the float one's, nearly.
  loss = lambda m: jax.jit(jax.grad(lambda p: m.apply({**variables, "params": p}, X, train=False).sum()))
  g_fake, g_exact = loss(qat)(variables["params"]), loss(model)(variables["params"])
  a, b = (np.asarray(g["Dense_0"]["kernel"]) for g in (g_fake, g_exact))
  assert np.abs(a).max() > 0 and np.abs(a - b).max() < 0.1 * np.abs(b).max()
