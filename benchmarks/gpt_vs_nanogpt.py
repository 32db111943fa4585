"""The char GPT against nanoGPT at nanoGPT's CPU settings, both run in one invocation: training
tokens/s and held-out loss, scored the same way.

  python benchmarks/gpt_vs_nanogpt.py --nanogpt=/path/to/nanoGPT --torch_python=/path/to/venv/bin/python
  python benchmarks/gpt_vs_nanogpt.py --max_iters=200      # a quick look (losses not comparable then)

The peer is never a dependency. Set it up once:
  git clone https://github.com/karpathy/nanoGPT /path/to/nanoGPT
  python -m venv /path/to/venv && /path/to/venv/bin/pip install torch numpy
Without --nanogpt only the project's side runs.

Settings (nanoGPT's README command for a laptop CPU, on config/train_shakespeare_char.py):
  --device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12
  --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0
nanoGPT also gets --always_save_checkpoint=True and an --out_dir of this script's, so that its
checkpoint is the model after the last iteration. The project runs
configs/shakespeare_char_gpt.py:nanogpt_cpu (the same model, optimizer and schedule) through
`python -m jaxai.main`, with --steps_per_call (default 10: ten train steps per device call).

Data: nanoGPT's data/shakespeare_char/{train,val}.bin and meta.pkl are written from the TFDS copy
of Tiny Shakespeare (train = nanoGPT's first 90%, validation+test = its last 10%, the same
characters), as its prepare.py would from input.txt; the project reads the same TFDS splits.

tokens/s (training only, both sides): 768 tokens per iteration over the mean time of an iteration,
leaving out iterations 0-9 (warm-up, compilation) and, for nanoGPT, iterations that evaluated
(every 250th: its per-iteration timer includes the evaluation); the project's trainer excludes
evaluation time itself and the first log interval (compilation) is left out.

Held-out loss, one estimator for both: the mean cross-entropy (nats/char) over every
non-overlapping 64-character window of the last 10% (1,742 windows; jaxai.data.text.eval_windows),
computed for nanoGPT's final checkpoint by its own model code in its own environment. nanoGPT's own
figure (20 random batches of 12 windows: 240 of them, drawn anew at each evaluation) is printed
beside it; its spread from batch to batch is a few hundredths.
"""
import argparse
import json
import os
import pickle
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

import lm_common

BLOCK, BATCH, ITERS_SKIPPED = 64, 12, 10
NANOGPT_ARGS = ["config/train_shakespeare_char.py", "--device=cpu", "--compile=False", "--eval_iters=20",
                "--log_interval=1", f"--block_size={BLOCK}", f"--batch_size={BATCH}", "--n_layer=4", "--n_head=4",
                "--n_embd=128", "--dropout=0.0", "--always_save_checkpoint=True"]

SCORE = textwrap.dedent("""
    import sys, numpy as np, torch
    sys.path.insert(0, sys.argv[1])
    from model import GPT, GPTConfig
    ckpt = torch.load(sys.argv[2], map_location="cpu")
    model = GPT(GPTConfig(**ckpt["model_args"]))
    state = {k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()}
    model.load_state_dict(state); model.eval()
    val = np.fromfile(sys.argv[3], dtype=np.uint16).astype(np.int64)
    block = int(sys.argv[4])
    starts = np.arange(0, len(val) - block - 1 + 1, block)
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(starts), 64):
            s = starts[i:i + 64]
            x = torch.from_numpy(np.stack([val[j:j + block] for j in s]))
            y = torch.from_numpy(np.stack([val[j + 1:j + 1 + block] for j in s]))
            logits, _ = model(x, y)
            per_window = torch.nn.functional.cross_entropy(
                logits.flatten(0, 1), y.flatten(), reduction="none").view(len(s), block).mean(1)
            total += per_window.sum().item()
    print(f"SCORE {total / len(starts):.6f} {len(starts)} {ckpt['iter_num']}")
""")


def write_nanogpt_data(nanogpt: str, data_dir: str) -> str:
  """nanoGPT's shakespeare_char files from the TFDS splits; returns the val.bin path."""
  sys.path.insert(0, lm_common.REPO)
  from jaxai.data import text
  train = text.load_text("tiny_shakespeare", "train", data_dir, download=False)
  held_out = text.load_text("tiny_shakespeare", "validation+test", data_dir, download=False)
  chars = sorted(set(train + held_out))
  stoi = {c: i for i, c in enumerate(chars)}
  out = os.path.join(nanogpt, "data", "shakespeare_char")
  os.makedirs(out, exist_ok=True)
  for name, part in (("train", train), ("val", held_out)):
    np.array([stoi[c] for c in part], dtype=np.uint16).tofile(os.path.join(out, f"{name}.bin"))
  with open(os.path.join(out, "meta.pkl"), "wb") as f:
    pickle.dump({"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}, f)
  return os.path.join(out, "val.bin")


def run_nanogpt(nanogpt: str, python: str, data_dir: str, max_iters: int) -> dict:
  val_bin = write_nanogpt_data(nanogpt, data_dir)
  out_dir = tempfile.mkdtemp(prefix="nanogpt_out_")
  every = min(250, max_iters)  # its config's eval_interval (a shorter run still ends with one).
  cmd = [python, "train.py", *NANOGPT_ARGS, f"--max_iters={max_iters}", f"--lr_decay_iters={max_iters}",
         f"--eval_interval={every}", f"--warmup_iters={min(100, max_iters // 2)}", f"--out_dir={out_dir}"]
  print("$ (cd " + nanogpt + " && " + " ".join(cmd) + ")", flush=True)
  start = time.perf_counter()
  proc = subprocess.run(cmd, cwd=nanogpt, capture_output=True, text=True)
  wall = time.perf_counter() - start
  if proc.returncode:
    sys.exit(f"error: nanoGPT exited with status {proc.returncode}:\n{proc.stderr[-3000:]}")
  iters = [(int(i), float(ms)) for i, ms in re.findall(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms", proc.stdout, re.M)]
  evals = [(int(i), float(v)) for i, v in re.findall(r"^step (\d+): train loss [\d.]+, val loss ([\d.]+)", proc.stdout, re.M)]
  timed = [ms for i, ms in iters if i >= ITERS_SKIPPED and i % every]
  score_file = os.path.join(out_dir, "score.py")
  with open(score_file, "w") as f:
    f.write(SCORE)
  scored = subprocess.run([python, score_file, nanogpt, os.path.join(out_dir, "ckpt.pt"), val_bin, str(BLOCK)],
                          capture_output=True, text=True)
  if scored.returncode:
    sys.exit(f"error: scoring nanoGPT's checkpoint failed:\n{scored.stderr[-3000:]}")
  loss, windows, at_iter = re.search(r"SCORE ([\d.]+) (\d+) (\d+)", scored.stdout).groups()
  return {"tokens_per_sec": BLOCK * BATCH * 1000 / statistics.mean(timed), "own_val": evals[-1][1],
          "every_window": float(loss), "windows": int(windows), "at_iter": int(at_iter), "wall": wall,
          "evals": evals}


def run_jaxai(data_dir: str, max_iters: int, steps_per_call: int, overrides: list[str]) -> dict:
  workdir = tempfile.mkdtemp(prefix="gpt_vs_nanogpt_")
  extra = [f"--config.steps_per_call={steps_per_call}", "--config.log_every_steps=10"]
  if max_iters != 2000:
    extra += [f"--config.num_train_steps={max_iters}", f"--config.eval_every_steps={min(250, max_iters)}",
              f"--config.optimizer.warmup_steps={min(100, max_iters // 2)}"]
  r = lm_common.train("configs/shakespeare_char_gpt.py:nanogpt_cpu", workdir, data_dir, extra + overrides)
  records = [x for x in lm_common.metrics_lib.read_metrics(workdir) if "perf/steps_per_sec" in x]
  kept = [x for x in records if x["step"] > ITERS_SKIPPED]  # the first interval holds compilation.
  seconds = sum(10 / x["perf/steps_per_sec"] for x in kept)
  return {"tokens_per_sec": len(kept) * 10 * BLOCK * BATCH / seconds, "every_window": r["evals"][-1][1],
          "wall": r["wall"], "evals": r["evals"]}


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--nanogpt", default="", help="a clone of github.com/karpathy/nanoGPT")
  parser.add_argument("--torch_python", default="python", help="a Python with torch and numpy for nanoGPT")
  parser.add_argument("--data_dir", default=lm_common.DEFAULT_DATA_DIR)
  parser.add_argument("--max_iters", type=int, default=2000)
  parser.add_argument("--steps_per_call", type=int, default=10)
  parser.add_argument("--peer_first", action="store_true", help="run nanoGPT before the project")
  args, overrides = parser.parse_known_args()
  sides = ["jaxai", "nanogpt"] if args.nanogpt else ["jaxai"]
  if args.peer_first:
    sides.reverse()
  results = {}
  for side in sides:
    results[side] = (run_nanogpt(args.nanogpt, args.torch_python, args.data_dir, args.max_iters) if side == "nanogpt"
                     else run_jaxai(args.data_dir, args.max_iters, args.steps_per_call, overrides))
  j = results["jaxai"]
  print(f"\n=== nanoGPT CPU settings, {args.max_iters} iterations (4 layers, 4 heads, 128 wide, block 64, batch 12) ===")
  print(f"{'':28s} {'jaxai':>10s} {'nanoGPT':>10s}")
  n = results.get("nanogpt")
  row = lambda name, a, b, fmt: print(f"{name:28s} {format(a, fmt):>10s} {format(b, fmt) if b is not None else '-':>10s}")
  row("training tokens/s", j["tokens_per_sec"], n and n["tokens_per_sec"], ",.0f")
  row("loss, every window", j["every_window"], n and n["every_window"], ".4f")
  own = format(n["own_val"], ".4f") if n else "-"
  print(f"{'loss, nanoGPT own estimate':28s} {'-':>10s} {own:>10s}")
  row("wall time, s (all included)", j["wall"], n and n["wall"], ".0f")
  if n:
    print(f"tokens/s ratio jaxai / nanoGPT: {j['tokens_per_sec'] / n['tokens_per_sec']:.2f} (goal >= 1.5); "
          f"loss difference (every window): {j['every_window'] - n['every_window']:+.4f} (goal <= 0)")
    print(f"nanoGPT scored at iteration {n['at_iter']} on {n['windows']} windows; its evaluations: {n['evals']}")
  else:
    print("nanoGPT not run: pass --nanogpt and --torch_python (see this script's docstring for the setup).")
  print(f"jaxai evaluations: {j['evals']}; steps_per_call {args.steps_per_call}; order {sides}")
  print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != 'evals'} for k, v in results.items()}))


if __name__ == "__main__":
  main()
