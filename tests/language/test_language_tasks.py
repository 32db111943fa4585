"""The named-entity and sentiment tasks end to end on tiny slices of the shared CoNLL-2003 and SST-2
files: each overfits a few sentences, its tool (jaxai.tag, jaxai.sentiment) restores the run from its
facts, bad input is a clear error before anything compiles, and one command-line run of each config's
tiny variant."""
import math

import pytest

from jaxai import tasks
from jaxai.core import trainer
from jaxai.core.metrics import read_metrics
from jaxai.errors import UserError
from jaxai import sentiment as sentiment_tool
from jaxai import tag as tag_tool
from tests.helpers import RAW_DATA_DIR, check_ok, load_config, metrics_lines, run_cli

CONLL, SST2 = RAW_DATA_DIR / "conll2003", RAW_DATA_DIR / "sst2"


def ner_config(name="conll2003_bilstm_crf", **overrides):
  return load_config(name, {"data_dir": str(CONLL), **overrides})


@pytest.mark.parametrize("name", ["conll2003_bilstm_crf", "conll2003_transformer"])
def test_a_tagger_overfits_a_few_sentences_and_tags_them_back(name, tmp_path):
  """32 training sentences, scored on themselves by seqeval: entity F1 climbs well above its start."""
  config = ner_config(name, eval_splits="train", max_train_sentences=32, max_eval_sentences=32,
                      num_train_steps=120, eval_every_steps=120, log_every_steps=40)
  config.optimizer.learning_rate = 1e-2
  config.model.dropout_rate = 0.0
  trainer.train_and_evaluate(config, str(tmp_path), tasks.make_task(config))
  final = [r for r in read_metrics(tmp_path) if "train_eval/f1" in r][-1]
  assert final["train_eval/f1"] > 0.8, final
  assert {"train_eval/f1_PER", "train_eval/f1_LOC", "train_eval/precision"} <= set(final)
  assert "micro avg" in (tmp_path / "train_eval_report" / "step_120.txt").read_text()
  from jaxai.data import conll
  from jaxai.tasks import ner
  first = ner.read_sentences(config, "train", 3)
  tagged = tag_tool.tag_lines(str(tmp_path), [" ".join(s.words) for s in first])
  assert [tokens for tokens, _ in tagged] == [list(s.words) for s in first]
  matches = sum(conll.entities(tags) == conll.entities(s.tags) for (_, tags), s in zip(tagged, first))
  assert matches >= 2  # the restored run tags what it learned.
  with pytest.raises(UserError, match="no empty ones"):
    tag_tool.tag_lines(str(tmp_path), ["EU rejects", "  "])


def test_the_sentiment_classifier_overfits_and_scores_new_sentences(tmp_path):
  config = load_config("sst2_classifier", {"data_dir": str(SST2), "eval_split": "train",
                                           "max_train_examples": 64, "max_eval_examples": 64,
                                           "num_train_steps": 60, "log_every_steps": 20})
  config.optimizer.learning_rate = 3e-3
  config.model.dropout_rate = 0.0
  trainer.train_and_evaluate(config, str(tmp_path), tasks.make_task(config))
  final = [r for r in read_metrics(tmp_path) if "eval/accuracy" in r][-1]
  assert final["eval/accuracy"] >= 0.9 and final["eval/examples"] == 64
  probs = sentiment_tool.score_lines(str(tmp_path), ["a charming and affecting journey", "dull , flat"])
  assert probs.shape == (2, 2) and abs(probs.sum(1) - 1).max() < 1e-5
  with pytest.raises(UserError, match="no empty ones"):
    sentiment_tool.score_lines(str(tmp_path), [""])


@pytest.mark.parametrize("name, overrides, message", [
    ("conll2003_bilstm_crf", {"data_dir": "/nonexistent"}, r"eng\.train.*does not exist"),
    ("conll2003_bilstm_crf", {"data_dir": ""}, "config.data_dir is empty"),
    ("conll2003_transformer", {"eval_splits": "dev,testb"}, "'testb'"),
    ("sst2_classifier", {"data_dir": "/nonexistent"}, r"train\.tsv.*does not exist"),
    ("sst2_classifier", {"eval_split": "test"}, "has no labels"),
])
def test_bad_input_is_a_clear_error_before_anything_compiles(name, overrides, message):
  data = {"data_dir": str(CONLL if name.startswith("conll") else SST2)}
  with pytest.raises(UserError, match=message):
    tasks.make_task(load_config(name, data | overrides))


@pytest.mark.parametrize("name, data_dir", [("conll2003_transformer", CONLL), ("sst2_classifier", SST2)])
def test_tiny_variant_runs_from_the_command_line(name, data_dir, tmp_path):
  check_ok(run_cli(f"{name}.py:tiny", tmp_path, data_dir=data_dir))
  records = metrics_lines(tmp_path)
  assert all(math.isfinite(r["train/loss"]) for r in records if "train/loss" in r)
  key = "eval/f1" if name.startswith("conll") else "eval/accuracy"
  assert [r["step"] for r in records if key in r] == [8]
