"""Saliency maps of an image classifier: vanilla gradient, SmoothGrad, Integrated Gradients, Grad-CAM.

Every method explains one `target` class per example of a classifier `apply(variables, x) -> logits
(B, K)` with x float pixels in [0, 1] (B, H, W, C). Examples are independent (an inference-mode model:
no batch statistics), so one gradient of sum_b logits[b, target_b] gives every example's gradient.
All functions are pure and jit-friendly; `apply` and the integer settings are static (close over them).

Grad-CAM works on any Flax model without touching its code: `flax.linen.intercept_methods` sees every
submodule's `__call__` output while `apply` runs; the chosen one gets a zero perturbation `eps` added,
and d logit / d eps is d logit / d activation. Interceptors only run while a function is traced, so
`apply` is called under `jax.disable_jit()` (a jitted `apply` would otherwise replay its cached trace
without calling them); under an outer `jax.jit` this only inlines `apply` into the outer program.
"""
import time
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxai.errors import UserError

Apply = Callable[..., jax.Array]  # apply(variables, x (B, H, W, C) in [0, 1]) -> logits (B, K)


def target_logits(apply: Apply, variables, x, target) -> jax.Array:
  """(B,) logits[b, target_b]."""
  logits = apply(variables, x)  # (B, K)
  return jnp.take_along_axis(logits, target[:, None].astype(jnp.int32), axis=1)[:, 0]


def vanilla_gradient(apply: Apply, variables, x, target) -> jax.Array:
  """(B, H, W, C) d logit[target] / d x (Simonyan et al. 2014)."""
  return jax.grad(lambda x: target_logits(apply, variables, x, target).sum())(x)


def smoothgrad(apply: Apply, variables, x, target, rng, num_samples: int, noise_std: float) -> jax.Array:
  """(B, H, W, C) mean gradient over `num_samples` copies of x plus Gaussian noise (Smilkov et al. 2017).

  `noise_std` is in pixel units (the [0, 1] range, so 0.15 is the paper's 15%); noisy pixels are not
  clipped. The samples are one `jax.vmap` (a batch of num_samples * B images): on CPU (2 cores) that was ~2x
  faster than a `lax.scan` over samples; memory grows with num_samples.
  """
  noise = noise_std * jax.random.normal(rng, (num_samples,) + x.shape, x.dtype)  # (S, B, H, W, C)
  grads = jax.vmap(lambda n: vanilla_gradient(apply, variables, x + n, target))(noise)
  return grads.mean(axis=0)


def integrated_gradients(apply: Apply, variables, x, target, num_steps: int, baseline=None,
                         steps_per_batch: int | None = None) -> jax.Array:
  """(B, H, W, C) Integrated Gradients (Sundararajan et al. 2017) from `baseline` (default black: 0).

  (x - x0) * integral_0^1 grad F(x0 + a (x - x0)) da, by the midpoint Riemann rule with `num_steps`
  gradients at a = (k + 1/2) / num_steps. Completeness (attributions sum to F(x) - F(x0)) holds up to the
  quadrature error, which shrinks with num_steps: see `completeness_error`. The steps are batched with
  `jax.vmap` (num_steps * B images at once); `steps_per_batch` bounds memory: a `lax.scan` over chunks
  of that many vmapped steps.
  """
  x0 = jnp.zeros_like(x) if baseline is None else jnp.broadcast_to(baseline, x.shape).astype(x.dtype)
  alphas = (jnp.arange(num_steps, dtype=x.dtype) + 0.5) / num_steps  # (S,)
  path_gradient = lambda a: vanilla_gradient(apply, variables, x0 + a * (x - x0), target)
  if steps_per_batch is None or steps_per_batch >= num_steps:
    mean_gradient = jax.vmap(path_gradient)(alphas).mean(axis=0)  # (S, B, H, W, C) -> (B, H, W, C)
  else:
    chunks = -(-num_steps // steps_per_batch)
    pad = chunks * steps_per_batch - num_steps
    weights = jnp.pad(jnp.ones_like(alphas), (0, pad)).reshape(chunks, steps_per_batch)  # 0: padding.
    alphas = jnp.pad(alphas, (0, pad)).reshape(chunks, steps_per_batch)

    def add_chunk(total, chunk):
      a, w = chunk  # (steps_per_batch,) each
      return total + jnp.tensordot(w, jax.vmap(path_gradient)(a), axes=1), None
    total, _ = jax.lax.scan(add_chunk, jnp.zeros_like(x), (alphas, weights))
    mean_gradient = total / num_steps
  return (x - x0) * mean_gradient


def completeness_error(apply: Apply, variables, x, target, attributions, baseline=None) -> jax.Array:
  """(B,) |sum attributions - (F(x) - F(x0))| / |F(x) - F(x0)|: 0 for exact Integrated Gradients."""
  x0 = jnp.zeros_like(x) if baseline is None else jnp.broadcast_to(baseline, x.shape).astype(x.dtype)
  delta = target_logits(apply, variables, x, target) - target_logits(apply, variables, x0, target)
  total = attributions.reshape(x.shape[0], -1).sum(axis=1)
  return jnp.abs(total - delta) / jnp.maximum(jnp.abs(delta), 1e-6)


def time_integrated_gradients(apply: Apply, variables, x, target, num_steps: int, repeats: int = 3) -> float:
  """Milliseconds per image of jitted `integrated_gradients` on x (B, ...): the best of `repeats` runs
  after one compiling call (the issue's benchmark figure)."""
  fn = jax.jit(lambda v, x, t: integrated_gradients(apply, v, x, t, num_steps))
  jax.block_until_ready(fn(variables, x, target))
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(variables, x, target))
    best = min(best, time.perf_counter() - start)
  return 1000.0 * best / x.shape[0]


# ------------------------------------------------------------------ Grad-CAM


def _layer_name(path: tuple) -> str:
  return "/".join(path)


def module_outputs(apply: Apply, variables, x) -> list:
  """[(path, output shape or None)] of every submodule `__call__` in the order the calls return
  (a parent after its children), traced abstractly: nothing runs or compiles."""
  calls = []

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and context.module.path:
      calls.append((tuple(context.module.path), tuple(out.shape) if hasattr(out, "shape") else None))
    return out

  abstract = lambda tree: jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), tree)

  def run(variables, x):
    with nn.intercept_methods(interceptor), jax.disable_jit():
      return apply(variables, x)
  jax.eval_shape(run, abstract(variables), abstract(x))
  return calls


def _is_map(shape, batch: int) -> bool:
  return shape is not None and len(shape) == 4 and shape[0] == batch and shape[1] > 1 and shape[2] > 1


def _maps_of(calls: list, batch: int) -> list:
  seen, maps = set(), []
  for path, shape in calls:
    if _is_map(shape, batch) and path not in seen:
      seen.add(path)
      maps.append((_layer_name(path), shape))
  return maps


def feature_maps(apply: Apply, variables, x) -> list:
  """[(layer name, (B, H', W', C'))] of the submodules whose output is a spatial map, in execution
  order: the Grad-CAM candidates. Names are module paths joined by '/' ('Conv_3', 'BasicBlock_3/Conv_1').
  `variables` and `x` may be abstract (jax.ShapeDtypeStruct)."""
  return _maps_of(module_outputs(apply, variables, x), x.shape[0])


def resolve_layer(apply: Apply, variables, x, layer: str | Sequence[str] | None = None) -> tuple:
  """(module path, activation shape, number of calls of that module) that Grad-CAM reads for `layer`;
  UserError listing the candidates when there are none or `layer` is not one of them.

  layer=None picks the last submodule to *return* a (B, H', W', C') array with H', W' > 1: the deepest
  spatial feature map before the model pools or flattens (for jaxai's CNN the last conv, or its
  BatchNorm when it has one; for the ResNet the last residual block, whose output is after its ReLU).
  A module called more than once is read at its last call.
  """
  calls = module_outputs(apply, variables, x)
  shapes = {path: shape for path, shape in calls}  # the last call of each path.
  num_calls = lambda path: sum(1 for p, _ in calls if p == path)
  candidates = [name for name, _ in _maps_of(calls, x.shape[0])]
  if not candidates:
    raise UserError("Grad-CAM needs a submodule that outputs a (B, H, W, C) feature map with H, W > 1, and "
                    f"this model has none (its layers: {[_layer_name(p) for p, _ in calls]}); an MLP has no "
                    "spatial maps: use 'gradient', 'smoothgrad' or 'integrated_gradients' instead.")
  if layer is None or layer == "" or layer == ():
    path = next(p for p, s in reversed(calls) if _is_map(s, x.shape[0]))
    return path, shapes[path], num_calls(path)
  path = tuple(layer.split("/")) if isinstance(layer, str) else tuple(layer)
  if path not in shapes or not _is_map(shapes[path], x.shape[0]):
    what = (f"outputs shape {shapes[path]}, not a (B, H, W, C) map" if path in shapes
            else "is not a submodule of this model")
    raise UserError(f"Grad-CAM layer {_layer_name(path)!r} {what}; choose one of {candidates} "
                    "(or '' for the last one).")
  return path, shapes[path], num_calls(path)


def grad_cam(apply: Apply, variables, x, target, layer: str | Sequence[str] | None = None,
             upsample: bool = True) -> jax.Array:
  """(B, H, W) Grad-CAM (Selvaraju et al. 2017), or (B, H', W') at the layer's resolution without
  `upsample`: relu(sum_c w_c A_c), w_c = spatial mean of d logit[target] / d A_c, for the activation A
  (B, H', W', C') of `layer` (see `resolve_layer` for the default). Upsampled bilinearly to H, W (the
  result stays >= 0). Unnormalized: `heatmap` scales it for display."""
  path, shape, calls_of_path = resolve_layer(apply, variables, x, layer)

  def logit_sum(eps):  # eps: (B, H', W', C') zeros
    captured, count = {}, [0]

    def interceptor(next_fun, args, kwargs, context):
      out = next_fun(*args, **kwargs)
      if context.method_name == "__call__" and tuple(context.module.path) == path:
        count[0] += 1
        if count[0] == calls_of_path:  # the last call, as resolve_layer chose.
          out = out + eps.astype(out.dtype)
          captured["activation"] = out
      return out

    with nn.intercept_methods(interceptor), jax.disable_jit():
      total = target_logits(apply, variables, x, target).sum()
    return total, captured["activation"]

  grads, activation = jax.grad(logit_sum, has_aux=True)(jnp.zeros(shape, x.dtype))
  weights = grads.astype(jnp.float32).mean(axis=(1, 2))  # (B, C')
  cam = jax.nn.relu(jnp.einsum("bhwc,bc->bhw", activation.astype(jnp.float32), weights))  # (B, H', W')
  if upsample:
    cam = jnp.maximum(jax.image.resize(cam, (x.shape[0],) + tuple(x.shape[1:3]), "bilinear"), 0.0)
  return cam


# ------------------------------------------------------------------ display


def magnitude(attribution) -> jax.Array:
  """(B, H, W) |attribution| summed over channels; a (B, H, W) map (Grad-CAM) is taken as is, abs'd."""
  a = jnp.abs(attribution)
  return a.sum(axis=-1) if a.ndim == 4 else a


def heatmap(attribution, percentile: float = 99.0) -> jax.Array:
  """(B, H, W) in [0, 1]: `magnitude` divided per image by its `percentile` (the top 1% saturate, so one
  extreme pixel does not wash out the map; 100 = the max), clipped. An all-zero map stays zero."""
  m = magnitude(attribution).astype(jnp.float32)
  scale = jnp.percentile(m.reshape(m.shape[0], -1), percentile, axis=1)[:, None, None]  # (B, 1, 1)
  scale = jnp.where(scale > 0, scale, jnp.max(m, axis=(1, 2), keepdims=True))  # sparse maps: the max.
  return jnp.clip(m / jnp.maximum(scale, 1e-12), 0.0, 1.0)
