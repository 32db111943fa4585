"""Quantization through qwix: quantization-aware training (a model transform applied from config)
and post-training quantization of a trained model's weights and activations.

(Stub: the implementation lands with the quantization work.)
"""
import ml_collections

MODES = ("none", "qat", "ptq")


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      mode="none",              # 'none' | 'qat' (train with fake quantization) | 'ptq' (a quantized
                                # model for evaluation; its weights come from jaxai.compress).
      weights="int8",           # 'int8' | 'int4' (qwix on XLA:CPU: int4 for Dense layers only).
      activations="int8",       # 'int8' | 'none' (weight-only).
      static_activations=False,  # calibrated activation scales (quant_stats) instead of per-batch ones.
      module_path=".*",         # regex over module paths that are quantized.
  ))


def wrap(model, cfg: ml_collections.ConfigDict):
  raise NotImplementedError("quantization")
