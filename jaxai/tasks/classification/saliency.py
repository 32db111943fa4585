"""Interpretability evaluation of a classifier: saliency maps of fixed test images, drawn as images, and
two sanity numbers (Adebayo et al. 2018 randomization, Samek et al. 2017 pixel deletion).

The classification task builds it from `config.interpret` (keys: `default_config`). Every evaluation
explains the same first `num_images` test images for their true label, with each of `methods`, and
writes `saliency/<method>` images (rows: the images; the map over the image; the map alone; for
'gradient' also the map of a re-initialised model), one combined `saliency/overlays` grid (the images,
then one overlay row per method), a `saliency/deletion_curve` text table and the scalars:

  eval/saliency_randomization_rank_corr  mean Spearman correlation of the vanilla-gradient maps of the
                                         trained model and of `random_models` freshly initialised
                                         ones (the same at every step), over the shown images: low =
                                         the maps depend on what the model learned. Vanilla gradient,
                                         not IG: with a black baseline IG (like gradient x input) is 0
                                         on black pixels whatever the weights, so its maps correlate
                                         through the input.
  eval/deletion_auc_salient              mean accuracy over `deletion_fractions` of the first
  eval/deletion_auc_random               `deletion_examples` test images as the most salient pixels
                                         (maps of `deletion_method`, vanilla gradient by default) /
                                         as many random pixels are set to 0 (black). Salient < random
                                         = the maps point at pixels the model uses.
"""
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxai.core import summaries
from jaxai.core.evaluators import Evaluator
from jaxai.errors import UserError
from jaxai.interpret import checks, overlay, saliency

METHODS = ("gradient", "smoothgrad", "integrated_gradients", "grad_cam")
_MAX_VMAP_IMAGES = 1024  # Integrated Gradients batches at most this many path images at once.


def default_config() -> ml_collections.ConfigDict:
  """The `config.interpret` keys of the classification task."""
  return ml_collections.ConfigDict(dict(
      num_images=0,                # the first N test images are explained; 0 = interpretability off.
      methods=METHODS,             # any of 'gradient', 'smoothgrad', 'integrated_gradients', 'grad_cam'.
      smoothgrad_samples=16,       # noisy copies averaged per image.
      smoothgrad_noise=0.15,       # noise std in pixel units ([0, 1] range).
      ig_steps=32,                 # Integrated Gradients path steps (gradients per image).
      gradcam_layer="",            # module path ('Conv_3', 'BasicBlock_7'); '' = the last spatial map.
      deletion_examples=256,       # first N test images of the deletion curve; 0 = no deletion metrics.
      deletion_fractions=(0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5),  # fractions of pixels set to 0.
      deletion_method="gradient",  # the maps that rank pixels for deletion (one of the methods above).
      random_models=4,             # re-initialised models of the randomization check (one alone varies
                                   # by ~0.1 from init to init); 0 = no randomization check.
      every_steps=0,               # 0 = config.eval_every_steps (always also after the last step).
  ))


def _methods(cfg) -> tuple:
  methods = (cfg.methods,) if isinstance(cfg.methods, str) else tuple(cfg.methods)
  unknown = [m for m in methods if m not in METHODS]
  if unknown or not methods or len(set(methods)) != len(methods):
    raise UserError(f"config.interpret.methods={methods!r}: give distinct names among {METHODS}"
                    + (f" ({unknown} unknown)." if unknown else "."))
  return methods


def _check(cfg, images, labels) -> None:
  if images.ndim != 4 or images.dtype != np.uint8 or labels.shape != images.shape[:1]:
    raise UserError(f"The interpretability evaluator needs uint8 images (N, H, W, C) and labels (N,), got "
                    f"{images.dtype} {images.shape} and {labels.shape}.")
  for key, low in (("num_images", 0), ("deletion_examples", 0), ("smoothgrad_samples", 1), ("ig_steps", 1),
                   ("random_models", 0), ("every_steps", 0)):
    if int(cfg[key]) != cfg[key] or cfg[key] < low:
      raise UserError(f"config.interpret.{key}={cfg[key]!r} must be an integer >= {low}.")
  for key in ("num_images", "deletion_examples"):
    if cfg[key] > len(images):
      raise UserError(f"config.interpret.{key}={cfg[key]} is more than the {len(images)} evaluation "
                      f"images; lower it (or raise config.max_eval_examples).")
  if not cfg.smoothgrad_noise >= 0:
    raise UserError(f"config.interpret.smoothgrad_noise={cfg.smoothgrad_noise!r} must be >= 0 (pixel units).")
  fractions = tuple(cfg.deletion_fractions)
  if cfg.deletion_examples and (not fractions or any(not 0 <= f <= 1 for f in fractions)
                                or list(fractions) != sorted(set(fractions))):
    raise UserError(f"config.interpret.deletion_fractions={fractions!r} must be increasing fractions "
                    "in [0, 1].")
  if cfg.deletion_examples and cfg.deletion_method not in METHODS:
    raise UserError(f"config.interpret.deletion_method={cfg.deletion_method!r} is not one of {METHODS}.")


def make_evaluator(cfg: ml_collections.ConfigDict, apply: Callable, reinit: Callable, images_uint8, labels
                   ) -> Evaluator | None:
  """The evaluator of `cfg` (= config.interpret), or None when cfg.num_images == 0.

  apply(variables, x float (B, H, W, C) in [0, 1]) -> logits; reinit(rng) -> variables of a freshly
  initialised model (same structure); images_uint8 (N, H, W, C) and labels (N,): the evaluation split.
  The config is checked here (UserError), before anything compiles; grad_cam's layer is resolved by
  tracing the model abstractly. The re-initialised models are reinit at fixed 'rbg' keys: XLA:CPU compiles
  a threefry-keyed init of even a small CNN 4-6x slower (seconds).
  """
  methods = _methods(cfg)
  images, labels = np.asarray(images_uint8), np.asarray(labels)
  _check(cfg, images, labels)
  if cfg.num_images == 0:
    return None
  n, d, r = int(cfg.num_images), int(cfg.deletion_examples), int(cfg.random_models)
  fractions = tuple(float(f) for f in cfg.deletion_fractions)
  uses_cam = "grad_cam" in methods or (d and cfg.deletion_method == "grad_cam")
  layer = None
  if uses_cam:
    abstract_variables = jax.eval_shape(reinit, jax.random.key(0))
    abstract_x = jax.ShapeDtypeStruct((n,) + images.shape[1:], jnp.float32)
    try:
      layer, _, _ = saliency.resolve_layer(apply, abstract_variables, abstract_x, cfg.gradcam_layer or None)
    except UserError as e:
      raise UserError(f"config.interpret (grad_cam, gradcam_layer={cfg.gradcam_layer!r}): {e}") from None

  def maps_of(method, variables, x, target, rng):  # -> (B, H, W, C) or (B, H, W)
    if method == "gradient":
      return saliency.vanilla_gradient(apply, variables, x, target)
    if method == "smoothgrad":
      return saliency.smoothgrad(apply, variables, x, target, rng, cfg.smoothgrad_samples,
                                 cfg.smoothgrad_noise)
    if method == "integrated_gradients":
      per_batch = max(1, _MAX_VMAP_IMAGES // x.shape[0])
      return saliency.integrated_gradients(apply, variables, x, target, cfg.ig_steps,
                                           steps_per_batch=per_batch)
    return saliency.grad_cam(apply, variables, x, target, layer)

  shown_x = images[:n].astype(np.float32) / 255.0  # (n, H, W, C): constants of the compiled evaluation.
  shown_y = labels[:n].astype(np.int32)
  deletion_x = images[:d].astype(np.float32) / 255.0
  deletion_y = labels[:d].astype(np.int32)

  def fn(variables, rng):
    rng_maps, rng_deletion = jax.random.split(rng)
    x, y = jnp.asarray(shown_x), jnp.asarray(shown_y)
    out, maps = {}, {}
    for method in methods:
      maps[method] = maps_of(method, variables, x, y, rng_maps)
      heat = saliency.heatmap(maps[method])  # (n, H, W)
      out[f"overlay/{method}"] = overlay.overlay(x, heat)
      out[f"heat/{method}"] = overlay.colormap(heat)
    if r:
      trained = maps["gradient"] if "gradient" in maps else saliency.vanilla_gradient(apply, variables, x, y)
      keys = jax.random.split(jax.random.key(0, impl="rbg"), r)
      gradient_of = lambda key: saliency.vanilla_gradient(apply, reinit(key), x, y)
      # (R, n, H, W, C); one model unbatched: a vmapped init compiles ~1 s slower on CPU.
      randomized = gradient_of(keys[0])[None] if r == 1 else jax.vmap(gradient_of)(keys)
      out["randomization_rank_corr"] = jax.vmap(lambda m: checks.rank_correlation(
          saliency.magnitude(trained), saliency.magnitude(m)))(randomized).mean()
      out["overlay/gradient_reinit"] = overlay.overlay(x, saliency.heatmap(randomized[0]))
    if d:
      xd, yd = jnp.asarray(deletion_x), jnp.asarray(deletion_y)
      md = maps_of(cfg.deletion_method, variables, xd, yd, rng_maps)
      out["deletion_salient"], out["deletion_random"] = checks.deletion_curve(
          apply, variables, xd, yd, md, fractions, rng_deletion)
    return out

  scale = max(1, 64 // max(images.shape[1:3]))  # small images (MNIST) are drawn 2x larger.
  original = np.asarray(overlay.to_rgb(images[:n]))  # (n, H, W, 3)

  def finish(outputs, step):
    big = lambda a: np.repeat(np.repeat(np.asarray(a, np.float32), scale, axis=1), scale, axis=2)
    result = {}
    for method in methods:
      rows = [original, outputs[f"overlay/{method}"], outputs[f"heat/{method}"]]
      if method == "gradient" and r:
        rows.append(outputs["overlay/gradient_reinit"])
      result[f"saliency/{method}"] = summaries.Image(big(np.concatenate(rows)), columns=n)
    grid = np.concatenate([original] + [outputs[f"overlay/{m}"] for m in methods])
    result["saliency/overlays"] = summaries.Image(big(grid), columns=n)
    if r:
      result["eval/saliency_randomization_rank_corr"] = float(outputs["randomization_rank_corr"])
    if d:
      salient, random = np.asarray(outputs["deletion_salient"]), np.asarray(outputs["deletion_random"])
      result["eval/deletion_auc_salient"] = float(checks.area_under_curve(fractions, salient))
      result["eval/deletion_auc_random"] = float(checks.area_under_curve(fractions, random))
      lines = [f"pixels deleted  accuracy ({cfg.deletion_method}-salient)  accuracy (random)"]
      lines += [f"{f:14.0%}  {s:27.4f}  {r:17.4f}" for f, s, r in zip(fractions, salient, random)]
      result["saliency/deletion_curve"] = summaries.Text("\n".join(lines))
    return result

  return Evaluator(fn=fn, finish=finish, view=lambda state: {"params": state.params, **state.model_state},
                   placement="mesh", seed=0, every_steps=int(cfg.every_steps))
