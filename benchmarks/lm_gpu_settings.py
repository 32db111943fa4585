"""nanoGPT's GPU settings (the "baby GPT" of config/train_shakespeare_char.py) measured on this machine.

  python benchmarks/lm_gpu_settings.py [--steps=8] [--data_dir=...] [--config.key=value ...]

Reference (nanoGPT README, github.com/karpathy/nanoGPT): 6 layers, 6 heads, 384 wide, context 256,
batch 64, dropout 0.2, 5000 iterations -> validation loss 1.4697 in about 3 minutes on one A100.
That is what configs/shakespeare_char_gpt.py:nanogpt_gpu should reach on an accelerator (bf16
compute there). On CPU the full run is out of reach, so this trains `--steps` steps (warmup cut to
fit, evaluation on 8 windows, no samples) and prints training tokens/s, the model FLOPs utilization
against the peak measured with a large matmul (jaxai.core.flops), and what 5000 steps would take here.
"""
import argparse
import tempfile

import lm_common

NANOGPT_LOSS, NANOGPT_SECONDS, STEPS, TOKENS_PER_STEP = 1.4697, 180.0, 5000, 64 * 256


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--steps", type=int, default=8, help="training steps to time (logged every 4)")
  parser.add_argument("--workdir", default=None, help="fresh directory for the run (default: a temporary one)")
  parser.add_argument("--data_dir", default=lm_common.DEFAULT_DATA_DIR)
  args, overrides = parser.parse_known_args()
  workdir = args.workdir or tempfile.mkdtemp(prefix="lm_gpu_settings_")
  settings = [f"--config.num_train_steps={args.steps}", "--config.optimizer.warmup_steps=2",
              "--config.log_every_steps=4", "--config.eval_windows=8", "--config.sample.num_chars=0",
              "--config.checkpoint_every_steps=0"]
  config = "configs/shakespeare_char_gpt.py:nanogpt_gpu"
  r = lm_common.train(config, workdir, args.data_dir, settings + overrides)
  per_token = lm_common.flops_per_token(config, args.data_dir)
  achieved = r["tokens_per_sec"] * per_token
  peak = lm_common.peak_flops()  # measured again now: the machine is shared, so it varies.
  a100_tokens_per_sec = STEPS * TOKENS_PER_STEP / NANOGPT_SECONDS
  print("\n=== nanoGPT GPU settings (6 layers, 6 heads, 384 wide, block 256, batch 64) on this machine ===")
  print(f"nanoGPT on one A100: val loss {NANOGPT_LOSS} after {STEPS} iterations in ~{NANOGPT_SECONDS / 60:.0f} min "
        f"(~{a100_tokens_per_sec:,.0f} tokens/s implied)")
  print(f"model FLOPs per token {per_token / 1e6:.1f} M (6 per weight + attention); nanoGPT's A100 run: "
        f"{a100_tokens_per_sec * per_token / 1e12:.1f} TFLOP/s, {a100_tokens_per_sec * per_token / 312e12:.0%} of "
        "the A100's 312 TFLOP/s bf16 peak")
  print(f"here: {r['steps']} steps, training tokens/s {r['tokens_per_sec']:,.0f} = {achieved / 1e9:.1f} GFLOP/s; "
        f"perf/mfu {r['mfu']:.1%} (against the peak the run measured at its start, in its log); "
        f"{achieved / peak:.1%} of the peak measured now, {peak / 1e9:.1f} GFLOP/s (float32 2048x2048 matmul)")
  if r["tokens_per_sec"]:
    print(f"5000 steps here would take ~{STEPS * TOKENS_PER_STEP / r['tokens_per_sec'] / 3600:.1f} h of training")
  print(f"wall time {r['wall']:.0f} s (start-up, compilation, one small evaluation included); workdir: {workdir}")


if __name__ == "__main__":
  main()
