"""Named-entity and sentiment figures: trains the configs for a stated budget and prints their scores.

  python benchmarks/language_tasks.py --data_dir=../shared/data               # all three, full configs
  python benchmarks/language_tasks.py --tasks=sst2 --sst2_epochs=1             # a shorter budget
  python benchmarks/language_tasks.py --tasks=bilstm,transformer --ner_epochs=5

For each run: the budget (epochs, steps, wall seconds), training throughput (sentences/s), and the final scores: CoNLL-2003 entity-level precision,
recall and F1 per type and overall (seqeval) on dev (eng.testa) and test (eng.testb); SST-2 dev
accuracy. Anchors, none measured here: Lample et al. (2016) BiLSTM-CRF 90.94 test F1 (with pretrained
word embeddings and 50-100 epochs of SGD; this project trains its embeddings from scratch offline),
BERT-base 92.4 (pretrained on 3.3B words), the Flax SST-2 example 85.2% dev accuracy after 10 epochs.
"""
import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
RUNS = {"bilstm": ("conll2003_bilstm_crf", "conll2003"), "transformer": ("conll2003_transformer", "conll2003"),
        "sst2": ("sst2_classifier", "sst2")}


def load_config(name: str):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "configs", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("")


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--data_dir", default=os.path.join(REPO, "..", "shared", "data"),
                      help="folder holding conll2003/ and sst2/")
  parser.add_argument("--tasks", default="bilstm,transformer,sst2")
  parser.add_argument("--ner_epochs", type=float, default=0, help="0 = the config's")
  parser.add_argument("--sst2_epochs", type=float, default=0, help="0 = the config's")
  parser.add_argument("--workdir", default="", help="default: a temporary folder")
  args = parser.parse_args()

  from jaxai import tasks
  from jaxai.core import trainer
  from jaxai.core.metrics import read_metrics
  root = args.workdir or tempfile.mkdtemp(prefix="jaxai_language_")
  for key in [k.strip() for k in args.tasks.split(",") if k.strip()]:
    name, folder = RUNS[key]
    config = load_config(name)
    config.data_dir = os.path.join(args.data_dir, folder)
    epochs = args.sst2_epochs if key == "sst2" else args.ner_epochs
    if epochs:
      config.num_epochs = epochs
    config.eval_every_steps = 0
    config.checkpoint_every_steps = 0
    workdir = os.path.join(root, key)
    task = tasks.make_task(config)
    start = time.time()
    trainer.train_and_evaluate(config, workdir, task)
    wall = time.time() - start
    records = read_metrics(workdir)
    final = {k: v for r in records for k, v in r.items()}
    rate = [r["perf/sentences_per_sec"] if "perf/sentences_per_sec" in r else r.get("perf/examples_per_sec")
            for r in records if "perf/steps_per_sec" in r]
    print(f"\n=== {name}: {config.num_epochs:g} epochs, {task.num_train_steps} steps of {config.batch_size}, "
          f"{wall:.0f} s wall; {task.summary}")
    print(f"  training: {sum(rate) / len(rate):,.1f} sentences/s (mean of the logged intervals)")
    if key == "sst2":
      print(f"  SST-2 dev accuracy {100 * final['eval/accuracy']:.2f}% (loss {final['eval/loss']:.4f}; "
            "Flax SST-2 example: 85.2%)")
      print(f"SUMMARY {name}: dev accuracy {100 * final['eval/accuracy']:.2f}% after {config.num_epochs:g} epochs")
      continue
    for prefix, split in (("eval", "dev (eng.testa)"), ("test", "test (eng.testb)")):
      types = sorted(k.split("_", 1)[1] for k in final if k.startswith(f"{prefix}/f1_"))
      row = "  ".join(f"{t} {100 * final[f'{prefix}/f1_{t}']:.2f}" for t in types)
      print(f"  {split:18s} P {100 * final[f'{prefix}/precision']:.2f}  R {100 * final[f'{prefix}/recall']:.2f}  "
            f"F1 {100 * final[f'{prefix}/f1']:.2f}   per type F1: {row}")
    print(f"SUMMARY {name}: test F1 {100 * final['test/f1']:.2f}, dev F1 {100 * final['eval/f1']:.2f} after "
          f"{config.num_epochs:g} epochs (Lample et al. 90.94 test)")
    report = os.path.join(workdir, "test_report", f"step_{task.num_train_steps}.txt")
    if os.path.exists(report):
      print(open(report).read())
  print(json.dumps({"workdir": root}))


if __name__ == "__main__":
  main()
