"""A classification run and its compressed variants side by side: parameters, bytes, accuracy, latency.

  python -m jaxai.compress_table --workdir=<run>
  python -m jaxai.compress_table --workdir=<run> --variants=float,int8,int8_static,int4,prune:0.9 \
      --num_examples=2000 --batch_size=256 --export_dir=/tmp/exported

Variants (--variants, comma-separated; '' = every one that applies to the run):
  float         the run's model as trained (a LoRA run: with its adapters unmerged; a QAT run: without
                fake quantization).
  lora_merged   (LoRA runs) the adapters folded into their kernels: the base model (jaxai.compress.lora.merge).
  qat           (QAT runs) the model as trained, with fake quantization.
  ptq           (QAT runs) integer weights by the run's own config.quantization rules (its statistics
                when it trained static scales).
  int8          int8 weights per output channel, int8 activations with per-example (dynamic) scales.
  int8_static   int8 weights, int8 activations with scales calibrated on --calibration_examples
                training images.
  int4          int4 Dense weights (weight-only), int8 convolutions (see jaxai.compress.quantization).
  prune:<s>     one-shot global magnitude pruning of the kernels to sparsity s (jaxai.compress.pruning).
Every variant but float starts from the run's float weights (a LoRA run's merged ones).

Columns: parameters (and nonzero ones) of the stored weights; 'raw' bytes = the stored values at
their width (int8 1 byte, int4 half a byte, float32 4; scales included); 'file' bytes = the variant's
exported weights and batch statistics in a compact .npz (np.savez_compressed; int4 packed two per
byte; a float leaf with more zeros than not as a bit mask and its nonzero values); test accuracy on
the run's eval split (or its first --num_examples images); the median latency of one jitted batch of
--batch_size images on this machine's first device, after warm-up, over --repeats calls, with its
ratio to float's. XLA:CPU has no fast int8 kernels, so expect no int8 speed-up there.

The table is printed with each pruned variant's per-layer sparsity, and written as JSON to --out
(default <workdir>/compress/table.json). --export_dir keeps the .npz files and, for lora_merged,
writes a new run directory (config.json with lora.rank=0, facts.json, a checkpoint) that every
tool can load; `--export_only --export_dir=DIR` does only that, for a LoRA run of any task (the
char GPT's as well). Bad flags, a workdir that is not a classification run and unknown variants are errors
before anything compiles.
"""
import dataclasses
import json
import os
import sys
import tempfile
import time

from absl import app, logging

from jaxai.errors import UserError

TASK = "classification"
FIXED = ("float", "lora_merged", "qat", "ptq", "int8", "int8_static", "int4")
DEFAULT_PRUNE = (0.5, 0.9)
PRUNABLE = r".*kernel"
SPARSE_BELOW = 0.5  # a float leaf with a nonzero fraction below this is exported as mask + values.


@dataclasses.dataclass(frozen=True)
class Variant:
  name: str               # as on the command line: 'float', 'int8', 'prune:0.9', ...
  sparsity: float = 0.0   # prune:<s> only.

  @property
  def file_stem(self) -> str:
    return self.name.replace(":", "_")


def quant_config(name: str, run_config=None):
  """The jaxai.compress.quantization config of a quantized variant ('ptq': the run's own)."""
  from jaxai.compress import quantization
  if name == "ptq":
    cfg = quantization.default_config()
    cfg.update(run_config.quantization.to_dict())
  else:
    cfg = quantization.default_config()
    cfg.update(dict(int8=dict(), int8_static=dict(static_activations=True),
                    int4=dict(weights="int4", activations="none"))[name])
  cfg.mode = "ptq"
  return cfg


def parse_variants(text: str, config) -> list[Variant]:
  """'float,int8,prune:0.9' -> Variants, checked against the run: UserError for unknown ones."""
  is_lora = config.lora.rank > 0
  is_qat = config.quantization.mode == "qat"
  if not text.strip():
    names = (["float"] + (["lora_merged"] if is_lora else []) + (["qat", "ptq"] if is_qat else [])
             + ["int8", "int8_static", "int4"] + [f"prune:{s:g}" for s in DEFAULT_PRUNE])
    text = ",".join(names)
  variants = []
  for item in (s.strip() for s in text.split(",")):
    if not item:
      continue
    if item.startswith("prune:"):
      try:
        sparsity = float(item[len("prune:"):])
      except ValueError:
        sparsity = -1.0
      if not 0.0 < sparsity < 1.0:
        raise UserError(f"--variants: {item!r} needs a sparsity in (0, 1), e.g. prune:0.9.")
      variants.append(Variant(f"prune:{sparsity:g}", sparsity))
    elif item in FIXED:
      if item == "lora_merged" and not is_lora:
        raise UserError("--variants: lora_merged applies to a run trained with LoRA adapters "
                        "(config.lora.rank > 0); this run has none.")
      if item in ("qat", "ptq") and not is_qat:
        raise UserError(f"--variants: {item} applies to a run trained with quantization-aware training "
                        "(config.quantization.mode='qat'); use int8, int8_static or int4 for this run.")
      variants.append(Variant(item))
    else:
      raise UserError(f"--variants: {item!r} is unknown; use {', '.join(FIXED)} or prune:<sparsity> "
                      "(e.g. --variants=float,int8,int8_static,int4,prune:0.9).")
  names = [v.name for v in variants]
  if len(set(names)) != len(names):
    raise UserError(f"--variants lists a variant twice: {names}.")
  if "float" not in names:
    variants.insert(0, Variant("float"))  # the reference of every ratio.
  return variants


def check_args(num_examples: int, batch_size: int, repeats: int, calibration_examples: int) -> None:
  if num_examples < 0 or batch_size < 0:
    raise UserError(f"--num_examples={num_examples} and --batch_size={batch_size} must be >= 0 (0: the "
                    "run's eval split, the run's eval_batch_size).")
  if repeats < 1:
    raise UserError(f"--repeats={repeats} must be >= 1 (timed batches per variant).")
  if calibration_examples < 1:
    raise UserError(f"--calibration_examples={calibration_examples} must be >= 1.")


def load_run(workdir: str, data_dir: str = ""):
  """(config, facts) of the classification run in `workdir`; checks it has a checkpoint."""
  from jaxai.core import checkpoint, runs
  from jaxai.tasks import classification
  config = runs.load_config(workdir, TASK, classification.default_config())
  facts = runs.load_facts(workdir)
  if facts is None:
    raise UserError(f"{workdir} has no {runs.FACTS_FILE}; it was saved by an older version: train it again.")
  directory = os.path.join(workdir, checkpoint.CHECKPOINT_DIR)
  if not os.path.isdir(directory) or not any(p.isdigit() for p in os.listdir(directory)):
    raise UserError(f"The run in {workdir} has no checkpoint in {directory}: train it first.")
  if data_dir:
    config.data_dir = data_dir
  from jaxai.compress import quantization
  if config.quantization.mode != "none":
    try:
      quantization.check(config.quantization)
    except UserError as e:
      raise UserError(f"The run's {e}") from None
  return config, facts


# ---------------------------------------------------------------------------------------------------
# Building each variant: (model, variables, description).

def build_variants(variants, config, facts, model, variables, sample, calibration_batches):
  """{name: (model, variables, description)}. `sample`: a batch of model inputs (shapes);
  `calibration_batches()` yields normalized batches of training images."""
  from jaxai.compress import lora, pruning, quantization
  from jaxai.models.classifiers import make_classifier
  base = make_classifier(config.model, facts["num_classes"])
  others = {k: v for k, v in variables.items() if k not in ("params", quantization.QUANT_STATS)}
  base_params = variables["params"]
  if config.lora.rank > 0:
    base_params = lora.merge(variables["params"], config.lora)
  base_vars = {"params": base_params, **others}
  built = {}
  for v in variants:
    if v.name == "float":
      if config.lora.rank > 0:
        built[v.name] = (model, variables, f"float32 with rank-{config.lora.rank} adapters unmerged")
      else:
        built[v.name] = (base, base_vars, "float32" + (", the QAT run without fake quantization"
                                                        if config.quantization.mode == "qat" else ""))
    elif v.name == "lora_merged":
      built[v.name] = (base, base_vars, "float32, adapters merged into the kernels")
    elif v.name == "qat":
      built[v.name] = (model, variables, "fake quantization as trained: "
                       + quantization.describe(config.quantization))
    elif v.name.startswith("prune:"):
      params, _ = pruning.prune(base_params, v.sparsity, scope="global", structured=False, prunable=PRUNABLE)
      built[v.name] = (base, {"params": params, **others},
                       f"float32, {v.sparsity:.0%} of the kernels zero (global magnitude, one-shot)")
    else:  # int8, int8_static, int4, ptq
      cfg = quant_config(v.name, config)
      stats = None
      if cfg.static_activations:
        stats = variables.get(quantization.QUANT_STATS) if v.name == "ptq" else None
        if not stats:
          stats = quantization.calibrate(base, base_vars, calibration_batches(), cfg, train=False)
      ptq, qvars = quantization.quantize_variables(base, base_vars, cfg, sample, stats, train=False)
      built[v.name] = (ptq, qvars, quantization.describe(cfg))
  return built


# ---------------------------------------------------------------------------------------------------
# Measuring.

def _paths(tree) -> dict:
  import jax
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(k, simple=True, separator="/"): x for k, x in flat}


def export_arrays(variables) -> dict:
  """{name: np.ndarray} of the compact export: int4 leaves packed two per byte ('<path>.int4' with
  '<path>.shape'), mostly-zero float leaves as a bit mask and their nonzero values ('<path>.mask',
  '<path>.values', '<path>.shape'), every other leaf as it is stored."""
  import numpy as np
  from jaxai.compress import quantization
  out = {}
  for path, x in _paths(variables).items():
    x = np.asarray(x)
    if quantization.leaf_bits(x.dtype) == 4:
      out[path + ".int4"], out[path + ".shape"] = quantization.pack_int4(x), np.asarray(x.shape)
    elif np.issubdtype(x.dtype, np.floating) and x.size > 64 and np.count_nonzero(x) < SPARSE_BELOW * x.size:
      nonzero = x != 0
      out[path + ".mask"], out[path + ".values"] = np.packbits(nonzero.reshape(-1)), x[nonzero]
      out[path + ".shape"] = np.asarray(x.shape)
    else:
      out[path] = x
  return out


def read_export(path: str) -> dict:
  """The inverse of `export_arrays` on a saved .npz: {leaf path: np.ndarray}."""
  import numpy as np
  from jaxai.compress import quantization
  with np.load(path) as f:
    stored = {k: f[k] for k in f.files}
  leaves = {}
  for key, x in stored.items():
    if key.endswith(".int4"):
      leaves[key[:-5]] = quantization.unpack_int4(x, tuple(stored[key[:-5] + ".shape"]))
    elif key.endswith(".mask"):
      p = key[:-5]
      shape = tuple(stored[p + ".shape"])
      dense = np.zeros(int(np.prod(shape)), stored[p + ".values"].dtype)
      dense[np.unpackbits(x, count=dense.size).astype(bool)] = stored[p + ".values"]
      leaves[p] = dense.reshape(shape)
    elif not key.endswith((".shape", ".values")):
      leaves[key] = x
  return leaves


def count_parameters(variables) -> tuple[int, int]:
  """(weights, nonzero weights) of the params, quantized kernels counted by their integer values
  (their scales are not weights)."""
  import numpy as np
  total = nonzero = 0
  for path, x in _paths(variables["params"]).items():
    if (path.endswith("/scale") and "/array/" in path) or path.endswith("_scale/array"):
      continue  # per-channel weight scales and static activation scales.
    x = np.asarray(x).astype(np.float32)  # int4 too.
    total += x.size
    nonzero += int(np.count_nonzero(x))
  return total, nonzero


def measure(apply, variables, data: dict, batch_size: int, repeats: int) -> dict:
  """Accuracy of `apply(variables, uint8 images) -> logits` over `data` in padded batches of
  `batch_size`, and its latency on the first batch: the median of `repeats` calls after two warm-up
  calls. One jitted program serves both (plain jit rather than ahead-of-time compilation, so XLA lays
  out int4 arguments itself). Returns {accuracy, latency_seconds, first_call_seconds (compilation)}."""
  import jax
  import numpy as np
  from jaxai.data import pipeline
  device = jax.local_devices()[0]
  variables = jax.device_put(variables, device)
  logits_of = jax.jit(apply)
  batches = list(pipeline.padded_batches(data, batch_size, 0, 1))
  first = jax.device_put(batches[0]["image"], device)
  start = time.perf_counter()
  jax.block_until_ready(logits_of(variables, first))
  first_call = time.perf_counter() - start
  jax.block_until_ready(logits_of(variables, first))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(logits_of(variables, first))
    times.append(time.perf_counter() - start)
  correct = 0
  for batch in batches:
    pred = np.argmax(np.asarray(logits_of(variables, batch["image"])), -1)
    correct += int(np.sum((pred == batch["label"])[batch["mask"]]))
  return dict(accuracy=correct / len(data["label"]), latency_seconds=float(np.median(times)),
              first_call_seconds=first_call)


def sparsity_rows(params) -> list[dict]:
  from jaxai.compress import sparsity
  return [dict(layer=path, shape=list(shape), weights=size, zeros=zeros, sparsity=zeros / max(size, 1))
          for path, (zeros, size, shape) in sparsity.zero_counts(params, PRUNABLE).items()]


def write_run(directory: str, config, facts, variables, step: int) -> str:
  """A run directory that every tool loads: config.json, facts.json and a checkpoint at `step` of
  `config`'s state with `variables` ({'params', other collections}) and a fresh optimizer state
  (the classification task's: `config.optimizer` over its run's updates)."""
  import jax
  from jaxai import tasks
  from jaxai.core import checkpoint, optim, runs
  from jaxai.core.state import TrainState
  task = tasks.make_task(config, facts)
  abstract = jax.eval_shape(task.init, jax.random.key(config.seed))
  tx = optim.make_optimizer(config.optimizer, task.num_train_steps)
  params = jax.tree.map(jax.numpy.asarray, variables["params"])
  model_state = {k: v for k, v in variables.items() if k != "params"}
  state = TrainState(step=jax.numpy.asarray(step, abstract.step.dtype), params=params,
                     opt_state=jax.jit(tx.init)(params), model_state=model_state, extra=abstract.extra)
  problems = checkpoint.incompatibilities(checkpoint.signature(state), checkpoint.signature(abstract))
  if problems:
    raise UserError(f"The exported weights do not fit the state of {config.model.name}: " + "; ".join(problems))
  runs.save_run_files(directory, config, facts)
  ckpt = checkpoint.Checkpointer(directory, async_save=False)
  ckpt.save(step, state, {"signature": checkpoint.signature(abstract), "data": task.source.position(step),
                          "config": json.loads(config.to_json_best_effort())})
  ckpt.wait()
  ckpt.close()
  return directory


def export_lora_run(workdir: str, export_dir: str) -> str:
  """Any task's LoRA run (the GPT's, a classifier's) with its adapters merged into the kernels, as a new
  run directory at the run's step: the table needs a classifier, merging does not."""
  import importlib
  from jaxai import tasks
  from jaxai.compress import lora
  from jaxai.core import runs, sharding
  path = os.path.join(workdir, runs.CONFIG_FILE)
  if not os.path.exists(path):
    raise UserError(f"{path} does not exist: --workdir must be a training run's directory.")
  with open(path) as f:
    name = json.load(f).get("task")
  if name not in tasks.TASKS:
    raise UserError(f"The run in {workdir} is a {name!r} run, which no task here trains.")
  config = runs.load_config(workdir, name, importlib.import_module(tasks.TASKS[name]).default_config())
  if not config.get("lora") or config.lora.rank <= 0:
    raise UserError(f"The {name!r} run in {workdir} has no LoRA adapters (config.lora.rank=0): nothing to "
                    "merge; the variants table (without --export_only) is for classification runs.")
  facts = runs.load_facts(workdir)
  state, step = runs.restore_latest_state(workdir, tasks.make_task(config, facts))
  variables = sharding.local_copy({"params": lora.merge(state.params, config.lora), **state.model_state})
  return export_merged_run(export_dir, config, facts, variables, step)


def export_merged_run(directory: str, config, facts, variables, step: int) -> str:
  """The merged LoRA model as a new run (config.lora.rank = 0, no init_from, every parameter
  trainable) at the run's step."""
  config = config.copy_and_resolve_references()
  config.lora.rank = 0  # a plain model: nothing of the fine-tuning setup (adapters to train, a source run) is left.
  config.optimizer.trainable = ""
  config.init_from.path = config.init_from.fresh = ""
  return write_run(directory, config, facts, variables, step)


# ---------------------------------------------------------------------------------------------------
# The command.

def table_text(rows: list[dict], header: str) -> str:
  width = max(len("variant"), *(len(r["variant"]) for r in rows))
  lines = [header, "",
           f"{'variant':<{width}}  {'params':>10}  {'nonzero':>10}  {'raw bytes':>11}  {'x':>5}  {'file bytes':>11}"
           f"  {'x':>5}  {'accuracy':>8}  {'change':>7}  {'ms/batch':>9}  {'x float':>7}  description"]
  for r in rows:
    lines.append(f"{r['variant']:<{width}}  {r['parameters']:>10,}  {r['nonzero_parameters']:>10,}  "
                 f"{int(r['raw_bytes']):>11,}  {r['raw_ratio']:5.2f}  {r['file_bytes']:>11,}  {r['file_ratio']:5.2f}  "
                 f"{r['accuracy']:8.4f}  {100 * r['accuracy_change']:+7.2f}  {1e3 * r['latency_seconds']:9.3f}  "
                 f"{r['latency_ratio']:7.2f}  {r['description']}")
  lines.append("(x: float's bytes / the variant's; change: accuracy points against float; x float: latency / "
               "float's.)")
  return "\n".join(lines)


def run_table(workdir: str, variants_flag: str = "", num_examples: int = 0, batch_size: int = 0,
              export_dir: str = "", out: str = "", repeats: int = 20, calibration_examples: int = 1024,
              data_dir: str = "") -> dict:
  """Everything the command does; returns the JSON record (also written to `out`)."""
  import jax
  import numpy as np
  from jaxai.compress import quantization
  from jaxai.ops import images as image_ops
  from jaxai.tasks.classification import task as classification
  check_args(num_examples, batch_size, repeats, calibration_examples)
  config, facts = load_run(workdir, data_dir)
  variants = parse_variants(variants_flag, config)
  mean, std = (np.asarray(facts[k], np.float32) for k in ("mean", "std"))
  data = classification.load_examples(config, config.eval_split, num_examples or config.max_eval_examples)
  if tuple(data["image"].shape[1:]) != tuple(facts["image_shape"]):
    raise UserError(f"The {config.dataset} images are {data['image'].shape[1:]}, the run was trained on "
                    f"{tuple(facts['image_shape'])}: point --data_dir at the run's dataset.")
  batch_size = min(batch_size or config.eval_batch_size, len(data["label"]))
  calibration = {}

  def calibration_batches():  # normalized training images in whole batches (one compiled shape).
    if not calibration:
      calibration.update(classification.load_examples(config, config.train_split, calibration_examples))
    images = calibration["image"]
    size = min(batch_size, len(images))
    for start in range(0, len(images) - size + 1, size):
      yield image_ops.normalize(images[start:start + size], mean, std)

  model, variables, step = classification.restore_model(workdir, config, facts)
  timing_images = data["image"][:batch_size]
  built = build_variants(variants, config, facts, model, variables,
                         image_ops.normalize(timing_images, mean, std), calibration_batches)
  scratch = None if export_dir else tempfile.TemporaryDirectory(prefix="compress_table_")
  stem_dir = export_dir or scratch.name
  os.makedirs(stem_dir, exist_ok=True)
  rows, layer_sparsity = [], {}
  for v in variants:
    module, vars_, description = built[v.name]
    apply = lambda vs, images, module=module: module.apply(vs, image_ops.normalize(images, mean, std), train=False)
    path = os.path.join(stem_dir, v.file_stem + ".npz")
    np.savez_compressed(path, **export_arrays(vars_))
    parameters, nonzero = count_parameters(vars_)
    rows.append(dict(variant=v.name, description=description, parameters=parameters,
                     nonzero_parameters=nonzero, raw_bytes=float(quantization.size_bytes(vars_)),
                     file_bytes=os.path.getsize(path), **measure(apply, vars_, data, batch_size, repeats),
                     file=path if export_dir else None))
    if v.name.startswith("prune:"):
      layer_sparsity[v.name] = sparsity_rows(vars_["params"])
    logging.info("%s: accuracy %.4f, %.3f ms per batch", v.name, rows[-1]["accuracy"],
                 1e3 * rows[-1]["latency_seconds"])
  reference = rows[[v.name for v in variants].index("float")]
  for r in rows:
    r["accuracy_change"] = r["accuracy"] - reference["accuracy"]
    r["file_ratio"] = reference["file_bytes"] / r["file_bytes"]
    r["raw_ratio"] = reference["raw_bytes"] / r["raw_bytes"]
    r["latency_ratio"] = r["latency_seconds"] / reference["latency_seconds"]
  if scratch is not None:
    scratch.cleanup()

  merged_run = None
  if export_dir and "lora_merged" in built:
    merged_run = export_merged_run(os.path.join(export_dir, "lora_merged_run"), config, facts,
                                   built["lora_merged"][1], step)
  n = len(data["label"])
  header = (f"{config.dataset} {config.eval_split}: {n} examples; step {step} of {workdir}; latency: median "
            f"of {repeats} jitted batches of {batch_size} on {jax.local_devices()[0].platform.upper()}")
  text = table_text(rows, header)
  for name, layers in layer_sparsity.items():
    from jaxai.compress import sparsity
    text += f"\n\nPer-layer sparsity of {name}:\n" + sparsity.format_table(
        {r["layer"]: (r["zeros"], r["weights"], tuple(r["shape"])) for r in layers})
  print(text)
  record = dict(workdir=os.path.abspath(workdir), step=step, dataset=config.dataset, split=config.eval_split,
                num_examples=n, batch_size=batch_size, repeats=repeats, device=str(jax.local_devices()[0]),
                rows=rows, layer_sparsity=layer_sparsity, merged_run=merged_run)
  out = out or os.path.join(workdir, "compress", "table.json")
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, "w") as f:
    json.dump(record, f, indent=2)
  print(f"Wrote {out}" + (f" and the exported weights in {export_dir}" if export_dir else ""))
  return record


def main(argv):
  from absl import flags
  from jaxai.core import logs
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
  logs.quiet_libraries()
  f = flags.FLAGS
  try:
    if f.export_only:
      if not f.export_dir:
        raise UserError("--export_only needs --export_dir, the new run's directory.")
      print(f"Wrote the merged run {export_lora_run(f.workdir, f.export_dir)}")
      return
    run_table(f.workdir, f.variants, f.num_examples, f.batch_size, f.export_dir, f.out, f.repeats,
              f.calibration_examples, f.data_dir)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def _define_flags():
  from absl import flags
  flags.DEFINE_string("workdir", None, "Directory of a classification training run (with a checkpoint).")
  flags.DEFINE_string("variants", "", "Comma-separated: float, lora_merged, qat, ptq, int8, int8_static, "
                      "int4, prune:<sparsity>; '' = every one that applies to the run.")
  flags.DEFINE_integer("num_examples", 0, "Evaluate on the first N images of the eval split; 0 = the run's.")
  flags.DEFINE_integer("batch_size", 0, "Images per batch (accuracy and latency); 0 = the run's eval_batch_size.")
  flags.DEFINE_integer("repeats", 20, "Timed batches per variant (the median is reported).")
  flags.DEFINE_integer("calibration_examples", 1024, "Training images that calibrate static activation scales.")
  flags.DEFINE_string("export_dir", "", "Keep each variant's .npz here (and lora_merged's run directory).")
  flags.DEFINE_bool("export_only", False, "Only merge a LoRA run's adapters (any task: the GPT's too) and "
                    "write the merged run to --export_dir; no table.")
  flags.DEFINE_string("out", "", "The JSON record; '' = <workdir>/compress/table.json.")
  flags.DEFINE_string("data_dir", "", "TFDS data_dir replacing the run's config.data_dir; '' = the run's.")
  flags.mark_flag_as_required("workdir")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
