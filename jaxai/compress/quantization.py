"""Quantization through qwix: quantization-aware training (a model transform applied from config)
and post-training quantization of a trained model's weights and activations.

Which layer gets what (`rules(cfg)`, the same for QAT and PTQ, so a QAT run is converted with the
rules it trained with):
  Dense layers (dot_general / einsum):  weights `cfg.weights` (int8 or int4, per output channel),
                                        inputs `cfg.activations` (int8, or 'none' = weight-only).
  Convolutions (conv_general_dilated):  `cfg.convs`: 'int8' = int8 weights (per output channel) and
                                        int8 inputs, or 'float' = not quantized.
Activation scales are per example and computed on the fly ('dynamic'), or with
`cfg.static_activations` fixed from statistics collected over calibration batches of training
data (`calibrate`), one scale per tensor. All scales are symmetric (absmax). Static QAT (statistics
collected while training) works for Dense layers only: qwix 0.1.8 cannot initialize a QAT
convolution with static scales under jit, so that combination is a UserError too.

Why convolutions have their own setting: qwix's quantized convolution needs activations of the
same type as its weights, and XLA (CPU and GPU) rejects sub-byte int4 operands of a convolution or
of an int4 x int4 product. So int4 is offered for Dense weights only, with int8 or float inputs,
while convolutions stay int8 (or float); the combinations XLA cannot run are UserErrors here.

    qat_model = wrap(model, cfg)                     # cfg.mode == 'qat': fake quantization in the
                                                     # forward pass, straight-through gradients.
    stats = calibrate(model, variables, batches, cfg, train=False)     # static activations only
    ptq_model, qvars = quantize_variables(model, variables, cfg, x, stats, train=False)
    logits = ptq_model.apply(qvars, x, train=False)  # int8 / int4 weights and integer products
    size_bytes(qvars)                                # bytes of the stored values
"""
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import qwix

from jaxai.errors import UserError

MODES = ("none", "qat", "ptq")
WEIGHTS = ("int8", "int4")
ACTIVATIONS = ("int8", "none")
CONVS = ("int8", "float")
DENSE_OPS = ("dot_general", "einsum")
CONV_OPS = ("conv_general_dilated",)
QUANT_STATS = "quant_stats"  # the Flax collection of calibration statistics (qwix's name).


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      mode="none",              # 'none' | 'qat' (train with fake quantization) | 'ptq' (a quantized
                                # model for evaluation; its weights come from `quantize_variables`).
      weights="int8",           # Dense weights: 'int8' | 'int4' (per output channel).
      activations="int8",       # Dense inputs: 'int8' | 'none' (weight-only).
      convs="int8",             # convolutions: 'int8' (weights and inputs) | 'float' (not quantized).
      static_activations=False,  # calibrated activation scales (quant_stats) instead of per-batch ones.
      module_path=".*",         # regex over module paths that are quantized (e.g. 'Dense_.*').
  ))


def check(cfg: ml_collections.ConfigDict) -> None:
  """UserError for settings that are unknown or that qwix / XLA cannot run."""
  where = "config.quantization"
  if cfg.mode not in MODES:
    raise UserError(f"{where}.mode={cfg.mode!r} is unknown; use one of {MODES}.")
  if cfg.weights not in WEIGHTS:
    raise UserError(f"{where}.weights={cfg.weights!r} is unknown; use one of {WEIGHTS}.")
  if cfg.activations not in ACTIVATIONS:
    raise UserError(f"{where}.activations={cfg.activations!r} is not supported; use one of {ACTIVATIONS}"
                    + (": XLA (CPU and GPU) cannot compile int4 x int4 products, so int4 is for Dense "
                       "weights only (weights='int4' with activations 'int8' or 'none')."
                       if cfg.activations == "int4" else "."))
  convs = cfg.get("convs", "int8")
  if convs not in CONVS:
    raise UserError(f"{where}.convs={convs!r} is not supported; use one of {CONVS}: qwix quantizes a "
                    "convolution's weights and inputs to the same type, and XLA cannot compile int4 "
                    "convolutions, so a convolution is int8 (weights and inputs) or float.")
  if cfg.mode == "qat" and cfg.static_activations and convs == "int8":
    raise UserError(f"{where}: mode='qat' with static_activations=True and convs='int8' cannot be "
                    "initialized: qwix 0.1.8 creates a convolution's activation statistics inside a "
                    "custom_vjp, which leaks a tracer under jit. Train QAT with dynamic scales "
                    "(static_activations=False) and calibrate static ones afterwards (python -m "
                    "jaxai.compress_table --variants=int8_static), or keep convolutions float (convs='float').")
  if cfg.static_activations and cfg.activations == "none" and convs == "float":
    raise UserError(f"{where}.static_activations=True with activations='none' and convs='float': no "
                    "activation is quantized, so there is nothing to calibrate. Set activations='int8' "
                    "or static_activations=False.")


def rules(cfg: ml_collections.ConfigDict) -> list[dict]:
  """The qwix rule settings of `cfg` (checked), first match wins: convolutions, then Dense layers."""
  check(cfg)
  static = bool(cfg.static_activations)
  found = []
  if cfg.get("convs", "int8") == "int8":
    found.append(dict(module_path=cfg.module_path, op_names=CONV_OPS, weight_qtype="int8",
                      act_qtype="int8", act_static_scale=static))
  dense_act = None if cfg.activations == "none" else cfg.activations
  found.append(dict(module_path=cfg.module_path, op_names=DENSE_OPS, weight_qtype=cfg.weights,
                    act_qtype=dense_act, act_static_scale=static if dense_act else None))
  return found


def describe(cfg: ml_collections.ConfigDict) -> str:
  """'Dense w int4 / a float, convs w8a8, dynamic' and the like (for tables and logs)."""
  check(cfg)
  dense = f"Dense w {cfg.weights} / a {'float' if cfg.activations == 'none' else cfg.activations}"
  convs = "convs w8a8" if cfg.get("convs", "int8") == "int8" else "convs float"
  quantized_acts = cfg.activations != "none" or cfg.get("convs", "int8") == "int8"
  return f"{dense}, {convs}" + (f", {'static' if cfg.static_activations else 'dynamic'}" if quantized_acts else "")


def qat_model(model, cfg: ml_collections.ConfigDict):
  """`model` with fake quantization (qwix QtProvider): quantize-dequantize in the forward pass,
  float (straight-through) gradients. Same params; with static activations a 'quant_stats'
  collection, updated when applied with it mutable."""
  return qwix.quantize_model(model, qwix.QtProvider([qwix.QtRule(**r) for r in rules(cfg)]))


def ptq_model(model, cfg: ml_collections.ConfigDict):
  """`model` computing with integer weights (qwix PtqProvider); its params come from `quantize_variables`."""
  return qwix.quantize_model(model, qwix.PtqProvider([qwix.QuantizationRule(**r) for r in rules(cfg)]))


def wrap(model, cfg: ml_collections.ConfigDict):
  """The model `cfg.mode` asks for: QAT ('qat'), integer PTQ ('ptq'), or `model` itself ('none').

  A 'ptq' model is for evaluation: its params are WithAux(QArray) leaves made by `quantize_variables`
  (its own `init` gives them from random float weights), so it cannot be trained."""
  check(cfg)
  if cfg.mode == "qat":
    return qat_model(model, cfg)
  if cfg.mode == "ptq":
    return ptq_model(model, cfg)
  return model


def calibrate(model, variables: dict, batches: Iterable, cfg: ml_collections.ConfigDict,
              **apply_kwargs) -> dict:
  """Calibration statistics (the 'quant_stats' collection) of `model` with `variables` (float or QAT-
  trained) over `batches` of model inputs (calibration batches of training data, preprocessed as the
  model sees them; all of one shape, so one compilation serves all). Each statistic is the running
  mean over batches of each batch's mean per-example absmax. `apply_kwargs` go to `apply` (e.g.
  train=False: inference mode)."""
  cfg = ml_collections.ConfigDict(dict(cfg.to_dict(), static_activations=True, mode="ptq"))
  qat = qat_model(model, cfg)
  variables = {k: jax.tree.map(jnp.asarray, v) for k, v in variables.items() if k != QUANT_STATS}
  iterator = iter(batches)
  try:
    first = next(iterator)
  except StopIteration:
    raise UserError("quantization.calibrate got no calibration batches.") from None
  shapes = jax.eval_shape(lambda x: qat.init(jax.random.key(0), x, **apply_kwargs), first)
  if QUANT_STATS not in shapes:
    raise UserError(f"No layer matches config.quantization.module_path={cfg.module_path!r} with an "
                    "activation to calibrate (see jaxai.compress.quantization.rules).")
  stats = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes[QUANT_STATS])

  @jax.jit
  def update(variables, stats, x):  # variables as an argument: no constant folding over the weights.
    # qwix 0.1.8's QAT convolution updates its statistics inside a custom_vjp, which leaks a tracer
    # when only the forward pass is traced; through jax.vjp the statistics come out as aux (the
    # pullback is never called, so no backward pass is computed).
    forward = lambda params: qat.apply({**variables, "params": params, QUANT_STATS: stats}, x,
                                       mutable=[QUANT_STATS], **apply_kwargs)
    _, _, new = jax.vjp(forward, variables["params"], has_aux=True)
    return new[QUANT_STATS]

  for x in [first, *iterator]:
    stats = update(variables, stats, x)
  return jax.device_get(stats)


def quantize_variables(model, variables: dict, cfg: ml_collections.ConfigDict, sample_input,
                       quant_stats: dict | None = None, **apply_kwargs) -> tuple[Any, dict]:
  """(the PTQ model, its variables): `variables`' float params quantized by the rules of `cfg`
  (WithAux(QArray(qvalue int8/int4, scale float32)) for each quantized kernel; static activation
  scales from `quant_stats`, e.g. `calibrate`'s or a static QAT run's), the other collections (batch
  statistics) kept. `sample_input` (any batch of model inputs) gives the shapes."""
  variables = jax.tree.map(jnp.asarray, variables)  # qwix quantizes jax arrays only.
  pm = ptq_model(model, cfg)
  abstract = jax.eval_shape(lambda x: pm.init(jax.random.key(0), x, **apply_kwargs), sample_input)
  if quant_stats is None:
    quant_stats = variables.get(QUANT_STATS) if cfg.static_activations else None
  if cfg.static_activations and not quant_stats:
    raise UserError("Static activation scales need calibration statistics: pass quant_stats from "
                    "jaxai.compress.quantization.calibrate (or a static QAT run's model_state).")
  stats = jax.device_get(quant_stats) if cfg.static_activations else {}  # concrete: qwix checks counts.
  # One compiled program for every leaf (eagerly, each small op of each leaf would compile alone).
  qparams = jax.jit(lambda params: qwix.quantize_params(params, abstract["params"], stats))(variables["params"])
  rest = {k: v for k, v in variables.items() if k not in ("params", QUANT_STATS)}
  return pm, {"params": qparams, **rest}


def leaf_bits(dtype) -> int:
  """Bits per stored element: int4 4, int8 8, float32 32."""
  return int(jax.dtypes.itemsize_bits(np.dtype(dtype)))


def size_bytes(tree) -> float:
  """Bytes of the stored values of every array in `tree` (quantized values at their width: int8 1 byte,
  int4 half a byte per element; scales and float leaves at theirs, float32 4)."""
  return sum(np.prod(x.shape, dtype=np.int64) * leaf_bits(x.dtype) / 8 for x in jax.tree.leaves(tree))


def pack_int4(values: np.ndarray) -> np.ndarray:
  """int4 values (any shape, n elements) -> uint8 (ceil(n / 2),): two per byte, the first in the low nibble."""
  flat = np.asarray(values).astype(np.int8).reshape(-1)
  if flat.size % 2:
    flat = np.concatenate([flat, np.zeros(1, np.int8)])
  nibbles = (flat.astype(np.uint8) & 0xF).reshape(-1, 2)
  return nibbles[:, 0] | (nibbles[:, 1] << 4)


def unpack_int4(packed: np.ndarray, shape) -> np.ndarray:
  """The inverse of `pack_int4`: int8 values in [-8, 7] of `shape`."""
  nibbles = np.stack([packed & 0xF, packed >> 4], axis=-1).reshape(-1).astype(np.int8)
  nibbles = np.where(nibbles > 7, nibbles - 16, nibbles).astype(np.int8)
  return nibbles[:int(np.prod(shape, dtype=np.int64))].reshape(shape)


def is_qarray(x) -> bool:
  return isinstance(x, qwix.QArray)


def dequantized(tree):
  """`tree` with every QArray (and its WithAux wrapper) replaced by its float value."""
  from qwix._src.providers.ptq import WithAux  # qwix exports no name for the PTQ param wrapper.
  unwrap = lambda x: qwix.dequantize(x.array) if isinstance(x, WithAux) and is_qarray(x.array) else (
      x.array if isinstance(x, WithAux) else x)
  return jax.tree.map(unwrap, tree, is_leaf=lambda x: isinstance(x, WithAux))
