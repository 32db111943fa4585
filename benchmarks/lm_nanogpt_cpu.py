"""nanoGPT's CPU settings on Tiny Shakespeare: validation loss at 2000 iterations, wall time, tokens/s.

  python benchmarks/lm_nanogpt_cpu.py [--workdir=DIR] [--data_dir=../shared/data/tfds] [--config.key=value ...]

Trains configs/shakespeare_char_gpt.py:nanogpt_cpu, which copies nanoGPT's README command for a
laptop CPU (`--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64
--batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000
--dropout=0.0` on config/train_shakespeare_char.py: AdamW lr 1e-3 -> 1e-4, b2 0.99, weight decay
0.1, 100 warmup iterations, clipping at 1, no biases).

Reference (nanoGPT README, github.com/karpathy/nanoGPT): "val loss 1.88" after ~3 minutes on a
laptop CPU. nanoGPT estimates it on 20 random batches of 12 windows of its last 10%; here the same
held-out text ('validation+test') is scored on every non-overlapping window of 64 characters (1,742),
a fixed set, so the figure is comparable but not the same estimator. Pass: eval/loss <= 1.95.
"""
import argparse
import tempfile

import lm_common

TARGET = 1.95


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default=None, help="fresh directory for the run (default: a temporary one)")
  parser.add_argument("--data_dir", default=lm_common.DEFAULT_DATA_DIR)
  args, overrides = parser.parse_known_args()
  workdir = args.workdir or tempfile.mkdtemp(prefix="lm_nanogpt_cpu_")
  r = lm_common.train("configs/shakespeare_char_gpt.py:nanogpt_cpu", workdir, args.data_dir, overrides)
  final = r["evals"][-1][1]
  print("\n=== nanoGPT CPU settings (4 layers, 4 heads, 128 wide, block 64, batch 12) ===")
  print("step  eval/loss (nats/char, nanoGPT's last 10%)")
  for step, loss in r["evals"]:
    print(f"{step:5d}  {loss:.4f}")
  print(f"final eval/loss {final:.4f} at step {r['steps']}  (nanoGPT: ~1.88)  "
        f"{'PASS' if final <= TARGET else 'FAIL'} (<= {TARGET})" + (" [smoke run: overrides]" if overrides else ""))
  print(f"wall time {r['wall']:.0f} s (start-up, compilation, evaluations and samples included); "
        f"training {r['train_seconds']:.0f} s  (nanoGPT: ~3 min on a laptop CPU)")
  print(f"tokens/s {r['tokens_per_sec']:,.0f} (training only); MFU {r['mfu']:.1%} of the measured peak")
  print(f"sample at the last evaluation:\n{r['sample']}")
  print(f"workdir: {workdir}")


if __name__ == "__main__":
  main()
