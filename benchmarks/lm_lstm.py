"""char-rnn (2-layer LSTM, 256 units) on Tiny Shakespeare: validation loss after a fixed budget.

  python benchmarks/lm_lstm.py [--steps=2000] [--workdir=DIR] [--data_dir=...] [--config.key=value ...]

Budget: configs/shakespeare_char_lstm.py as it is: 2000 optimizer steps (`--steps`) of 32 windows
of 100 characters (6.4M characters, ~6 passes over the training text), AdamW 2e-3 with 100 warmup
steps and cosine decay to 2e-4, clipping at 5. Evaluated on TFDS's 'validation' split (55,770
characters, every non-overlapping window of 100: 557 windows). For comparison, the GPT of
benchmarks/lm_nanogpt_cpu.py (nanoGPT's CPU settings, also 2000 steps, 1.5M characters) is scored on
nanoGPT's last 10%. char-rnn's README gives no loss for this setting, so no pass/fail is printed.
"""
import argparse
import tempfile

import lm_common


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=2000, help="optimizer steps (the budget)")
  parser.add_argument("--workdir", default=None, help="fresh directory for the run (default: a temporary one)")
  parser.add_argument("--data_dir", default=lm_common.DEFAULT_DATA_DIR)
  args, overrides = parser.parse_known_args()
  workdir = args.workdir or tempfile.mkdtemp(prefix="lm_lstm_")
  r = lm_common.train("configs/shakespeare_char_lstm.py", workdir, args.data_dir,
                      [f"--config.num_train_steps={args.steps}"] + overrides)
  final = r["evals"][-1][1]
  print("\n=== char-rnn LSTM 2x256, batch 32 x 100 characters ===")
  for step, loss in r["evals"]:
    print(f"{step:5d}  eval/loss {loss:.4f}")
  print(f"final eval/loss {final:.4f} (nats/char, TFDS validation) after {r['steps']} steps")
  print(f"wall time {r['wall']:.0f} s; training {r['train_seconds']:.0f} s; tokens/s {r['tokens_per_sec']:,.0f}; "
        f"MFU {r['mfu']:.1%}")
  print(f"sample at the last evaluation:\n{r['sample']}")
  print(f"workdir: {workdir}")


if __name__ == "__main__":
  main()
