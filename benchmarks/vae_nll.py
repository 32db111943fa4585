"""Test NLL of the VAE and IWAE configs on dynamically binarized MNIST, beside the IWAE paper's.

  python benchmarks/vae_nll.py                          # both full configs, ~30 min on 2 CPU cores
  python benchmarks/vae_nll.py --models=vae             # ~13-15 min
  python benchmarks/vae_nll.py --nll_examples=0         # NLL on all 10,000 test images (+~17 min per model)
  python benchmarks/vae_nll.py --fid_root=/tmp/fid      # also the Frechet distance (trains a classifier once)
  python benchmarks/vae_nll.py --steps=20 --nll_examples=100 --importance_samples=100   # smoke run

Each model trains in this process with the shared trainer (`jaxai.core.trainer.train_and_evaluate`)
from its config (configs/mnist_vae.py, configs/mnist_iwae.py; the budget in epochs is a flag), in
<workdir>/<model>, then reads its final evaluation:

  nll          -log p(x) in nats per image, importance-sampled with --importance_samples (5,000, the
               paper's protocol) from q(z|x), on the first --nll_examples test images (0 = all 10,000),
               statically binarized with a fixed seed; +- its standard error over those images (the
               spread of the per-image estimates / sqrt(n), from eval/nll and eval/nll_squared).
  neg_elbo     -ELBO on all test images (closed-form KL, one posterior sample per image).
  wall         the whole run: data loading, compilation, training, evaluations, checkpoints.
  images/s     training images per second over training time only (the trainer's log intervals).
  epochs       training epochs, and their fraction of the paper's 3,280 epochs (3^i passes at
               learning rate 1e-3 * 10^(-i/7) for i = 0..7, batch 20).
  frechet      with --fid_root: eval/frechet_distance of 10,000 samples vs the test set on the features
               of the project's CNN (benchmarks/generative_common.py trains it into --fid_root once),
               and its floor (train vs test images).

Reference (Burda, Grosse, Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016, Table 1,
MNIST, one stochastic layer, k=50, test NLL with 5,000 samples): VAE 86.76, IWAE 84.78 nats. The
budgets here are a few percent of the paper's, so the figures are expected to sit some nats above
those; the JSON and the console say by how much. The training images are binarized dynamically (a
fresh draw per step), as in the paper.

Writes <out>/vae_nll.json and <out>/<model>_samples.png (the final sample grid of each model).
"""
import importlib.util
import json
import math
import os
import shutil
import sys
import tempfile
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generative_common  # noqa: E402
from jaxai.core import trainer
from jaxai.tasks.generative import vae

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER_EPOCHS = 3280
MODELS = {  # name: (config file, the paper's test NLL in nats)
    "vae": ("configs/mnist_vae.py", 86.76),
    "iwae": ("configs/mnist_iwae.py", 84.78),
}

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["vae", "iwae"], f"which of {list(MODELS)} to train.")
flags.DEFINE_float("vae_epochs", 0.0, "training epochs of the VAE; 0 = its config's (150).")
flags.DEFINE_float("iwae_epochs", 0.0, "training epochs of the IWAE; 0 = its config's (5).")
flags.DEFINE_integer("steps", 0, "> 0: train this many steps instead (a smoke run, marked as such).")
flags.DEFINE_integer("importance_samples", 5000, "importance samples per test image for the NLL.")
flags.DEFINE_integer("nll_examples", 1000, "test images for the NLL (the first N); 0 = all 10,000.")
flags.DEFINE_string("data_dir", generative_common.DEFAULT_DATA_DIR, "TFDS data_dir holding mnist.")
flags.DEFINE_string("fid_root", "", "where the feature classifier lives (trained if missing); '' = no FID.")
flags.DEFINE_string("workdir", "", "root of one workdir per model (default: a new temporary directory).")
flags.DEFINE_string("out", "/tmp/vae_nll", "directory for the JSON and the sample PNGs.")


def load_config(path: str):
  spec = importlib.util.spec_from_file_location("benchmark_config", os.path.join(REPO, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config("")


def run(name: str, workdir: str) -> dict:
  path, paper = MODELS[name]
  config = load_config(path)
  config.data_dir, config.download = FLAGS.data_dir, False
  epochs = FLAGS.vae_epochs if name == "vae" else FLAGS.iwae_epochs
  if epochs:
    config.num_epochs = epochs
  if FLAGS.steps:
    config.num_train_steps = FLAGS.steps
    config.eval_every_steps = config.checkpoint_every_steps = 0
    config.log_every_steps = max(1, min(config.log_every_steps, FLAGS.steps))
  config.vae.eval_importance_samples = FLAGS.importance_samples
  config.vae.nll_max_examples = FLAGS.nll_examples
  if FLAGS.fid_root:
    config.quality.classifier_workdir = generative_common.classifier_workdir(
        config.dataset, os.path.abspath(FLAGS.fid_root), FLAGS.data_dir)
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    raise app.UsageError(f"{workdir} already holds checkpoints; the trainer would resume from them. "
                         "Use a new --workdir.")
  start = time.perf_counter()
  task = vae.make_task(config)
  print(f"[{name}] {task.summary}", flush=True)
  state, results = trainer.train_and_evaluate(config, workdir, task)
  wall = time.perf_counter() - start
  seconds = generative_common.train_seconds(workdir)
  n = results["eval/nll_examples"]
  variance = max(results["eval/nll_squared"] - results["eval/nll"] ** 2, 0.0) * n / max(n - 1, 1)
  epochs = int(state.step) * config.batch_size / task.facts["num_train_examples"]
  return {"model": name, "config": path, "objective": config.vae.objective, "k": config.vae.num_samples,
          "binarization": config.vae.binarization, "steps": int(state.step), "batch_size": config.batch_size,
          "epochs": epochs, "fraction_of_paper_epochs": epochs / PAPER_EPOCHS,
          "nll": results["eval/nll"], "nll_standard_error": math.sqrt(variance / n),
          "nll_examples": int(n), "importance_samples": int(results["eval/nll_importance_samples"]),
          "neg_elbo": results["eval/neg_elbo"], "kl": results["eval/kl"],
          "eval_examples": int(results["eval/examples"]), "paper_nll": paper,
          "above_paper_nats": results["eval/nll"] - paper, "wall_s": wall,
          "train_images_per_sec": int(state.step) * config.batch_size / seconds if seconds else float("nan"),
          "frechet_distance": results.get("eval/frechet_distance"),
          "frechet_distance_floor": results.get("eval/frechet_distance_floor"),
          "smoke_run": bool(FLAGS.steps),
          "samples_png": os.path.join(workdir, "samples", f"step_{int(state.step)}.png")}


def main(argv):
  del argv
  unknown = [m for m in FLAGS.models if m not in MODELS]
  if unknown:
    raise app.UsageError(f"--models: {unknown} unknown; use some of {list(MODELS)}.")
  root = os.path.abspath(FLAGS.workdir or tempfile.mkdtemp(prefix="jaxai_vae_nll_"))
  os.makedirs(FLAGS.out, exist_ok=True)
  rows = []
  for name in FLAGS.models:
    row = run(name, os.path.join(root, name))
    shutil.copy(row.pop("samples_png"), os.path.join(FLAGS.out, f"{name}_samples.png"))
    rows.append(row)
  print("\nmodel  k   epochs (of 3,280)   test NLL (nats)          paper   -ELBO    wall     images/s")
  for r in rows:
    print(f"{r['model']:5s} {r['k']:3d} {r['epochs']:7.1f} ({100 * r['fraction_of_paper_epochs']:5.2f}%)   "
          f"{r['nll']:7.2f} +- {r['nll_standard_error']:.2f} "
          f"(n={r['nll_examples']}, K={r['importance_samples']})  {r['paper_nll']:6.2f}  "
          f"{r['neg_elbo']:7.2f}  {r['wall_s']:6.0f} s  {r['train_images_per_sec']:8.0f}"
          + ("  [smoke run]" if r["smoke_run"] else ""))
    if r["frechet_distance"] is not None:
      print(f"      Frechet distance {r['frechet_distance']:.2f} (floor {r['frechet_distance_floor']:.2f})")
  print(f"training images binarized {rows[0]['binarization']}ally; test images statically (fixed seed)")
  summary = {"benchmark": "vae_nll", "dataset": "mnist (binarized)", "paper_epochs": PAPER_EPOCHS,
             "reference": "Burda et al. 2016, Importance Weighted Autoencoders, Table 1 (k=50)", "runs": rows}
  with open(os.path.join(FLAGS.out, "vae_nll.json"), "w") as f:
    json.dump(summary, f, indent=2)
  print(f"wrote {FLAGS.out}/vae_nll.json and the sample grids")


if __name__ == "__main__":
  app.run(main)
