"""Text to image: does a typed prompt come out as the image it names, and how good and fast are the samples.

  python benchmarks/text2image_quality.py --out=/tmp/t2i_quality                # mnist, the config's budget
  python benchmarks/text2image_quality.py --out=/tmp/t2i_quality --variant=fashion
  python benchmarks/text2image_quality.py --out=/tmp/t2i_smoke --steps=20 --num_samples=500 --per_prompt=20

Trains `python -m jaxai.main --config=configs/mnist_text2image.py[:variant] --workdir=<out>/<run>` with the
feature classifier of `benchmarks/generative_common.classifier_workdir` (trained first when missing, under
--classifier_root), scoring sample quality once, at the end. Then, from the run's checkpoint alone (as
`python -m jaxai.generate` does), draws --per_prompt images for each of ten prompts, one per class, the
templates taken in turn ('a handwritten zero', 'the digit one', 'a drawing of a two', ...). Figures:

  prompt_accuracy          per prompt: the classifier's accuracy on its images (is 'a drawing of an eight'
                           an eight?), and their mean. Target (mnist): mean >= 0.90.
  class_accuracy           the trainer's: template-0 captions of all classes in turn, num_samples images.
  frechet_distance         num_samples generated images vs as many test images, on the penultimate
                           features of the project's CNN classifier (not Inception);
  frechet_distance_floor   training vs test images under the same features: a perfect generator's score;
  wall_s, train_s          the whole training subprocess; its time in train steps;
  train_images_per_sec     training images through a train step per second of train-step time;
  sample_images_per_sec    images generated per second, compiled (49 codes by the KV-cache loop, decoded).

The grid (one row per prompt) goes to <out>/<run>_prompts.png, the figures to <out>/text2image_quality.json.
"""
import importlib.util
import os
import sys
import time

import jax
import numpy as np
from absl import app, flags

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # generative_common and jaxai.
import generative_common as gc  # noqa: E402

from jaxai.core import runs, sharding  # noqa: E402
from jaxai.core.summaries import Image  # noqa: E402
from jaxai.tasks.generative import quality, text2image  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("variant", "", "Variant of configs/mnist_text2image.py: '' (mnist) or 'fashion'.")
flags.DEFINE_integer("steps", 0, "Train steps; 0 = the config's own budget.")
flags.DEFINE_integer("num_samples", 10000, "Generated (and test) images for the Frechet distance.")
flags.DEFINE_integer("per_prompt", 200, "Images drawn for each of the ten prompts.")
flags.DEFINE_integer("grid_columns", 10, "Images of each prompt in the PNG grid.")
flags.DEFINE_string("out", "/tmp/text2image_quality", "Directory of the run, the PNG grid and the JSON.")
flags.DEFINE_string("classifier_root", "", "Where the feature classifiers live (default: --out).")
flags.DEFINE_string("data_dir", gc.DEFAULT_DATA_DIR, "TFDS data_dir with mnist and fashion_mnist.")

CONFIG = "mnist_text2image"
TARGET_PROMPT_ACCURACY = {"mnist": 0.90}


def load_config(variant: str):
  path = os.path.join(gc.REPO, "configs", f"{CONFIG}.py")
  spec = importlib.util.spec_from_file_location("configs_t2i", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def prompt_figures(workdir: str, classifier_dir: str) -> dict:
  """Per-prompt accuracy, the grid and the sampling speed, from the run's files alone."""
  config = runs.load_config(workdir, "text2image", text2image.default_config())
  facts = runs.load_facts(workdir)
  state, _ = runs.restore_latest_state(workdir, text2image.make_task(config, facts))
  generator = text2image.make_generator(config, facts)
  captions = text2image.Models(config, facts).captions
  prompts = [captions.text(c, c % captions.num_templates) for c in range(len(captions.class_names))]
  classifier = quality.Classifier(classifier_dir)
  sample = sharding.on_local_device(generator.sample)
  n, cols = FLAGS.per_prompt, FLAGS.grid_columns
  rows_of = lambda prompt: np.stack([generator.parse(prompt)] * n)  # (n, L)
  jax.block_until_ready(sample(state, jax.random.key(0), rows_of(prompts[0])))  # compile.
  rows, accuracy, seconds = [], {}, 0.0
  for c, prompt in enumerate(prompts):
    start = time.perf_counter()
    images = jax.block_until_ready(sample(state, jax.random.key(c + 1), rows_of(prompt)))
    seconds += time.perf_counter() - start
    _, predicted = classifier(images)
    accuracy[prompt] = float(np.mean(predicted == c))
    rows.append(np.asarray(images[:cols]))
  grid = Image(np.concatenate(rows), columns=cols).grid()
  return {"prompt_accuracy": accuracy, "mean_prompt_accuracy": float(np.mean(list(accuracy.values()))),
          "sample_images_per_sec": n * len(prompts) / seconds, "grid": grid}


def save_png(path: str, grid: np.ndarray) -> None:
  from PIL import Image as PILImage
  PILImage.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)


def main(argv):
  del argv
  config = load_config(FLAGS.variant)
  dataset = gc.dataset_name(config.dataset)
  steps = FLAGS.steps or config.num_train_steps
  run = CONFIG + (f"_{FLAGS.variant}" if FLAGS.variant else "")
  out = os.path.abspath(FLAGS.out)
  workdir = os.path.join(out, run)
  if os.path.exists(os.path.join(workdir, "checkpoints")):
    sys.exit(f"error: {workdir} already holds checkpoints; the trainer would resume from them. "
             "Use a new --out.")
  os.makedirs(out, exist_ok=True)
  classifier = gc.classifier_workdir(dataset, os.path.abspath(FLAGS.classifier_root or out), FLAGS.data_dir)
  overrides = [f"--config.num_train_steps={steps}", f"--config.quality.classifier_workdir={classifier}",
               f"--config.quality.num_samples={FLAGS.num_samples}", f"--config.quality.every_steps={steps}",
               f"--config.eval_every_steps={steps}"]
  if steps <= config.prior_start_step:
    overrides.append(f"--config.prior_start_step={steps // 10}")
  for key in ("tokenizer", "prior"):
    if steps <= getattr(config, key).optimizer.warmup_steps:
      overrides.append(f"--config.{key}.optimizer.warmup_steps={steps // 10}")
  if steps < config.checkpoint_every_steps:
    overrides.append(f"--config.checkpoint_every_steps={steps}")
  wall = gc.run_main(f"configs/{CONFIG}.py" + (f":{FLAGS.variant}" if FLAGS.variant else ""), workdir,
                     FLAGS.data_dir, overrides)
  final = gc.final_metrics(workdir)
  train_s = gc.train_seconds(workdir)
  prompts = prompt_figures(workdir, classifier)
  grid_png = os.path.join(out, f"{run}_prompts.png")
  save_png(grid_png, prompts.pop("grid"))
  figures = {"config": CONFIG, "variant": FLAGS.variant, "dataset": dataset, "steps": steps,
             "batch_size": config.batch_size, **prompts,
             "class_accuracy": final.get("eval/class_accuracy"),
             "frechet_distance": final.get("eval/frechet_distance"),
             "frechet_distance_floor": final.get("eval/frechet_distance_floor"),
             "num_samples": FLAGS.num_samples,
             "eval_prior_loss": final.get("eval/prior/loss"),
             "eval_tokenizer_mse": final.get("eval/tokenizer/mse"),
             "eval_tokenizer_perplexity": final.get("eval/tokenizer/perplexity"),
             "wall_s": wall, "train_s": train_s,
             "train_images_per_sec": steps * config.batch_size / train_s if train_s else None,
             "per_prompt": FLAGS.per_prompt, "grid_png": grid_png, "workdir": workdir}
  target = TARGET_PROMPT_ACCURACY.get(dataset)
  if target is not None:
    figures["prompt_accuracy_target"] = target
    figures["prompt_accuracy_pass"] = figures["mean_prompt_accuracy"] >= target

  fmt = lambda v, p=2: "n/a" if v is None else f"{v:.{p}f}"
  print(f"\ntext2image quality, {run}: {steps} steps" + (" (smoke run: --steps)" if FLAGS.steps else ""))
  for prompt, acc in figures["prompt_accuracy"].items():
    print(f"  {prompt:32s} {acc:.3f}")
  verdict = ""
  if target is not None:
    verdict = f" target >= {target:.2f} " + ("PASS" if figures["prompt_accuracy_pass"] else "FAIL")
    verdict += " (smoke: not the config's budget)" if FLAGS.steps else ""
  print(f"  mean prompt accuracy {figures['mean_prompt_accuracy']:.4f}{verdict}  class accuracy "
        f"{fmt(figures['class_accuracy'], 4)}")
  print(f"  FD {fmt(figures['frechet_distance'])} (floor {fmt(figures['frechet_distance_floor'])}, "
        f"{FLAGS.num_samples} samples, CNN features)  eval prior loss {fmt(figures['eval_prior_loss'], 3)} "
        f"nats/code  tokenizer mse {fmt(figures['eval_tokenizer_mse'], 4)} "
        f"perplexity {fmt(figures['eval_tokenizer_perplexity'], 1)}")
  print(f"  wall {wall:.0f} s  train {train_s:.0f} s  "
        f"{fmt(figures['train_images_per_sec'], 0)} train images/s  "
        f"{figures['sample_images_per_sec']:.0f} sampled images/s  grid {grid_png}")
  gc.write_json(os.path.join(out, "text2image_quality.json"), figures)
  return 0 if figures.get("prompt_accuracy_pass", True) or FLAGS.steps else 1


if __name__ == "__main__":
  app.run(main)
