"""The model transforms a domain applies from its config, in one place: LoRA adapters
(`config.lora`) and quantization (`config.quantization`). A domain builds its Flax module, then

    model = transforms.wrap_model(model, config)

and trains or evaluates it as before: adapters and quantization statistics are ordinary leaves of
the params / model_state collections (checkpointed, sharded, frozen by `config.optimizer.trainable`).
"""
import ml_collections

from jaxai.compress import lora, quantization
from jaxai.errors import UserError


def add_defaults(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Adds `config.lora` and `config.quantization` (both off) to a domain's default config."""
  config.lora = lora.default_config()
  config.quantization = quantization.default_config()
  return config


def wrap_model(model, config: ml_collections.ConfigDict):
  """`model` with the adapters and quantization `config` asks for (the module itself when none)."""
  lora_cfg, quant_cfg = config.get("lora"), config.get("quantization")
  if lora_cfg is not None:
    lora.check_config(lora_cfg)
  use_lora = lora_cfg is not None and lora_cfg.rank > 0
  use_quant = quant_cfg is not None and quant_cfg.mode != "none"
  if use_lora and use_quant:
    raise UserError("config.lora.rank > 0 with config.quantization.mode != 'none': adapters and "
                    "quantization are not combined here; train the adapters, merge them (python -m "
                    "jaxai.compress_table --workdir=... --export_dir=...), then quantize the merged model.")
  if use_lora:
    return lora.wrap(model, lora_cfg)
  if use_quant:
    return quantization.wrap(model, quant_cfg)
  return model
