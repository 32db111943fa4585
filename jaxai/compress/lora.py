"""LoRA adapters (Hu et al. 2021) on any Flax linen model through qwix's LoraProvider.

`wrap(model, cfg)` returns the model with a low-rank adapter beside every Dense / Conv kernel whose
module path (e.g. 'block_0/attn/qkv', 'Conv_1') fully matches `cfg.module_path`: qwix adds the params
'<kernel>_lora_a' and '<kernel>_lora_b' next to the kernel and computes

    y = x @ W + (x @ a) @ b * alpha / rank      Dense: a (in, rank), b (rank, out)
    y = conv(x, W) + conv(x, a) @ b * alpha / rank   Conv: a (kh, kw, in, rank), b (rank, out)

b starts at zero, so an adapted model at initialization computes exactly what its base model does.
Only the adapters train with `config.optimizer.trainable = TRAINABLE`; a run starts from the base
model's checkpoint with `config.init_from.fresh = TRAINABLE` (the source has no adapters).
`merge(params, cfg)` folds the adapters into their kernels: the base model's params, for export.

The wrapped module is an instance of a subclass of the base module's class (isinstance checks hold).
Adapter dropout (`cfg.dropout`) acts only when the model is applied with a 'dropout' rng, which the
domains pass in training only: evaluation and decoding stay deterministic.
"""
import dataclasses
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import qwix

from jaxai.errors import UserError

TRAINABLE = r".*_lora_[ab]"  # regex of the adapter leaves: config.optimizer.trainable / init_from.fresh.
SUFFIX_A, SUFFIX_B = "_lora_a", "_lora_b"


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      rank=0,                   # adapter rank; 0 = no adapters.
      alpha=8.0,                # the adapter's output is scaled by alpha / rank.
      module_path=".*",         # regex over module paths that get adapters (Dense and Conv layers).
      dropout=0.0,              # dropout on the adapter's input while training.
  ))


def check_config(cfg: ml_collections.ConfigDict) -> None:
  """UserErrors for settings no model can use (the module path is checked on the model's first call)."""
  if cfg.rank < 0:
    raise UserError(f"config.lora.rank={cfg.rank} must be >= 0 (0 = no adapters; e.g. 8).")
  if cfg.alpha <= 0:
    raise UserError(f"config.lora.alpha={cfg.alpha} must be > 0 (adapters are scaled by alpha / rank; "
                    "e.g. alpha = 2 * rank).")
  if not 0 <= cfg.dropout < 1:
    raise UserError(f"config.lora.dropout={cfg.dropout} must be in [0, 1).")
  try:
    re.compile(cfg.module_path)
  except re.error as e:
    raise UserError(f"config.lora.module_path={cfg.module_path!r} is not a regular expression: {e}.") from None


class _Provider(qwix.LoraProvider):
  """qwix's LoraProvider, with adapter dropout only under a 'dropout' rng, and a UserError when the
  first call of the model created no adapter (a module_path that matches no Dense / Conv layer)."""

  def __init__(self, cfg: ml_collections.ConfigDict):
    super().__init__([qwix.LoraRule(module_path=cfg.module_path, rank=cfg.rank, alpha=cfg.alpha,
                                    dropout=cfg.dropout)])
    self._module_path = cfg.module_path
    self._checked = False

  def _get_current_rule_and_op_id(self, op_name, **kwargs):
    rule, op_id = super()._get_current_rule_and_op_id(op_name, **kwargs)
    if isinstance(rule, qwix.LoraRule) and rule.dropout > 0:
      module = nn.module._context.module_stack[-1]  # pylint: disable=protected-access
      if module is None or module.scope is None or not module.scope.has_rng("dropout"):
        rule = dataclasses.replace(rule, dropout=0.0)
    return rule, op_id

  def process_model_output(self, method_name, model_output):
    if not self._checked:
      module = nn.module._context.module_stack[-1]  # pylint: disable=protected-access
      params = module.variables.get("params", {}) if module is not None and module.scope else {}
      if not adapter_paths(params):
        raise UserError(f"config.lora.module_path={self._module_path!r} matches no Dense or Conv layer of "
                        f"{type(module).__name__}; its layers: {_layer_paths(params)[:8]}.")
      self._checked = True
    return super().process_model_output(method_name, model_output)


def wrap(model: nn.Module, cfg: ml_collections.ConfigDict) -> nn.Module:
  """`model` with adapters of rank `cfg.rank` on the Dense / Conv layers `cfg.module_path` matches."""
  check_config(cfg)
  if cfg.rank == 0:
    return model
  if not isinstance(model, nn.Module):
    raise UserError(f"config.lora: adapters are added to Flax linen modules, not {type(model).__name__}.")
  return qwix.apply_lora_to_model(model, _Provider(cfg))


def base_model(model: nn.Module) -> nn.Module:
  """The module `wrap` started from (the module itself when it has no adapters): merged params apply to it."""
  base = getattr(type(model), "_unquantized_type", None)
  if base is None:
    return model
  model = model.copy()
  model.__class__ = base
  return model


def _flat(params) -> dict[str, jax.Array]:
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return {jax.tree_util.keystr(k, simple=True, separator="/"): v for k, v in flat}


def _layer_paths(params) -> list[str]:
  return sorted({p.rsplit("/", 1)[0] for p in _flat(params) if p.endswith("/kernel")})


def adapter_paths(params) -> list[str]:
  """Paths ('block_0/attn/qkv/kernel_lora_a', ...) of every adapter leaf in `params`."""
  return [p for p in _flat(params) if p.endswith((SUFFIX_A, SUFFIX_B))]


def adapter_count(params) -> int:
  """Parameters in adapters (what trains with optimizer.trainable = TRAINABLE)."""
  flat = _flat(params)
  return int(sum(flat[p].size for p in adapter_paths(params)))


def param_count(params) -> int:
  return int(sum(x.size for x in jax.tree.leaves(params)))


def merge(params, cfg: ml_collections.ConfigDict):
  """The base model's params: every kernel W with adapters (a, b) becomes W + a @ b * alpha / rank
  (a's leading axes and b's trailing ones reshaped to W's: Dense and Conv alike), and the adapter
  leaves are dropped. `params` is the 'params' collection of a model wrapped with `cfg`."""
  check_config(cfg)
  if cfg.rank == 0:
    return params
  scale = cfg.alpha / cfg.rank

  def merge_dict(tree: dict, where: str):
    out = {}
    for name, value in tree.items():
      if name.endswith((SUFFIX_A, SUFFIX_B)):
        kernel = name[:-len(SUFFIX_A)]
        if kernel not in tree or (kernel + SUFFIX_A) not in tree or (kernel + SUFFIX_B) not in tree:
          raise UserError(f"Adapter {where}{name} has no kernel {kernel!r} with both '{SUFFIX_A}' and "
                          f"'{SUFFIX_B}' beside it; these params are not a LoRA-wrapped model's.")
        continue
      if isinstance(value, dict):
        out[name] = merge_dict(value, f"{where}{name}/")
      elif (name + SUFFIX_A) in tree:
        a, b = tree[name + SUFFIX_A], tree[name + SUFFIX_B]
        if a.shape[-1] != cfg.rank or b.shape[0] != cfg.rank:
          raise UserError(f"Adapters of {where}{name} have rank {a.shape[-1]}, but config.lora.rank="
                          f"{cfg.rank}: merge with the config the run trained with.")
        # Dense: (in, r) @ (r, out); Conv: (kh * kw * in, r) @ (r, out), back to (kh, kw, in, out).
        delta = jnp.matmul(jnp.reshape(a, (-1, cfg.rank)), jnp.reshape(b, (cfg.rank, -1)),
                           precision=jax.lax.Precision.HIGHEST)
        if delta.size != value.size:
          raise UserError(f"Adapters {a.shape} x {b.shape} of {where}{name} {value.shape} do not multiply "
                          "to its shape; only Dense and Conv kernels can be merged.")
        out[name] = (value + delta.reshape(value.shape) * scale).astype(value.dtype)
      else:
        out[name] = value
    return out

  return merge_dict(dict(params), "")
