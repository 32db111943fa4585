"""The core contract on one device: evaluators as a list with typed summaries (a PNG and a
TensorBoard image), sharding rules resolved as data, and start-from-checkpoint with a prefix map and
frozen parameters that provably do not move."""
import os

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P
from PIL import Image as PILImage

from jaxai import tasks
from jaxai.core import sharding, trainer
from jaxai.core.metrics import read_metrics
from jaxai.core.summaries import Image
from jaxai.errors import UserError
from jaxai.core.evaluators import DatasetEvaluator
from jaxai.data.pipeline import padded_batches
from tests.core.toy import make_toy_task, toy_config, toy_data
from tests.helpers import leaves_with_paths, load_config, tensorboard_events


def test_two_evaluators_log_both_and_an_image_is_a_png_and_a_tensorboard_image(tmp_path):
  config = toy_config(eval_every_steps=5)
  trainer.train_and_evaluate(config, str(tmp_path), make_toy_task(config))
  evals = [r for r in read_metrics(tmp_path) if "eval/mse" in r]
  assert [r["step"] for r in evals] == [5, 10]
  assert all("eval/kernel_norm" in r and r["eval/examples"] == 20 for r in evals)  # both evaluators.
  for step in (5, 10):
    png = PILImage.open(tmp_path / "kernel" / f"step_{step}.png")
    assert png.size == (8, 8) and png.mode == "L"
    assert (tmp_path / "note" / f"step_{step}.txt").read_text() == f"step {step}"
  images = [(e.step, v.image) for e in tensorboard_events(tmp_path) for v in e.summary.value
            if v.tag == "kernel" and v.HasField("image")]
  assert [step for step, _ in images] == [5, 10]
  assert (images[0][1].width, images[0][1].height) == (8, 8)
  assert images[0][1].encoded_image_string.startswith(b"\x89PNG")


def test_a_corpus_evaluator_sees_every_real_row_once_in_order_and_its_finish_makes_the_summaries(tmp_path):
  """DatasetEvaluator(finish=...): 20 rows in batches of 8 (the last padded): finish gets exactly the
  20 rows' per-row outputs, in order, and its summaries are logged (a corpus metric, not a mean)."""
  data = toy_data(20, seed=1)
  seen = []

  def rows_step(state, batch):  # per-row outputs: the prediction and the row's own target.
    return {"pred": (batch["x"] @ state.params["dense"]["kernel"])[:, 0], "y": batch["y"][:, 0]}

  def finish(rows, step):
    seen.append({k: v.copy() for k, v in rows.items()})
    return {"eval/max_abs_error": float(np.max(np.abs(rows["pred"] - rows["y"])))}

  config = toy_config(eval_every_steps=5)
  evaluator = DatasetEvaluator(rows_step, lambda: padded_batches(data, 8), finish=finish)
  trainer.train_and_evaluate(config, str(tmp_path), make_toy_task(config, evaluators=[evaluator]))
  assert len(seen) == 2 and all(len(rows["y"]) == 20 for rows in seen)
  np.testing.assert_array_equal(seen[0]["y"], data["y"][:, 0])  # every real row once, in order.
  logged = [r["eval/max_abs_error"] for r in read_metrics(tmp_path) if "eval/max_abs_error" in r]
  assert logged == [pytest.approx(float(np.max(np.abs(rows["pred"] - rows["y"])))) for rows in seen]


def test_image_grid_tiles_a_batch():
  grid = Image(np.ones((5, 3, 2, 1), np.float32), columns=2).grid()
  assert grid.shape == (3 * 4 - 1, 2 * 3 - 1, 1) and grid.dtype == np.uint8
  assert grid[0, 0, 0] == 255 and grid[3, 0, 0] == 0  # a gap row between tiles.
  with pytest.raises(ValueError, match="C in"):
    Image(np.zeros((2, 4, 4, 2))).grid()


class FakeMesh:
  shape = {"data": 4, "fsdp": 2}


@pytest.mark.parametrize("rules, path, shape, spec", [
    ((), "params/w", (8, 4), P()),                                         # default: replicated.
    ((("extra/replay/.*", (None, "data")),), "extra/replay/obs", (10, 8, 3), P(None, "data")),
    ((("extra/replay/.*", (None, "data")),), "params/w", (8, 4), P()),
    ((("params/.*", ("data",)),), "params/w", (8, 4), P("data")),           # per-client leading axis.
    ((("params/.*", "fsdp"),), "params/w", (6, 8), P(None, "fsdp")),       # the largest dim that divides.
    ((("params/.*", "fsdp"),), "params/b", (3,), P()),                      # none divides: replicated.
    ((("a", ("data",)), ("a", (None,))), "a", (4,), P("data")),             # the first match wins.
])
def test_rules_map_leaves_to_specs(rules, path, shape, spec):
  assert sharding.spec_for(path, shape, rules, FakeMesh()) == spec


@pytest.mark.parametrize("rules, message", [
    ((("x", ("data",)),), "does not split evenly"),
    ((("x", ("model",)),), "names mesh axis 'model'"),
    ((("x", (None, None, "data")),), "has only 2 dimensions"),
])
def test_rules_that_do_not_fit_are_clear_errors(rules, message):
  with pytest.raises(UserError, match=message):
    sharding.spec_for("x", (6, 4), rules, FakeMesh())


@pytest.mark.parametrize("text, message", [("data=3", "do not cover|does not cover"), ("data", "must look like"),
                                           ("data=-1,fsdp=-1", "at most one -1")])
def test_bad_mesh_configs_are_clear_errors(text, message):
  with pytest.raises(UserError, match=message):
    sharding.placement(toy_config(mesh=text))


@pytest.fixture(scope="module")
def source_run(data_dir, tmp_path_factory):
  config = load_config("mnist_cnn", {"num_train_steps": 4, "checkpoint_every_steps": 4, "max_eval_examples": 100})
  workdir = tmp_path_factory.mktemp("source")
  state, _ = trainer.train_and_evaluate(config, str(workdir), tasks.make_task(config))
  return workdir, leaves_with_paths(state)


def init_from(workdir, source_workdir, steps=4, **overrides):
  """The final state's leaves of a short run started from the source run (the final eval on 100 images)."""
  config = load_config("mnist_cnn", {"num_train_steps": steps, "checkpoint_every_steps": 0, "seed": 7,
                                     "max_eval_examples": 100, "init_from.path": str(source_workdir),
                                     **overrides})
  state, _ = trainer.train_and_evaluate(config, str(workdir), tasks.make_task(config))
  return leaves_with_paths(state)


def test_init_from_with_frozen_leaves_that_do_not_move_in_4_steps(source_run, tmp_path):
  source_workdir, source = source_run
  frozen = "Conv_0/.*|BatchNorm_0/.*"
  state = init_from(tmp_path, source_workdir, **{"optimizer.frozen": frozen})
  params = [k for k in state if k.startswith(".params")]
  still = [k for k in params if "Conv_0" in k or "BatchNorm_0" in k]
  assert len(still) == 3  # Conv_0 kernel, BatchNorm_0 scale and bias.
  for k in still:  # bitwise the source's values after 4 steps of training.
    np.testing.assert_array_equal(np.asarray(state[k]), np.asarray(source[k]), err_msg=k)
  moved = [k for k in params if k not in still]
  assert all(not np.array_equal(np.asarray(state[k]), np.asarray(source[k])) for k in moved)


def test_init_from_with_a_prefix_map_loads_only_those_leaves(source_run, tmp_path):
  source_workdir, source = source_run
  state = init_from(tmp_path, source_workdir, steps=1, **{
      "init_from.map": "params/Dense_1=params/Dense_1", "optimizer.frozen": "Dense_1/.*",
      "optimizer.warmup_steps": 0})
  np.testing.assert_array_equal(state[".params['Dense_1']['kernel']"], source[".params['Dense_1']['kernel']"])
  # Not in the map: the new run's own initialization (then one update).
  assert not np.array_equal(state[".params['Dense_0']['kernel']"], source[".params['Dense_0']['kernel']"])


def test_init_from_refuses_leaves_whose_shapes_differ(source_run, tmp_path):
  source_workdir, _ = source_run
  with pytest.raises(UserError, match=r"Dense_0.*float32\[.*\] here but .* in the source"):
    init_from(tmp_path, source_workdir, **{"model.dense": 48})
  assert not os.path.exists(tmp_path / "checkpoints") or not os.listdir(tmp_path / "checkpoints")


def test_init_from_bad_path_and_unmatched_frozen_pattern_are_clear_errors(source_run, tmp_path):
  with pytest.raises(UserError, match="neither a run's workdir"):
    trainer.check_config(load_config("mnist_cnn", {"init_from.path": str(tmp_path / "nope")}))
  config = load_config("mnist_cnn", {"optimizer.frozen": "Conv_9/.*"})
  with pytest.raises(UserError, match="matches no parameter"):
    jax.eval_shape(tasks.make_task(config).init, jax.random.key(0))
