"""LoRA adapters (Hu et al. 2021) on any Flax linen model through qwix's LoraProvider.

(Stub: the implementation lands with the LoRA work.)
"""
import ml_collections


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      rank=0,                   # adapter rank; 0 = no adapters.
      alpha=8.0,                # the adapter's output is scaled by alpha / rank.
      module_path=".*",         # regex over module paths that get adapters (Dense and Conv layers).
      dropout=0.0,              # dropout on the adapter's input while training.
  ))


def wrap(model, cfg: ml_collections.ConfigDict):
  raise NotImplementedError("lora")
