"""LoRA against full fine-tuning of the character GPT on a speaker it never saw (PETRUCHIO).

  python benchmarks/compress_lora_gpt.py [--workdir=DIR] [--pretrain_workdir=DIR] [--data_dir=...]
      [--pretrain_steps=2000] [--finetune_steps=150]

1. pretrain configs/shakespeare_gpt_lora.py:pretrain (4 layers x 4 heads x 128, block 64, batch 12)
   on Tiny Shakespeare without PETRUCHIO's turns (or reuse --pretrain_workdir);
2. fine-tune it on PETRUCHIO's 8.9k characters of 'train+test' (text the pretrain run never saw):
   ':lora' (rank-8 adapters on every Dense layer, alpha 16, lr 2e-3, only the adapters train) and
   ':full' (every weight, lr 2e-4), the same steps, batches, dropout 0.1 and seed;
3. score each on PETRUCHIO's turns of 'validation' (16.4k characters, every non-overlapping window
   of 64) and, for forgetting, on everyone else's turns of 'validation+test' (the pretrain run's
   eval text); nats per character.
The LoRA run's params are also merged into a plain GPT (jaxai.compress.lora.merge) and scored again.

Anchor (Hu et al. 2021, LoRA): RoBERTa-base on SST-2, 95.1% accuracy with 0.8M trainable parameters
against 94.8% for full fine-tuning (125M). Here the model is tiny (0.8M) and the text a few pages,
so the adapters are a larger share of the parameters than in the paper. Timings are wall-clock on a
2-core CPU shared with other jobs: compare them with each other, not with other machines.
"""
import argparse
import os
import sys
import tempfile

import lm_common

import jax  # noqa: E402  (lm_common puts the repository on the path)
import optax  # noqa: E402

from jaxai.compress import lora  # noqa: E402
from jaxai.core import runs  # noqa: E402
from jaxai.data import text  # noqa: E402
from jaxai.tasks import lm  # noqa: E402

CONFIG = "configs/shakespeare_gpt_lora.py"
HELD_OUT = "PETRUCHIO"
ANCHOR = "LoRA (Hu et al.): RoBERTa-base SST-2 95.1% with 0.8M trainable params vs 94.8% full fine-tuning"


def restore(workdir: str):
  """(config, vocab, model, params) of the latest checkpoint of an lm run."""
  config = runs.load_config(workdir, "lm", lm.default_config())
  facts = runs.load_facts(workdir)
  task = lm.make_task(config, facts)
  state, _ = runs.restore_latest_state(workdir, task)
  return config, lm.vocab_of(facts), lm.make_model(config, len(facts["vocab"])), state.params


def eval_texts(pre_config, tune_config, data_dir: str) -> dict[str, str]:
  """{'held-out': PETRUCHIO's turns of the fine-tuning runs' eval split, 'others': everyone else's
  turns of the pretrain run's}."""
  load = lambda config: text.load_text(config.dataset, config.eval_split, data_dir, False)
  return {"held-out": text.select_speakers(load(tune_config), [HELD_OUT]),
          "others": text.select_speakers(load(pre_config), (), [HELD_OUT])}


def mean_loss(model, params, vocab, eval_text: str, block: int, batch: int = 256) -> float:
  """Mean next-character cross-entropy (nats) over every non-overlapping window of `block`."""
  windows = text.eval_windows(vocab.encode(eval_text), block)
  score = jax.jit(lambda p, x, y: optax.softmax_cross_entropy_with_integer_labels(
      lm.logits_of(model, p, x), y).mean(-1).sum())
  total = 0.0
  for i in range(0, len(windows["inputs"]), batch):
    total += float(score(params, windows["inputs"][i:i + batch], windows["targets"][i:i + batch]))
  return total / len(windows["inputs"])


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default=None, help="fresh directory for the runs (default: a temporary one)")
  parser.add_argument("--pretrain_workdir", default=None, help="a finished ':pretrain' run to start from")
  parser.add_argument("--data_dir", default=lm_common.DEFAULT_DATA_DIR)
  parser.add_argument("--pretrain_steps", type=int, default=2000)
  parser.add_argument("--finetune_steps", type=int, default=150)
  args = parser.parse_args()
  root = args.workdir or tempfile.mkdtemp(prefix="compress_lora_gpt_")
  walls = {}
  pre_dir = args.pretrain_workdir
  if pre_dir is None:
    pre_dir = os.path.join(root, "pretrain")
    r = lm_common.train(f"{CONFIG}:pretrain", pre_dir, args.data_dir,
                        [f"--config.num_train_steps={args.pretrain_steps}"])
    walls["pretrain"] = r["wall"]
  steps = [f"--config.num_train_steps={args.finetune_steps}", f"--config.init_from.path={pre_dir}"]
  curves = {}
  for kind in ("lora", "full"):
    r = lm_common.train(f"{CONFIG}:{kind}", os.path.join(root, kind), args.data_dir, steps)
    walls[kind], curves[kind] = r["wall"], r["evals"]

  config, vocab, model, params = restore(pre_dir)
  texts = eval_texts(config, runs.load_config(os.path.join(root, "lora"), "lm", lm.default_config()),
                     args.data_dir)
  block = config.block_size
  losses = {"before (pretrained)": {k: mean_loss(model, params, vocab, t, block) for k, t in texts.items()}}
  counts = {}
  for kind in ("lora", "full"):
    cfg, _, model, params = restore(os.path.join(root, kind))
    losses[f"after {kind}"] = {k: mean_loss(model, params, vocab, t, block) for k, t in texts.items()}
    total = lora.param_count(params)
    counts[kind] = (lora.adapter_count(params) if cfg.lora.rank else total, total)
    if cfg.lora.rank:
      merged = lora.merge(params, cfg.lora)
      cfg.lora.rank = 0
      plain = lm.make_model(cfg, vocab.size)
      losses["lora merged (plain GPT)"] = {k: mean_loss(plain, merged, vocab, t, block) for k, t in texts.items()}

  print(f"\n=== LoRA vs full fine-tuning of a {config.model.num_layers}x{config.model.embed_dim} char GPT "
        f"on held-out speaker {HELD_OUT} ===")
  print(f"eval: {HELD_OUT}'s turns of 'validation' ({len(texts['held-out']):,} chars), the others' of "
        f"'{config.eval_split}' ({len(texts['others']):,} chars); fine-tuning: {HELD_OUT}'s turns of "
        f"'train+test', {args.finetune_steps} steps of {config.batch_size}x{block} characters")
  print(f"{'':28s} {HELD_OUT + ' loss':>16s} {'others loss':>12s}")
  for name, row in losses.items():
    print(f"{name:28s} {row['held-out']:16.4f} {row['others']:12.4f}")
  for kind, (trainable, total) in counts.items():
    print(f"{kind:5s} trainable params {trainable:>9,} of {total:,} ({trainable / total:.1%})   "
          f"wall {walls[kind]:.0f} s   eval curve {[(s, round(l, 3)) for s, l in curves[kind]]}")
  if "pretrain" in walls:
    print(f"pretrain wall {walls['pretrain']:.0f} s ({args.pretrain_steps} steps)")
  print(f"anchor: {ANCHOR}")
  print("CPU: 2 cores shared with other jobs; wall times include start-up, compilation, evaluations "
        "and samples.")
  print(f"workdirs: {root}" + (f" (pretrain: {pre_dir})" if args.pretrain_workdir else ""))


if __name__ == "__main__":
  sys.exit(main())
