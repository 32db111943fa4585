"""Quantization-aware training through the trainer (configs/mnist_qat.py:tiny), and `python -m
jaxai.compress_table` on that run: one row per variant whose figures agree with the run (the 'qat' row's
accuracy is the run's own evaluation; int8 stores 4x fewer kernel bytes; prune:0.9 leaves 10% of the
kernels), the compact export reads back exactly, a LoRA run's merged weights compute what its adapters
did and export as a run every tool loads, and bad requests fail before anything compiles."""
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxai import compress_table, tasks
from jaxai.compress import lora, quantization
from jaxai.core import runs, trainer
from jaxai.errors import UserError
from jaxai.models.classifiers import make_classifier
from tests.helpers import REPO_ROOT, check_ok, cli_env, load_config


@pytest.fixture(scope="module")
def qat_run(tmp_path_factory, data_dir):
  """(workdir, config, final state, final metrics) of mnist_qat:tiny (QAT int8, 12 steps, one checkpoint
  at the end, 300 test images)."""
  config = load_config("mnist_qat", {"checkpoint_every_steps": 0})
  workdir = tmp_path_factory.mktemp("qat")
  state, results = trainer.train_and_evaluate(config, str(workdir), tasks.make_task(config))
  return workdir, config, state, results


def test_qat_trains_through_the_trainer_and_its_forward_pass_is_quantized(qat_run):
  _, config, state, results = qat_run
  assert np.isfinite(results["train/loss"]) and np.isfinite(results["eval/loss"])
  assert config.quantization.mode == "qat" and set(state.model_state) == {"batch_stats"}  # dynamic scales.
  base = make_classifier(config.model, 10)
  qat = quantization.wrap(base, config.quantization)
  x = jax.random.uniform(jax.random.key(0), (8, 28, 28, 1))
  variables = {"params": state.params, **state.model_state}
  fake, exact = (np.asarray(jax.jit(lambda v, m=m: m.apply(v, x, train=False))(variables)) for m in (qat, base))
  assert 0 < np.abs(fake - exact).max() < 0.1 * np.abs(exact).max()


def test_table_command_prints_a_row_per_variant_that_agrees_with_the_run(qat_run, tmp_path):
  workdir, _, _, results = qat_run
  out = tmp_path / "table.json"
  proc = check_ok(subprocess.run(
      [sys.executable, "-m", "jaxai.compress_table", f"--workdir={workdir}",
       "--variants=qat,int8,int4,prune:0.9", "--batch_size=100", "--repeats=3",
       f"--export_dir={tmp_path / 'export'}", f"--out={out}"],
      env=cli_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300))
  record = json.loads(out.read_text())
  rows = {r["variant"]: r for r in record["rows"]}
  assert list(rows) == ["float", "qat", "int8", "int4", "prune:0.9"]  # float added: the reference.
  assert record["num_examples"] == 300 and record["step"] == 12
  # The QAT forward pass is the one the run evaluated; its int8 conversion computes nearly the same.
  assert rows["qat"]["accuracy"] == pytest.approx(results["eval/accuracy"], abs=1e-9)
  assert abs(rows["int8"]["accuracy"] - rows["qat"]["accuracy"]) <= 0.01
  for name, r in rows.items():
    assert f"\n{name} " in proc.stdout and r["latency_seconds"] > 0 and r["file_bytes"] > 0
    if not name.startswith("prune"):  # a tiny model: rounding moves little (pruning 90% may move a lot).
      assert abs(r["accuracy_change"]) < 0.1, (name, r["accuracy"])
    assert r["parameters"] == rows["float"]["parameters"]
  assert 3.5 < rows["int8"]["raw_ratio"] < 4 and rows["int4"]["raw_ratio"] > 5  # scales, biases: float.
  # 90% of the kernels pruned: biases and batch-norm parameters are not kernels.
  layers = record["layer_sparsity"]["prune:0.9"]
  kernels = sum(layer["weights"] for layer in layers)
  assert sum(layer["zeros"] for layer in layers) == pytest.approx(0.9 * kernels, abs=1)
  assert rows["prune:0.9"]["parameters"] - rows["prune:0.9"]["nonzero_parameters"] >= 0.9 * kernels - 1
  assert rows["prune:0.9"]["file_bytes"] < rows["float"]["file_bytes"] / 3
  assert "Per-layer sparsity of prune:0.9" in proc.stdout and "Dense_0/kernel" in proc.stdout
  # The int4 export holds the PTQ model's int4 values, two per byte.
  exported = compress_table.read_export(str(tmp_path / "export" / "int4.npz"))
  (dense_shape,) = [tuple(layer["shape"]) for layer in layers if layer["layer"] == "Dense_0/kernel"]
  q = exported["params/Dense_0/kernel/array/qvalue"]
  assert q.shape == dense_shape and q.min() >= -8 and q.max() <= 7 and np.abs(q).max() >= 7


def test_export_reads_back_exactly(tmp_path):
  rng = np.random.default_rng(0)
  sparse = rng.normal(size=(20, 10)).astype(np.float32) * (rng.random((20, 10)) < 0.1)
  q = quantization.unpack_int4(quantization.pack_int4(rng.integers(-8, 8, 33)), (3, 11))
  tree = {"params": {"a": {"kernel": sparse, "bias": np.ones(10, np.float32)},
                     "b": {"kernel": jax.numpy.asarray(q, jax.numpy.int4)},
                     "c": {"kernel": rng.integers(-128, 128, (4, 5)).astype(np.int8)}}}
  arrays = compress_table.export_arrays(tree)
  assert "params/a/kernel.mask" in arrays and "params/b/kernel.int4" in arrays
  path = str(tmp_path / "export.npz")
  np.savez_compressed(path, **arrays)
  back = compress_table.read_export(path)
  np.testing.assert_array_equal(back["params/a/kernel"], sparse)
  np.testing.assert_array_equal(back["params/b/kernel"], q)
  np.testing.assert_array_equal(back["params/c/kernel"], tree["params"]["c"]["kernel"])
  np.testing.assert_array_equal(back["params/a/bias"], np.ones(10))


@pytest.mark.parametrize("variants, message", [
    ("float,int9", "'int9' is unknown"),
    ("prune:1.5", "sparsity in \\(0, 1\\)"),
    ("lora_merged", "trained with LoRA"),
    ("int8,int8", "twice"),
])
def test_bad_variants_are_refused_before_anything_compiles(qat_run, variants, message):
  workdir, *_ = qat_run
  with pytest.raises(UserError, match=message):
    compress_table.run_table(str(workdir), variants)


def test_a_workdir_that_is_not_a_classification_run_is_refused(tmp_path):
  with pytest.raises(UserError, match="config.json does not exist"):
    compress_table.run_table(str(tmp_path), "float")
  with pytest.raises(UserError, match="--repeats=0"):
    compress_table.run_table(str(tmp_path), "float", repeats=0)
  config = load_config("mnist_cnn")  # a float run: no qat / ptq rows.
  assert [v.name for v in compress_table.parse_variants("", config)] == [
      "float", "int8", "int8_static", "int4", "prune:0.5", "prune:0.9"]
  with pytest.raises(UserError, match="quantization-aware training"):
    compress_table.parse_variants("qat", config)


def test_lora_merged_computes_what_the_adapters_did_and_exports_a_loadable_run(qat_run, tmp_path):
  """A LoRA run written directly: the QAT run's weights with adapters set as if trained."""
  workdir, _, state, _ = qat_run
  config = load_config("mnist_cnn", {"lora.rank": 2})
  facts = runs.load_facts(workdir)
  shapes = jax.eval_shape(tasks.make_task(config, facts).init, jax.random.key(0)).params
  trained = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(state.params)[0]}
  rng = np.random.default_rng(0)

  def value(path, shape):  # the trained weights; random adapters (b starts at zero in training).
    key = jax.tree_util.keystr(path)
    return trained[key] if key in trained else (0.1 * rng.standard_normal(shape.shape)).astype(shape.dtype)

  params = jax.tree_util.tree_map_with_path(value, shapes)
  lora_run = compress_table.write_run(str(tmp_path / "lora"), config, facts,
                                      {"params": params, **state.model_state}, step=7)
  record = compress_table.run_table(lora_run, "float,lora_merged", num_examples=100, repeats=1,
                                    export_dir=str(tmp_path / "export"), out=str(tmp_path / "t.json"))
  rows = {r["variant"]: r for r in record["rows"]}
  assert rows["lora_merged"]["accuracy"] == rows["float"]["accuracy"] > 0.15  # not chance.
  assert rows["lora_merged"]["parameters"] == rows["float"]["parameters"] - lora.adapter_count(params)
  merged_config = runs.load_config(record["merged_run"], "classification")
  assert merged_config.lora.rank == 0
  merged, step = runs.restore_latest_state(record["merged_run"], tasks.make_task(merged_config, facts))
  assert step == 7
  expected = lora.merge(params, config.lora)
  for a, b in zip(jax.tree.leaves(merged.params), jax.tree.leaves(expected), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
