"""Sample quality and speed of the GAN configs, trained end to end by the real trainer.

  python benchmarks/gan_quality.py --out=/tmp/gan_quality            # mnist_dcgan + mnist_cgan, full budgets
  python benchmarks/gan_quality.py --out=/tmp/gan_quality --fashion  # and their Fashion-MNIST variants
  python benchmarks/gan_quality.py --out=/tmp/gan_smoke --steps=20 --num_samples=500   # smoke run

Each config runs `python -m jaxai.main --config=configs/<config>.py[:fashion] --workdir=<out>/<run>` with
the feature classifier of `benchmarks/generative_common.classifier_workdir` (trained first when missing,
under --classifier_root), scoring only at the end (config.quality.every_steps = the run's steps). Figures:

  frechet_distance        num_samples generated images vs as many test images, on the penultimate
                          features of the project's CNN classifier (not Inception);
  frechet_distance_floor  training vs test images under the same features: a perfect generator's score;
  class_accuracy          conditional configs: the classifier's accuracy on generated images of each
                          requested class, in turn. Target: >= 95% for mnist_cgan;
  wall_s                  the whole subprocess (start-up, compile, train, evaluations, checkpoints);
  images_per_sec          real training images through a train step per second of train-step time.

The sample grid of the last evaluation is copied to <out>/<run>.png; all figures go to
<out>/gan_quality.json. Anchor, in a different feature space (Inception features, so the numbers are
not comparable, only the ordering is suggestive): Lucic et al. 2018 ("Are GANs Created Equal?"), best
FID of NS-GAN: MNIST 6.8, Fashion-MNIST 26.5.
"""
import importlib.util
import os
import shutil
import sys

from absl import app, flags

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_HERE, os.path.dirname(_HERE)]  # generative_common, and jaxai when not installed.
import generative_common as gc  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("configs", ["mnist_dcgan", "mnist_cgan"], "GAN configs (configs/<name>.py).")
flags.DEFINE_bool("fashion", False, "Also run each config's 'fashion' variant (Fashion-MNIST).")
flags.DEFINE_bool("only_fashion", False, "Run only the 'fashion' variants.")
flags.DEFINE_integer("steps", 0, "Train steps; 0 = the config's own budget.")
flags.DEFINE_integer("num_samples", 10000, "Generated (and test) images for the Frechet distance.")
flags.DEFINE_string("out", "/tmp/gan_quality", "Directory of the runs, the PNG grids and the JSON.")
flags.DEFINE_string("classifier_root", "", "Where the feature classifiers live (default: --out).")
flags.DEFINE_string("data_dir", gc.DEFAULT_DATA_DIR, "TFDS data_dir with mnist and fashion_mnist.")

ANCHORS = {"mnist": 6.8, "fashion_mnist": 26.5}  # Lucic et al. 2018, best NS-GAN FID (Inception features).
TARGET_CLASS_ACCURACY = {"mnist": 0.95}


def load_config(name: str, variant: str):
  path = os.path.join(gc.REPO, "configs", f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"configs_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def run_one(name: str, variant: str) -> dict:
  config = load_config(name, variant)
  dataset = gc.dataset_name(config.dataset)
  steps = FLAGS.steps or config.num_train_steps
  run = name + (f"_{variant}" if variant else "")
  workdir = os.path.join(os.path.abspath(FLAGS.out), run)
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    sys.exit(f"error: {workdir} already holds checkpoints; the trainer would resume from them. "
             "Use a new --out.")
  root = os.path.abspath(FLAGS.classifier_root or FLAGS.out)
  classifier = gc.classifier_workdir(dataset, root, FLAGS.data_dir)
  overrides = [f"--config.num_train_steps={steps}", f"--config.quality.classifier_workdir={classifier}",
               f"--config.quality.num_samples={FLAGS.num_samples}", f"--config.quality.every_steps={steps}"]
  if steps < config.checkpoint_every_steps:
    overrides.append(f"--config.checkpoint_every_steps={steps}")
  config_arg = f"configs/{name}.py" + (f":{variant}" if variant else "")
  wall = gc.run_main(config_arg, workdir, FLAGS.data_dir, overrides)
  final = gc.final_metrics(workdir)
  train_s = gc.train_seconds(workdir)
  grids = sorted((os.path.join(workdir, "samples", f) for f in os.listdir(os.path.join(workdir, "samples"))),
                 key=lambda p: int(os.path.basename(p)[5:-4]))
  grid = os.path.join(os.path.abspath(FLAGS.out), f"{run}.png")
  shutil.copyfile(grids[-1], grid)
  figures = {"config": name, "variant": variant, "dataset": dataset, "steps": steps,
             "batch_size": config.batch_size, "conditional": bool(config.gan.conditional),
             "frechet_distance": final.get("eval/frechet_distance"),
             "frechet_distance_floor": final.get("eval/frechet_distance_floor"),
             "class_accuracy": final.get("eval/class_accuracy"), "num_samples": FLAGS.num_samples,
             "wall_s": wall, "train_s": train_s,
             "images_per_sec": steps * config.batch_size / train_s if train_s else None,
             "d_real": final.get("train/d_real"), "d_fake": final.get("train/d_fake"),
             "anchor_fid_inception_lucic2018": ANCHORS.get(dataset), "grid_png": grid, "workdir": workdir}
  target = TARGET_CLASS_ACCURACY.get(dataset) if config.gan.conditional else None
  if target is not None and figures["class_accuracy"] is not None:
    figures["class_accuracy_target"] = target
    figures["class_accuracy_pass"] = figures["class_accuracy"] >= target
  return figures


def show(f: dict) -> str:
  fmt = lambda v, p=2: "n/a" if v is None else f"{v:.{p}f}"
  line = (f"{f['config'] + (':' + f['variant'] if f['variant'] else ''):22s} {f['steps']} steps  "
          f"FD {fmt(f['frechet_distance'])} (floor {fmt(f['frechet_distance_floor'])}, "
          f"{f['num_samples']} samples, CNN features)  [Lucic et al. 2018 best NS-GAN FID {f['dataset']}: "
          f"{f['anchor_fid_inception_lucic2018']}, Inception features: another space]")
  if f["conditional"]:
    verdict = ""
    if "class_accuracy_pass" in f:
      verdict = (f" target >= {f['class_accuracy_target']:.2f} "
                 + ("PASS" if f["class_accuracy_pass"] else "FAIL"))
      verdict += " (smoke: not the config's budget)" if FLAGS.steps else ""
    line += f"  class accuracy {fmt(f['class_accuracy'], 4)}{verdict}"
  return line + f"  wall {f['wall_s']:.0f} s  {fmt(f['images_per_sec'], 0)} images/s  grid {f['grid_png']}"


def main(argv):
  del argv
  variants = (([] if FLAGS.only_fashion else [""])
              + (["fashion"] if FLAGS.fashion or FLAGS.only_fashion else []))
  os.makedirs(FLAGS.out, exist_ok=True)
  results = [run_one(name, v) for v in variants for name in FLAGS.configs]
  print("\nGAN quality" + (f" (smoke run: --steps={FLAGS.steps})" if FLAGS.steps else ""))
  for f in results:
    print("  " + show(f))
  gc.write_json(os.path.join(FLAGS.out, "gan_quality.json"), results)
  return 0 if all(f.get("class_accuracy_pass", True) for f in results) or FLAGS.steps else 1


if __name__ == "__main__":
  app.run(main)
