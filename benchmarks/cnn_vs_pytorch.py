"""The MNIST CNN train step on CPU, JAX against the same network in PyTorch, part by part, in one invocation.

  python benchmarks/cnn_vs_pytorch.py        # ~7 min on 2 shared CPU cores; the first run ~11 min (compiling)
  python benchmarks/cnn_vs_pytorch.py --parts=conv2_dw --second_column= --variants=0,6 --min_calls=3  # ~2 min
  python benchmarks/cnn_vs_pytorch.py --torch_python=/path/to/venv/bin/python

The peer is never a dependency of the project: PyTorch runs in --torch_python (default $TORCH_PYTHON, else
none) from a script embedded here (TORCH_WORKER) and written to a temporary file. Set one up once with
  python -m venv V && V/bin/pip install torch numpy
Without it the JAX side runs alone and says so.

The network, both sides: configs/mnist_cnn.py's model, jaxai.models.cnn.CNN(features=(32, 64), dense=256,
dropout_rate=0.3): 3x3 convolutions 1->32, 32->32, max-pool 2x2, 32->64, 64->64, max-pool 2x2 (SAME padding, no
bias), each conv followed by BatchNorm (momentum 0.9, batch statistics: train mode) and relu; dense 3136->256 + relu,
dropout 0.3, dense 256->10; softmax cross-entropy (jaxai.ops.losses); batch 128 of 28x28x1 float32. Synthetic
normal "pixels" and random labels (the cost does not depend on the data); no augmentation, no input pipeline.
  JAX (this process's workers): flax NHWC/HWIO as the project runs it; the project's optimizer
(jaxai.core.optim.make_optimizer on the config: AdamW lr 3e-3 with its warmup+cosine schedule, weight decay 1e-4 on
>=2-D weights only); every part a separately jitted and compiled program; the train steps donate their state and
return loss and gradient norm as the trainer does. XLA:CPU uses both cores.
  PyTorch: nn.Sequential of Conv2d(bias=False), BatchNorm2d(momentum=0.1, i.e. flax's 0.9), ReLU, MaxPool2d,
Flatten, Linear, ReLU, Dropout, Linear; torch.optim.AdamW with the same two parameter groups and a constant lr 3e-3;
eager (no torch.compile), torch.set_num_threads(2), NCHW, torch's native layout (its CPU convolutions go to oneDNN).
The shapes are identical: the JAX initial weights and batch are copied into the twin (OIHW; the flatten order is
(c, h, w) in torch, so Dense_0's rows are permuted) and, with dropout off, both print their loss and gradient norm
(they agree: 2.518652 vs 2.518651, 8.288651 vs 8.288642). Each lax variant below is checked the same way.

Parts, each timed on both sides:
  (1) forward in train mode to the loss, BatchNorm batch statistics and running averages (torch: under no_grad);
  (2) forward + gradient w.r.t. the input only (torch: parameters' requires_grad off, autograd.grad(loss, x));
  (3) forward + gradient w.r.t. the weights only; (4) forward + both (the full backward);
  (5) the whole train step: forward, backward, AdamW, BatchNorm statistics (torch: zero_grad, backward, step);
  (6) the same with batch_norm=False (the convs get biases; torch: no BatchNorm2d layers), for BatchNorm's share;
  (7) each conv layer alone, on random data of its shapes: forward, input gradient, weight gradient. JAX:
      lax.conv_general_dilated (NHWC/HWIO, what nn.Conv calls) and jax.vjp of it w.r.t. x or w applied to an output
      cotangent, jitted (so only the transposed convolution runs); torch: F.conv2d, and aten.convolution_backward
      with the output mask of one gradient, the kernel autograd runs for conv2d's backward.
Variants of the train step (5), each on the JAX side only: the project's CNN under
jax.default_matmul_precision('highest') (DEFAULT otherwise); the same network written with lax directly in
NCHW/OIHW dimension numbers; BatchNorm with a two-pass variance (flax's is already one pass: E[x] and E[x^2] in one
fusion, var = E[x^2] - E[x]^2); BatchNorm+relu fused into one multiply-add with a hand-written backward (custom
VJP); the conv weight gradient as one matmul of 3x3 patches (im2col, custom VJP); and XLA:CPU settings through
XLA_FLAGS, one worker process each (FLAGS): default, --xla_cpu_experimental_ynn_fusion_type= (YNNPACK off),
=individual_dot (YNNPACK for dots only), --xla_cpu_use_xnnpack=true, --xla_cpu_experimental_onednn_custom_call=true
(all accepted by jaxlib 0.10.2); "library calls" says where the compiled step's convolutions and dots went.

Timing: per call, blocking on the result, after one warm-up call; the median over the calls. Each part gets
--seconds of calls (conv parts --conv_seconds), at least --min_calls (6) and at most --max_calls (50), split into
--rounds (3) rounds that interleave JAX, torch and the second JAX column part by part (the order reversed every
round), so that the shared CPU's load falls on both sides alike; the variants likewise, with torch's step in the
same rounds. All workers start together and compile before any timing; compiled programs go to JAX's persistent
cache (--compile_cache), so later runs skip most of the ~20 compilations of 5-20 s each here.

Measured (2 shared CPU cores: AMD EPYC (Zen 1) under KVM, load average 4-5 from other jobs; JAX 0.10.2, PyTorch
2.13.0+cpu; the final run of the defaults, 7 min with a warm cache), median ms:
  part                                          JAX   torch  speed | JAX, YNN off  speed
  (1) forward, train mode                       210     457   2.18 |         241   1.89
  (2) forward + grad wrt input                  580     892   1.54 |         624   1.43
  (3) forward + grad wrt weights               1336    1151   0.86 |         894   1.29
  (4) forward + full backward                  1426    1192   0.84 |         851   1.40
  (5) train step with AdamW                    1306    1292   0.99 |         899   1.44
  (6) train step, no BatchNorm                 1298    1156   0.89 |         778   1.49
  (7) conv2 28x28 32->32 weight grad            453      88   0.19 |          99   0.89
      conv3 14x14 32->64 weight grad            139      60   0.43 |          45   1.33
      conv4 14x14 64->64 weight grad            303      96   0.32 |          82   1.17
      the other 9 conv parts (fwd, input grad)  401     689   1.71 |         417   1.65
      sum of the 12 conv parts                 1296     933   0.72 |         643   1.45
  Train step images/s: PyTorch 99.1; JAX default flags 98.0 (0.99x); YNNPACK off 142.4 (1.44x); YNNPACK for dots
  only 134.4 (1.36x); --xla_cpu_use_xnnpack 83.3 and the oneDNN flag 77.8 (the same compiled program as the
  default, convolutions still in YNNPACK: noise); precision HIGHEST 87.9 (no effect for float32 on CPU: noise);
  lax NCHW/OIHW 79.5; two-pass BatchNorm 77.0; fused BatchNorm+relu 85.6 (111.1 with YNNPACK off); im2col weight
  gradient 103.9. 13.9 GFLOP per step (XLA's count): 11 GFLOP/s for JAX's default, 15.5 with YNNPACK off.
  Across five runs of the day (1-8 calls each) the default-flag step was 0.79-1.04x PyTorch and the YNNPACK-off
  step 1.18-1.55x; the precision, layout and BatchNorm variants ranged from 8% faster to ~50% slower than the
  project's step from run to run, and none was faster in every run.

So the issue's target (JAX >= 0.5x PyTorch for the whole step; 0.25x measured before) is met here with the default
flags (~0.8-1.0x), and JAX is 1.3-1.5x PyTorch once YNNPACK is kept away from convolutions. What XLA:CPU cannot do
well here, from the per-part figures: with jaxlib 0.10.2's defaults, XLA:CPU hands every convolution to YNNPACK,
and YNNPACK's kernel for the weight gradient (autodiff's transposed convolution whose "window" is the whole 28x28 or
14x14 activation, batch as the reduction) runs 2.3-5x slower than oneDNN's for conv2-4 (conv2: 453 ms against 88)
and 3-5x slower than XLA's own Eigen convolution for the same HLO (99 ms): the weight gradients take ~75% of JAX's
backward. The forward and input-gradient convolutions, BatchNorm, the pooling and AdamW are not the problem (JAX is
as fast as or faster than PyTorch on each). With YNNPACK off the remaining gap is conv2's weight gradient and
conv4's input gradient (Eigen ~0.8-0.9x oneDNN); Eigen's conv1 forward (1 input channel) is slower than YNNPACK's
but small. Rewriting the model (layout, dimension numbers, precision, BatchNorm formulations) does not change which
kernel runs and did not help reliably; the im2col weight gradient helps a little under the default flags (~5-15%,
the patches matmul goes to Eigen) but less than the flag.

On a GPU (stated, not measured here): none of this applies. Both sides call cuDNN for the convolutions, and the
network is tiny for a GPU (13.9 GFLOP per step of 128 is ~1 ms of math on an A100/H100), so the step is bound by
kernel launches and host overhead: the jitted JAX step is one executable with fused elementwise ops, eager PyTorch
launches hundreds of kernels per step; expect JAX at or above eager PyTorch, several thousand images/s or more for
both, and use a larger batch (or steps_per_call) to fill the device.
"""
import argparse
import atexit
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "mnist_cnn.py")
EPS = 1e-5  # flax nn.BatchNorm's and torch nn.BatchNorm2d's epsilon.

# XLA:CPU settings, one JAX worker process each (XLA_FLAGS is read once per process).
FLAGS = {
    "default": "",
    "ynn_off": "--xla_cpu_experimental_ynn_fusion_type=",
    "ynn_dots_only": "--xla_cpu_experimental_ynn_fusion_type=individual_dot",
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "onednn": "--xla_cpu_experimental_onednn_custom_call=true",
}
FLAG_NOTES = {
    "default": "XLA_FLAGS unset: XLA:CPU sends convolutions (and dots) to YNNPACK",
    "ynn_off": "YNNPACK off: convolutions to Eigen, dots to Eigen",
    "ynn_dots_only": "YNNPACK for dots only: convolutions to Eigen",
    "xnnpack": "",
    "onednn": "",
}
# The per-part table: every part on the default JAX worker, on torch and on this JAX worker as a third column.
SECOND_COLUMN = "ynn_off"
MAIN_PARTS = ["fwd", "fwd_dx", "fwd_dw", "fwd_bwd", "step", "step_nobn"] + [
    f"conv{i}_{k}" for i in range(1, 5) for k in ("fwd", "dx", "dw")]
PART_TITLES = {
    "fwd": "(1) forward, train mode (BN batch stats)",
    "fwd_dx": "(2) forward + grad wrt input only",
    "fwd_dw": "(3) forward + grad wrt weights only",
    "fwd_bwd": "(4) forward + full backward",
    "step": "(5) train step with AdamW",
    "step_nobn": "(6) train step, no BatchNorm",
}
CONV_KINDS = {"fwd": "forward", "dx": "input grad", "dw": "weight grad"}
# Train-step variants: (worker, part). Code variants run on the default worker; flag variants are the
# project's step on each flag worker; the last ones combine the best flag with code variants.
VARIANTS = [
    ("default", "step"),
    ("default", "step_highest"),
    ("default", "fn-NHWC-flax"),
    ("default", "fn-NCHW-flax"),
    ("default", "fn-NHWC-twopass"),
    ("default", "fn-NHWC-fused"),
    ("ynn_off", "step"),
    ("ynn_dots_only", "step"),
    ("xnnpack", "step"),
    ("onednn", "step"),
    ("ynn_off", "fn-NCHW-flax"),
    ("ynn_off", "fn-NHWC-fused"),
    ("default", "fn-NHWC-flax-im2col"),
]
DEFAULT_VARIANTS = [0, 1, 3, 4, 5, 6, 7, 8, 9, 11, 12]  # 2 (measures as 0) and 10 on request: --variants=2,10


def variant_title(worker: str, part: str) -> str:
  if part == "step":
    what = "project CNN (flax, NHWC/HWIO)"
  elif part == "step_highest":
    what = "project CNN, precision HIGHEST"
  else:
    _, layout, bn, *conv_kind = part.split("-")
    what = f"lax {layout}/{'HWIO' if layout == 'NHWC' else 'OIHW'}, " + {
        "flax": "BN as flax (one pass)", "twopass": "BN two-pass variance",
        "fused": "BN+relu fused, custom VJP"}[bn]
    if conv_kind:
      what = "lax NHWC/HWIO, conv weight grad as im2col matmul"
  return f"{what:<48} {worker}"


# ----------------------------------------------------------------------------------------------------
# The PyTorch worker (run by --torch_python, written to a temporary file).
# ----------------------------------------------------------------------------------------------------
TORCH_WORKER = r'''
import json, sys, time
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
B, HW, FEAT, CONVS = cfg["batch"], cfg["hw"], cfg["features"], cfg["convs_per_block"]


def make(bn):
  layers, c = [], 1
  for width in FEAT:
    for _ in range(CONVS):
      layers.append(nn.Conv2d(c, width, 3, padding=1, bias=not bn))
      if bn:
        layers.append(nn.BatchNorm2d(width, eps=cfg["eps"], momentum=1 - cfg["bn_momentum"]))
      layers.append(nn.ReLU())
      c = width
    layers.append(nn.MaxPool2d(2))
  side = HW // 2 ** len(FEAT)
  layers += [nn.Flatten(), nn.Linear(c * side * side, cfg["dense"]), nn.ReLU(), nn.Dropout(cfg["dropout"]),
             nn.Linear(cfg["dense"], cfg["num_classes"])]
  return nn.Sequential(*layers).train()


def adamw(model):  # the project's AdamW: decay only >=2-D weights (weight_decay_mask='kernels').
  params = list(model.parameters())
  groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": cfg["weight_decay"]},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
  return torch.optim.AdamW(groups, lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8)


model, model_nobn = make(True), make(False)
init = np.load(cfg["init"])
convs = [m for m in model if isinstance(m, nn.Conv2d)]
bns = [m for m in model if isinstance(m, nn.BatchNorm2d)]
dense = [m for m in model if isinstance(m, nn.Linear)]
with torch.no_grad():
  for i, (c, b) in enumerate(zip(convs, bns)):
    c.weight.copy_(torch.from_numpy(init[f"conv{i}"]))
    b.weight.copy_(torch.from_numpy(init[f"bn{i}_scale"]))
    b.bias.copy_(torch.from_numpy(init[f"bn{i}_bias"]))
  for i, d in enumerate(dense):
    d.weight.copy_(torch.from_numpy(init[f"dense{i}_w"]))
    d.bias.copy_(torch.from_numpy(init[f"dense{i}_b"]))
x = torch.from_numpy(init["x"]).contiguous()  # NCHW, torch's native layout.
y = torch.from_numpy(init["y"]).long()
params = list(model.parameters())

# The same math as the JAX side: dropout off, the same weights and batch.
dropout = [m for m in model if isinstance(m, nn.Dropout)][0]
dropout.p = 0.0
loss = F.cross_entropy(model(x), y)
grads = torch.autograd.grad(loss, params)
check = {"loss": loss.item(), "grad_norm": float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))}
dropout.p = cfg["dropout"]

opt, opt_nobn = adamw(model), adamw(model_nobn)


def set_grad(xg, wg):
  for p in params:
    p.requires_grad_(wg)
  return x.clone().requires_grad_(True) if xg else x


def fwd():
  with torch.no_grad():
    F.cross_entropy(model(x), y)


def grad_of(xg, wg):
  def call():
    xi = set_grad(xg, wg)
    loss = F.cross_entropy(model(xi), y)
    torch.autograd.grad(loss, ([xi] if xg else []) + (params if wg else []))
  return call


def step_of(m, o):
  def call():
    o.zero_grad(set_to_none=True)
    F.cross_entropy(m(x), y).backward()
    o.step()
  return call


parts = {"fwd": fwd, "fwd_dx": grad_of(True, False), "fwd_dw": grad_of(False, True),
         "fwd_bwd": grad_of(True, True), "step": step_of(model, opt), "step_nobn": step_of(model_nobn, opt_nobn)}
conv_backward = torch.ops.aten.convolution_backward  # what autograd runs for conv2d's backward.
for i, (hw, cin, cout) in enumerate(cfg["conv_shapes"]):
  xi, wi, gi = torch.randn(B, cin, hw, hw), torch.randn(cout, cin, 3, 3), torch.randn(B, cout, hw, hw)

  def conv_fwd(xi=xi, wi=wi):
    with torch.no_grad():
      F.conv2d(xi, wi, padding=1)

  def conv_grad(mask, xi=xi, wi=wi, gi=gi):
    def call():
      with torch.no_grad():
        conv_backward(gi, xi, wi, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)
    return call

  parts[f"conv{i + 1}_fwd"] = conv_fwd
  parts[f"conv{i + 1}_dx"] = conv_grad([True, False, False])
  parts[f"conv{i + 1}_dw"] = conv_grad([False, True, False])


def timed(fn, n):
  out = []
  for _ in range(n):
    start = time.perf_counter()
    fn()
    out.append(time.perf_counter() - start)
  for p in params:
    p.requires_grad_(True)
  return out


warm = {}
for name in cfg["parts"]:
  warm[name] = timed(parts[name], 2)[-1]
print("@@" + json.dumps({"ready": True, "warm": warm, "check": check, "version": torch.__version__,
                         "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
  cmd = json.loads(line)
  if cmd.get("quit"):
    break
  print("@@" + json.dumps({"times": timed(parts[cmd["part"]], cmd["calls"])}), flush=True)
'''


# ----------------------------------------------------------------------------------------------------
# The JAX worker (this file with --_worker; XLA_FLAGS set by the caller).
# ----------------------------------------------------------------------------------------------------
def jax_worker(args):
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax
  from jax import lax

  from jaxai.core import optim
  from jaxai.models.classifiers import make_classifier
  from jaxai.ops import losses

  cfg = json.loads(args._worker_cfg)
  if cfg.get("cache_dir"):  # XLA:CPU takes ~10-20 s per train-step program here; the cache keys include XLA_FLAGS.
    jax.config.update("jax_compilation_cache_dir", cfg["cache_dir"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  import ml_collections
  config = ml_collections.ConfigDict({"model": cfg["model"], "optimizer": cfg["optimizer"]})  # the orchestrator's
  batch, hw, feats, per_block = cfg["batch"], cfg["hw"], tuple(cfg["features"]), cfg["convs_per_block"]
  model = make_classifier(config.model, cfg["num_classes"])
  model_nobn = make_classifier(_with(config.model, batch_norm=False), cfg["num_classes"])
  model_nodrop = make_classifier(_with(config.model, dropout_rate=0.0), cfg["num_classes"])
  tx = optim.make_optimizer(config.optimizer, cfg["total_steps"])
  opt_init = jax.jit(tx.init)
  rs = np.random.RandomState(0)
  x = jnp.asarray(rs.randn(batch, hw, hw, 1).astype(np.float32))  # normalized pixels, NHWC.
  y = jnp.asarray(rs.randint(0, cfg["num_classes"], batch).astype(np.int32))
  rng = jax.random.key(1)
  variables = jax.jit(lambda key: model.init(key, x, train=False))(jax.random.key(0))  # jitted: one program.
  params, bstats = variables["params"], variables["batch_stats"]
  params_nobn = jax.jit(lambda key: model_nobn.init(key, x, train=False))(jax.random.key(0))["params"]

  # ---- the project's CNN
  def loss_project(params, bstats, x, rng, m=model):
    logits, new = m.apply({"params": params, "batch_stats": bstats}, x, train=True, rngs={"dropout": rng},
                          mutable=["batch_stats"])
    return losses.cross_entropy(logits, y).mean(), new["batch_stats"]

  def loss_nobn(params, x, rng):
    logits = model_nobn.apply({"params": params}, x, train=True, rngs={"dropout": rng})
    return losses.cross_entropy(logits, y).mean()

  def train_step(loss_fn):  # loss and gradient norm out, as the project's trainer's metrics.
    def step(state, x, rng, *rate):
      params, bstats, opt = state
      (loss, new_bstats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, bstats, x, rng, *rate)
      updates, opt = tx.update(grads, opt, params)
      return (optax.apply_updates(params, updates), new_bstats, opt), (loss, optax.global_norm(grads))
    return step

  def step_nobn(state, x, rng):
    params, opt = state
    loss, grads = jax.value_and_grad(loss_nobn)(params, x, rng)
    updates, opt = tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), opt), (loss, optax.global_norm(grads))

  # ---- the same network written with lax directly: layout, BatchNorm formulation.
  def to_fn(params, bstats, layout):
    n = len(feats) * per_block
    side, c = hw // 2 ** len(feats), feats[-1]
    p, s = {}, {}
    for i in range(n):
      k = params[f"Conv_{i}"]["kernel"]  # HWIO
      p[f"conv{i}"] = k if layout == "NHWC" else k.transpose(3, 2, 0, 1)  # OIHW
      p[f"bn{i}"] = dict(params[f"BatchNorm_{i}"])
      s[f"bn{i}"] = dict(bstats[f"BatchNorm_{i}"])
    k1 = params["Dense_0"]["kernel"]
    if layout == "NCHW":  # flatten order (c, h, w) instead of (h, w, c): the same function.
      k1 = k1.reshape(side, side, c, -1).transpose(2, 0, 1, 3).reshape(side * side * c, -1)
    p["dense0"] = {"kernel": k1, "bias": params["Dense_0"]["bias"]}
    p["dense1"] = dict(params["Dense_1"])
    return p, s

  def bn_flax(axes, shp):
    def f(x, scale, bias):  # flax's nn.BatchNorm: E[x], E[x^2] in one pass, then (x - mean) * scale / std + bias.
      mean, mean2 = x.mean(axes), (x * x).mean(axes)
      var = jnp.maximum(0.0, mean2 - mean * mean)
      y = (x - mean.reshape(shp)) * (lax.rsqrt(var + EPS) * scale).reshape(shp) + bias.reshape(shp)
      return jax.nn.relu(y), mean, var
    return f

  def bn_twopass(axes, shp):
    def f(x, scale, bias):
      mean = x.mean(axes)
      centered = x - mean.reshape(shp)
      var = (centered * centered).mean(axes)
      return jax.nn.relu(centered * (lax.rsqrt(var + EPS) * scale).reshape(shp) + bias.reshape(shp)), mean, var
    return f

  def bn_fused(axes, shp):
    @jax.custom_vjp
    def f(x, scale, bias):
      return fwd(x, scale, bias)[0]

    def fwd(x, scale, bias):  # one pass for the statistics, then one multiply-add + relu.
      mean = x.mean(axes)
      var = jnp.maximum(0.0, (x * x).mean(axes) - mean * mean)
      inv = lax.rsqrt(var + EPS)
      a = scale * inv
      out = jax.nn.relu(x * a.reshape(shp) + (bias - mean * a).reshape(shp))
      return (out, mean, var), (x, mean, inv, scale, out)

    def bwd(res, cts):  # the textbook BatchNorm backward; mean/var only feed the running averages.
      x, mean, inv, scale, out = res
      g = jnp.where(out > 0, cts[0], 0.0)
      n = x.size // mean.size
      xhat = (x - mean.reshape(shp)) * inv.reshape(shp)
      dbias, dscale = g.sum(axes), (g * xhat).sum(axes)
      dx = (scale * inv / n).reshape(shp) * (n * g - dbias.reshape(shp) - xhat * dscale.reshape(shp))
      return dx, dscale, dbias

    f.defvjp(fwd, bwd)
    return f

  def conv_im2col_dw(dn):
    """lax's conv with a custom VJP whose weight gradient is one matmul of the 3x3 patches (im2col) with
    the output gradient, instead of the convolution over the batch that autodiff emits (NHWC only)."""
    def plain(x, w):
      return lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn)

    @jax.custom_vjp
    def conv(x, w):
      return plain(x, w)

    def fwd(x, w):
      return plain(x, w), (x, w)

    def bwd(res, g):
      x, w = res
      dx = jax.vjp(lambda x: plain(x, w), x)[1](g)[0]
      side_h, side_w, cin = x.shape[1:]
      xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
      patches = jnp.concatenate([xp[:, i:i + side_h, j:j + side_w, :] for i in range(3) for j in range(3)], -1)
      dw = jnp.dot(patches.reshape(-1, 9 * cin).T, g.reshape(-1, g.shape[-1]))
      return dx, dw.reshape(w.shape)

    conv.defvjp(fwd, bwd)
    return conv

  def fn_apply(layout, bn, conv_kind="lax", precision=None):
    nchw = layout == "NCHW"
    dn = ("NCHW", "OIHW", "NCHW") if nchw else ("NHWC", "HWIO", "NHWC")
    if conv_kind == "im2col":
      im2col = conv_im2col_dw(dn)
    axes, shp = ((0, 2, 3), (1, -1, 1, 1)) if nchw else ((0, 1, 2), (1, 1, 1, -1))
    norm = {"flax": bn_flax, "twopass": bn_twopass, "fused": bn_fused}[bn](axes, shp)
    window = (1, 1, 2, 2) if nchw else (1, 2, 2, 1)
    momentum = cfg["bn_momentum"]

    def loss_fn(p, s, x, rng, rate):  # rate: the dropout rate, traced (0: no dropout, the same program).
      h = x.transpose(0, 3, 1, 2) if nchw else x
      new_s, i = {}, 0
      for _ in feats:
        for _ in range(per_block):
          if conv_kind == "im2col":
            h = im2col(h, p[f"conv{i}"])
          else:
            h = lax.conv_general_dilated(h, p[f"conv{i}"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn,
                                         precision=precision)
          h, mean, var = norm(h, p[f"bn{i}"]["scale"], p[f"bn{i}"]["bias"])
          old = s[f"bn{i}"]
          new_s[f"bn{i}"] = {"mean": momentum * old["mean"] + (1 - momentum) * mean,
                             "var": momentum * old["var"] + (1 - momentum) * var}
          i += 1
        h = lax.reduce_window(h, -jnp.inf, lax.max, window, window, "VALID")
      h = h.reshape(h.shape[0], -1)
      h = jax.nn.relu(jnp.dot(h, p["dense0"]["kernel"], precision=precision) + p["dense0"]["bias"])
      keep = jax.random.bernoulli(rng, 1.0 - rate, h.shape)
      h = jnp.where(keep, h / (1.0 - rate), 0.0)
      logits = jnp.dot(h, p["dense1"]["kernel"], precision=precision) + p["dense1"]["bias"]
      return losses.cross_entropy(logits, y).mean(), new_s
    return loss_fn

  # ---- the parts: name -> (function, args, donate)
  def grad_of(loss_fn, wrt):
    def f(params, bstats, x, rng):
      return jax.value_and_grad(lambda *a: loss_fn(*a)[0], argnums=wrt)(params, bstats, x, rng)
    return f

  state = (params, bstats, opt_init(params))
  builders = {
      "fwd": lambda: (loss_project, (params, bstats, x, rng), False),
      "fwd_dx": lambda: (grad_of(loss_project, 2), (params, bstats, x, rng), False),
      "fwd_dw": lambda: (grad_of(loss_project, 0), (params, bstats, x, rng), False),
      "fwd_bwd": lambda: (grad_of(loss_project, (0, 2)), (params, bstats, x, rng), False),
      "step": lambda: (train_step(loss_project), (state, x, rng), True),
      "step_nobn": lambda: (step_nobn, ((params_nobn, opt_init(params_nobn)), x, rng), True),
  }

  def highest_step():
    step = train_step(loss_project)

    def f(state, x, rng):
      with jax.default_matmul_precision("highest"):
        return step(state, x, rng)
    return f, (state, x, rng), True
  builders["step_highest"] = highest_step

  def fn_step(name):
    _, layout, bn, *conv_kind = name.split("-")
    p, s = jax.jit(to_fn, static_argnums=2)(params, bstats, layout)
    rate = jnp.asarray(config.model.dropout_rate, jnp.float32)
    return train_step(fn_apply(layout, bn, *conv_kind)), ((p, s, jax.jit(tx.init)(p)), x, rng, rate), True

  dn = ("NHWC", "HWIO", "NHWC")
  for i, (side, cin, cout) in enumerate(cfg["conv_shapes"]):
    rsi = np.random.RandomState(10 + i)
    xi, wi, gi = (jnp.asarray(rsi.randn(*shape).astype(np.float32)) for shape in (
        (batch, side, side, cin), (3, 3, cin, cout), (batch, side, side, cout)))

    def conv(x, w):
      return lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn)

    builders[f"conv{i + 1}_fwd"] = lambda xi=xi, wi=wi: (conv, (xi, wi), False)
    builders[f"conv{i + 1}_dx"] = lambda xi=xi, wi=wi, gi=gi: (
        lambda x, w, g: jax.vjp(lambda x: conv(x, w), x)[1](g)[0], (xi, wi, gi), False)
    builders[f"conv{i + 1}_dw"] = lambda xi=xi, wi=wi, gi=gi: (
        lambda x, w, g: jax.vjp(lambda w: conv(x, w), w)[1](g)[0], (xi, wi, gi), False)

  # ---- the same math (dropout off, the project's initial weights): project vs torch and vs lax variants
  # (those: their own compiled train step, given dropout rate 0, at the initial state).
  check = {}
  if cfg.get("init"):
    save_torch_init(cfg["init"], params, x, y, hw // 2 ** len(feats), feats[-1])
    emit({"init": cfg["init"]})
    @jax.jit
    def loss_and_norm(p):
      loss, grads = jax.value_and_grad(lambda p: loss_project(p, bstats, x, rng, m=model_nodrop)[0])(p)
      return loss, optax.global_norm(grads)
    loss, gnorm = loss_and_norm(params)
    check["project"] = {"loss": float(loss), "grad_norm": float(gnorm)}

  copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))  # jitted: eager ops would compile one by one.
  compiled, warm, compile_s, library = {}, {}, {}, {}
  for name in cfg["parts"]:
    fn, fargs, donate = fn_step(name) if name.startswith("fn-") else builders[name]()
    start = time.perf_counter()
    exe = jax.jit(fn, donate_argnums=(0,) if donate else ()).lower(*fargs).compile()
    compile_s[name] = time.perf_counter() - start
    if name.startswith(("step", "fn-")):
      library[name] = library_calls(exe.as_text())
      cost = exe.cost_analysis()
      cost = (cost[0] if isinstance(cost, (list, tuple)) else cost) or {}
      library[name]["gflop"] = round(cost.get("flops", float("nan")) / 1e9, 2)
    if name.startswith("fn-"):
      _, (loss, gnorm) = exe(copy(fargs[0]), *fargs[1:3], jnp.zeros((), jnp.float32))
      check[name] = {"loss": float(loss), "grad_norm": float(gnorm)}
    if donate:  # own copies: a donated state is deleted, and the parts share the initial arrays.
      fargs = (copy(fargs[0]),) + tuple(fargs[1:])
    holder = {"args": fargs}

    def call(exe=exe, holder=holder, donate=donate):
      out = exe(*holder["args"])
      jax.block_until_ready(out)
      if donate:  # thread the state through, as training does.
        holder["args"] = (out[0],) + holder["args"][1:]

    compiled[name] = call
    warm[name] = _timed(call, 1)[-1]
  emit({"ready": True, "warm": warm, "check": check, "compile_s": compile_s, "library": library,
        "version": jax.__version__, "backend": jax.default_backend(), "devices": jax.device_count()})
  for line in sys.stdin:
    cmd = json.loads(line)
    if cmd.get("quit"):
      break
    emit({"times": _timed(compiled[cmd["part"]], cmd["calls"])})


def library_calls(hlo: str) -> dict:
  """Where the compiled program's convolutions and dots went: YNNPACK, XNNPACK or oneDNN fusions/custom
  calls, or XLA's own (Eigen) kernels."""
  blocks, name = {}, "?"
  for line in hlo.splitlines():
    if line and not line.startswith(" ") and "{" in line:
      name = line.split()[1] if line.startswith("ENTRY") else line.split()[0]
    blocks.setdefault(name.lstrip("%"), []).append(line)
  library = {}
  for kind in ("__ynn_fusion", "__xnn_fusion", "onednn"):
    for lines in blocks.values():
      for line in lines:
        if kind in line and "calls=" in line:
          library[line.split("calls=")[1].split(",")[0].strip().lstrip("%")] = kind.strip("_").split("_")[0]
  counts = {}
  for comp, lines in blocks.items():
    where = library.get(comp, "xla")
    for line in lines:
      for op in ("convolution", "dot"):
        if f" {op}(" in line:
          counts[f"{op} {where}"] = counts.get(f"{op} {where}", 0) + 1
    if comp not in library:
      for line in lines:
        if "custom-call(" in line and "onednn" in line.lower():
          counts["onednn custom-call"] = counts.get("onednn custom-call", 0) + 1
  return counts


def _with(model_config, **changes):
  c = model_config.copy_and_resolve_references()
  for k, v in changes.items():
    c[k] = v
  return c


def save_torch_init(path, params, x, y, side, c):
  """The JAX initial weights and batch in torch's layouts (OIHW, NCHW, Linear's (out, in))."""
  import numpy as np
  out = {"x": np.asarray(x).transpose(0, 3, 1, 2), "y": np.asarray(y)}
  i = 0
  while f"Conv_{i}" in params:
    out[f"conv{i}"] = np.asarray(params[f"Conv_{i}"]["kernel"]).transpose(3, 2, 0, 1)
    out[f"bn{i}_scale"] = np.asarray(params[f"BatchNorm_{i}"]["scale"])
    out[f"bn{i}_bias"] = np.asarray(params[f"BatchNorm_{i}"]["bias"])
    i += 1
  k1 = np.asarray(params["Dense_0"]["kernel"])
  k1 = k1.reshape(side, side, c, -1).transpose(2, 0, 1, 3).reshape(side * side * c, -1)  # torch flattens (c, h, w).
  out["dense0_w"], out["dense0_b"] = k1.T, np.asarray(params["Dense_0"]["bias"])
  out["dense1_w"], out["dense1_b"] = np.asarray(params["Dense_1"]["kernel"]).T, np.asarray(params["Dense_1"]["bias"])
  np.savez(path, **{k: np.ascontiguousarray(v, dtype=np.int64 if k == "y" else np.float32) for k, v in out.items()})


def _timed(fn, n):
  out = []
  for _ in range(n):
    start = time.perf_counter()
    fn()
    out.append(time.perf_counter() - start)
  return out


def emit(msg):
  print("@@" + json.dumps(msg), flush=True)


def load_config():
  import importlib.util
  spec = importlib.util.spec_from_file_location("mnist_cnn_config", CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


# ----------------------------------------------------------------------------------------------------
# The orchestrator.
# ----------------------------------------------------------------------------------------------------
class Worker:
  def __init__(self, name, cmd, env, log_dir):
    self.name, self.dead, self.ready = name, None, None
    self.log = open(os.path.join(log_dir, f"{name}.stderr"), "w+")
    self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                 env=env, cwd=REPO)

  def _read(self):
    for line in self.proc.stdout:
      if line.startswith("@@"):
        return json.loads(line[2:])
    self.proc.wait()
    self.log.seek(0)
    tail = self.log.read()[-1500:]
    self.dead = f"exited with status {self.proc.returncode}: ...{tail.strip()[-600:]}"
    return None

  def wait_for(self, key):
    while True:
      msg = self._read()
      if msg is None or key in msg:
        return msg

  def wait_ready(self):
    self.ready = self.wait_for("ready")
    return self.ready

  def time(self, part, calls):
    if self.dead:
      return []
    self.proc.stdin.write(json.dumps({"part": part, "calls": calls}) + "\n")
    self.proc.stdin.flush()
    msg = self._read()
    return msg["times"] if msg else []

  def close(self):
    if self.proc.poll() is None:
      try:
        self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)
      except (OSError, subprocess.TimeoutExpired):
        self.proc.kill()


def torch_available(python):
  if not python or not os.path.exists(python):
    return False, f"{python or '(none)'} does not exist"
  try:
    proc = subprocess.run([python, "-c", "import torch, numpy"], capture_output=True, text=True, timeout=120)
  except (OSError, subprocess.TimeoutExpired) as e:
    return False, str(e)
  return proc.returncode == 0, proc.stderr.strip()[-300:]


def median_ms(times):
  return statistics.median(times) * 1e3 if times else float("nan")


def fmt(v, spec="8.1f"):
  return format(v, spec) if v == v else format("-", ">" + spec.split(".")[0])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--torch_python", default=os.environ.get("TORCH_PYTHON", ""),
                      help="a python with torch and numpy (the peer); '' runs the JAX side alone")
  parser.add_argument("--seconds", type=float, default=3.0,
                      help="timed seconds per part per side, within [min_calls, max_calls] calls")
  parser.add_argument("--conv_seconds", type=float, default=1.5, help="the same for the conv parts (7)")
  parser.add_argument("--min_calls", type=int, default=6)
  parser.add_argument("--max_calls", type=int, default=50)
  parser.add_argument("--rounds", type=int, default=3,
                      help="the calls of each part are split into this many interleaved rounds")
  parser.add_argument("--variants", default=",".join(map(str, DEFAULT_VARIANTS)),
                      help="comma-separated indices into VARIANTS (default: the listed ones), 'all' or '' (none)")
  parser.add_argument("--parts", default=",".join(MAIN_PARTS),
                      help="comma-separated parts of the per-part table ('' for none)")
  parser.add_argument("--compile_cache", default=os.path.join(tempfile.gettempdir(), "cnn_vs_pytorch_xla_cache"),
                      help="JAX's persistent compilation cache (a later run skips most compilation); '' for none")
  parser.add_argument("--second_column", default=SECOND_COLUMN,
                      help=f"a JAX flag setting ({', '.join(FLAGS)}) for the table's third column; '' for none")
  parser.add_argument("--_worker", default="", help=argparse.SUPPRESS)
  parser.add_argument("--_worker_cfg", default="", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args._worker == "jax":
    return jax_worker(args)

  config = load_config()
  feats, per_block = tuple(config.model.features), config.model.get("convs_per_block", 2)
  hw, shapes, cin = 28, [], 1
  for width in feats:
    for _ in range(per_block):
      shapes.append((hw, cin, width))
      cin = width
    hw //= 2
  base = {"batch": config.batch_size, "hw": 28, "features": list(feats), "convs_per_block": per_block,
          "dense": config.model.dense, "dropout": config.model.dropout_rate, "num_classes": 10,
          "bn_momentum": 0.9, "eps": EPS, "lr": config.optimizer.learning_rate,
          "weight_decay": config.optimizer.weight_decay, "conv_shapes": shapes, "threads": 2,
          "total_steps": int(config.num_epochs * 60_000 / config.batch_size),
          "model": config.model.to_dict(), "optimizer": config.optimizer.to_dict()}
  variants = VARIANTS if args.variants == "all" else [
      VARIANTS[int(i)] for i in args.variants.split(",") if i.strip()]
  second = args.second_column
  if second and second not in FLAGS:
    sys.exit(f"--second_column={second!r}: use one of {', '.join(FLAGS)} or ''")
  main_parts = [p for p in args.parts.split(",") if p.strip()]
  for p in main_parts:
    if p not in MAIN_PARTS:
      sys.exit(f"--parts: {p!r} is not one of {', '.join(MAIN_PARTS)}")
  jax_parts = {"default": list(main_parts) + ([] if "step" in main_parts else ["step"])}  # step: the overall figure
  if second:
    jax_parts.setdefault(second, []).extend(main_parts)
  for w, part in variants:
    if part not in jax_parts.setdefault(w, []):
      jax_parts[w].append(part)

  have_torch, why = torch_available(args.torch_python)
  tmp = tempfile.mkdtemp(prefix="cnn_vs_pytorch_")
  init_path = os.path.join(tmp, "init.npz")
  load0 = os.getloadavg()
  print(f"MNIST CNN ({CONFIG and os.path.relpath(CONFIG, REPO)}: conv3x3 {shapes[0][2]}/{shapes[1][2]}/"
        f"{shapes[2][2]}/{shapes[3][2]} + BN + relu, max-pool per block, dense {config.model.dense}, dropout "
        f"{config.model.dropout_rate}, AdamW), batch {config.batch_size}, 28x28x1, float32; {os.cpu_count()} CPU "
        f"cores, load average {load0[0]:.1f} at start", flush=True)
  if not have_torch:
    print(f"PyTorch peer not available ({why}); the JAX side runs alone. Set it up once with\n"
          f"  python -m venv V && V/bin/pip install torch numpy\n"
          f"and pass --torch_python=V/bin/python.", flush=True)

  workers = {}
  atexit.register(lambda: [w.proc.kill() for w in workers.values() if w.proc.poll() is None])  # on any exit.
  start = time.perf_counter()
  for name, parts in jax_parts.items():  # started together: only compilation overlaps, no timing yet.
    env = dict(os.environ, XLA_FLAGS=FLAGS[name]) if FLAGS[name] else {
        k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    cfg = dict(base, parts=parts, init=init_path if name == "default" else "", cache_dir=args.compile_cache)
    workers[name] = Worker(name, [sys.executable, os.path.abspath(__file__), "--_worker=jax",
                                  "--_worker_cfg=" + json.dumps(cfg)], env, tmp)
  if workers["default"].wait_for("init") is None:
    sys.exit(f"error: the JAX worker {workers['default'].dead}")
  if have_torch:  # starts once the JAX worker has written the initial weights and batch.
    script = os.path.join(tmp, "torch_worker.py")
    with open(script, "w") as f:
      f.write(TORCH_WORKER)
    cfg = dict(base, parts=sorted(set(main_parts) | {"step"}, key=MAIN_PARTS.index), init=init_path)
    workers["torch"] = Worker("torch", [args.torch_python, script, json.dumps(cfg)], dict(os.environ), tmp)
  ready = workers["default"].wait_ready()
  if ready is None:
    sys.exit(f"error: the JAX worker {workers['default'].dead}")
  for name, w in workers.items():
    if name != "default" and w.wait_ready() is None:
      print(f"note: worker {name} ({FLAGS.get(name, 'torch')}) {w.dead}", flush=True)
  live = {n: w for n, w in workers.items() if not w.dead}
  print(f"workers ready after {time.perf_counter() - start:.0f} s (JAX {ready['version']} on {ready['devices']} "
        f"{ready['backend']} device(s); compile of the train step "
        f"{ready['compile_s']['step']:.1f} s)" + (f"; torch {live['torch'].ready['version']}, "
                                               f"{live['torch'].ready['threads']} threads" if 'torch' in live else ""),
        flush=True)
  gflop = ready["library"]["step"]["gflop"]
  print(f"XLA's cost analysis of the train step: {gflop:.1f} GFLOP per step of {config.batch_size} images")
  checks = ready["check"]
  line = f"same math (dropout off, the same initial weights and batch): loss JAX {checks['project']['loss']:.6f}"
  if "torch" in live:
    line += f" torch {live['torch'].ready['check']['loss']:.6f}"
  line += f"; grad norm JAX {checks['project']['grad_norm']:.6f}"
  if "torch" in live:
    line += f" torch {live['torch'].ready['check']['grad_norm']:.6f}"
  print(line)
  for name, c in checks.items():
    if name != "project":
      print(f"  lax variant {name}: loss {c['loss'] - checks['project']['loss']:+.1e}, grad norm "
            f"{c['grad_norm'] - checks['project']['grad_norm']:+.1e} from the project's")

  def calls_for(w, part):
    warm = w.ready["warm"].get(part, 1.0)
    seconds = args.conv_seconds if part.startswith("conv") else args.seconds
    n = max(args.min_calls, min(args.max_calls, round(seconds / max(warm, 1e-6))))
    return max(1, math.ceil(n / args.rounds))

  samples = {}

  def measure(pairs):
    for r in range(args.rounds):
      order = pairs if r % 2 == 0 else pairs[::-1]
      for wname, part in order:
        if wname in live:
          samples.setdefault((wname, part), []).extend(live[wname].time(part, calls_for(live[wname], part)))

  # Main table: each part on the JAX worker, torch, then the second JAX column, alternating per part.
  t0 = time.perf_counter()
  sides = ["default", "torch"] + ([second] if second else [])
  measure([(s, p) for p in main_parts for s in sides])
  t_main = time.perf_counter() - t0
  # Variants: the full train step per variant, and torch's step, in the same rounds.
  t0 = time.perf_counter()
  # (those measured in the per-part table keep their samples; the project's step is always measured)
  measure([(w, p) for w, p in [("default", "step")] + [v for v in variants if v != ("default", "step")]
           if len(samples.get((w, p), [])) < args.min_calls] + [("torch", "step")])
  t_var = time.perf_counter() - t0
  for w in workers.values():
    w.close()

  def ms(w, p):
    return median_ms(samples.get((w, p), []))

  def n(w, p):
    return len(samples.get((w, p), []))

  print(f"\nPer part: median ms per call (calls JAX/torch); speed = torch ms / JAX ms (>1: JAX faster)")
  head = f"{'part':<44} {'JAX ms':>8} {'torch ms':>8} {'speed':>6} {'calls':>7}"
  if second:
    head += f" | {'JAX ' + second:>12} {'speed':>6}"
  print(head)
  print("-" * len(head))
  conv_sum, last_conv = {s: 0.0 for s in sides}, None
  for p in main_parts:
    if p.startswith("conv"):
      i, kind = int(p[4]) - 1, p.split("_")[1]
      side, ci, co = shapes[i]
      first = i != last_conv  # the layer's first row names it
      last_conv = i
      title = (f"(7) conv{i + 1} {side}x{side} {ci:>2}->{co:<2} " if first else " " * 24) + CONV_KINDS[kind]
      for s in sides:
        conv_sum[s] += ms(s, p)
    else:
      title = PART_TITLES[p]
    j, t = ms("default", p), ms("torch", p)
    row = f"{title:<44} {fmt(j)} {fmt(t)} {fmt(t / j, '6.2f')} {n('default', p):>3}/{n('torch', p):<3}"
    if second:
      j2 = ms(second, p)
      row += f" | {fmt(j2, '12.1f')} {fmt(t / j2, '6.2f')}"
    print(row)
  nan = float("nan")
  conv_parts = [p for p in main_parts if p.startswith("conv")]
  if conv_parts:
    tc = conv_sum["torch"] if "torch" in live else nan
    row = f"{f'    sum of the {len(conv_parts)} conv parts':<44} {fmt(conv_sum['default'])} {fmt(tc)} " \
          f"{fmt(tc / conv_sum['default'], '6.2f')} {'':7}"
    if second:
      row += f" | {fmt(conv_sum[second], '12.1f')} {fmt(tc / conv_sum[second], '6.2f')}"
    print(row)
  for label, a, b in (("backward (4)-(1)", "fwd_bwd", "fwd"), ("BatchNorm's share (5)-(6)", "step", "step_nobn"),
                      ("AdamW and BN-state update (5)-(3)", "step", "fwd_dw")):
    if a in main_parts and b in main_parts:
      vals = [ms(s, a) - ms(s, b) for s in sides]
      row = f"{'    ' + label:<44} {fmt(vals[0])} {fmt(vals[1])} {'':6} {'':7}"
      if second:
        row += f" | {fmt(vals[2], '12.1f')}"
      print(row)

  batch = config.batch_size
  have_peer = "torch" in live and samples.get(("torch", "step"))
  torch_step = median_ms(samples.get(("torch", "step"), []))
  if variants:
    print(f"\nTrain-step variants (5): images/s = {batch} / median step time" +
          ("; torch's step measured in the same rounds" if have_peer else ""))
    head = (f"{'JAX formulation':<48} {'XLA flags':<14} {'ms':>7} {'img/s':>7} {'vs torch':>8} {'calls':>5}"
            "  library calls")
    print(head)
    print("-" * len(head))
    for w, p in variants:
      if w not in live:
        print(f"{variant_title(w, p)[:48]:<48} {w:<14} not run: {(workers[w].dead or '')[:200]}")
        continue
      t = ms(w, p)
      lib = live[w].ready["library"].get(p, {})
      libs = ", ".join(f"{k} {v}" for k, v in lib.items() if v and k != "gflop") or "none"
      print(f"{variant_title(w, p)[:48]:<48} {w:<14} {fmt(t, '7.0f')} {fmt(batch / t * 1e3, '7.1f')} "
            f"{fmt(torch_step / t, '8.2f')} {n(w, p):>5}  {libs}")
    if have_peer:
      print(f"{'PyTorch ' + live['torch'].ready['version'] + ' (NCHW, its native layout)':<48} {'':<14} "
            f"{fmt(torch_step, '7.0f')} {fmt(batch / torch_step * 1e3, '7.1f')} {fmt(1.0, '8.2f')} "
            f"{n('torch', 'step'):>5}  (oneDNN convolutions)")
    for name, flags in FLAGS.items():
      if name in jax_parts:
        print(f"  {name:<14} XLA_FLAGS={flags!r}" + (f"  ({FLAG_NOTES[name]})" if FLAG_NOTES[name] else ""))

  # Overall: the project's step (default flags) against torch's, each pooled over both phases.
  j_all = median_ms(samples.get(("default", "step"), []))
  best = None
  for w, p in [("default", "step")] + list(variants):
    if samples.get((w, p)):
      t = ms(w, p)
      if best is None or t < best[0]:
        best = (t, w, p)
  load1 = os.getloadavg()
  print(f"\nOverall, whole train step: JAX (project CNN, default flags) {batch / j_all * 1e3:.1f} img/s "
        f"({gflop / j_all * 1e3:.0f} GFLOP/s)" + (
            f", PyTorch {batch / torch_step * 1e3:.1f} img/s: JAX/PyTorch = {torch_step / j_all:.2f}x "
            f"(target >= 0.5x; the issue measured 0.25x)" if have_peer else " (no PyTorch peer)"))
  if best and best[1:] != ("default", "step"):
    print(f"Best JAX variant: {variant_title(best[1], best[2])[:48].rstrip()}, XLA flags {best[1]}: "
          f"{batch / best[0] * 1e3:.1f} img/s" + (f" = {torch_step / best[0]:.2f}x PyTorch" if have_peer else ""))
  print(f"(timing {t_main:.0f} s per-part + {t_var:.0f} s variants, {time.perf_counter() - start:.0f} s in all; "
        f"load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end)")
  summary = f"SUMMARY cnn_vs_pytorch batch {batch}: JAX {batch / j_all * 1e3:.1f} img/s"
  if have_peer:
    summary += f", torch {batch / torch_step * 1e3:.1f} img/s, ratio {torch_step / j_all:.2f}"
  if best:
    summary += f"; best JAX variant ({best[2]}, {best[1]}) {batch / best[0] * 1e3:.1f} img/s" + (
        f" ({torch_step / best[0]:.2f}x)" if have_peer else "")
  print(summary)
  dead = [n for n, w in workers.items() if w.dead]
  if dead:
    print(f"(the logs of the workers that failed ({', '.join(dead)}) are in {tmp})")
  else:
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
  sys.exit(main())
