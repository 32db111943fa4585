"""Generate images from any generative run (GAN, VAE, text-to-image) into one PNG grid:

  python -m jaxai.generate --workdir=<run> --class=7 --num=64 --out=sevens.png
  python -m jaxai.generate --workdir=<run> --prompt="a handwritten seven" --num=64 --out=seven.png \
      [--temperature=1.0 --top_k=32]
  python -m jaxai.generate --workdir=<run> --num=64 --out=samples.png          # unconditional models

The run is rebuilt from `<workdir>/config.json` and `facts.json` without reading its data, its latest
checkpoint restored, and the model's `make_generator(config, facts)` (jaxai.tasks.generative) draws
the images on one device. The same seed gives the same images. An unknown class, a prompt with words
outside the vocabulary, or a condition the model does not take is an error before anything compiles.
"""
import importlib
import json
import os
import sys

from absl import app, logging

from jaxai.errors import UserError


def check_args(num: int, columns: int, out: str, class_: str, prompt: str) -> None:
  """The checks that need no run."""
  if num < 1 or columns < 0:
    raise UserError(f"--num={num} must be >= 1 and --columns={columns} >= 0.")
  if not out.lower().endswith(".png"):
    raise UserError(f"--out={out!r} must name a .png file.")
  if class_ and prompt:
    raise UserError("Give --class or --prompt, not both.")


def restore_generator(workdir: str, temperature: float = -1.0, top_k: int = -1):
  """(config, generator, task) of the generative run in `workdir`; a `temperature` or `top_k` >= 0
  replaces the run's own (config.sampling) for models that sample tokens."""
  from jaxai import tasks
  from jaxai.core import runs
  path = os.path.join(workdir, runs.CONFIG_FILE)
  if not os.path.exists(path):
    raise UserError(f"{path} does not exist: --workdir must be the directory of a training run "
                    "(python -m jaxai.main --config=configs/mnist_cgan.py --workdir=...).")
  with open(path) as f:
    task_name = json.load(f).get("task")
  module = importlib.import_module(tasks.TASKS[task_name]) if task_name in tasks.TASKS else None
  if module is None or not hasattr(module, "make_generator"):
    makers = sorted(n for n, m in tasks.TASKS.items() if hasattr(importlib.import_module(m), "make_generator"))
    raise UserError(f"The run in {workdir} is a {task_name!r} run, which does not generate images; "
                    f"use a run of one of {makers}.")
  config = runs.load_config(workdir, task_name)
  facts = runs.load_facts(workdir)
  if facts is None:
    raise UserError(f"{workdir} has no {runs.FACTS_FILE}; it was saved by an older version: train it again.")
  config.quality.classifier_workdir = ""  # the run's own quality scoring is not needed to generate.
  for key, value in (("temperature", temperature), ("top_k", top_k)):
    if value >= 0:
      if "sampling" not in config:
        raise UserError(f"--{key} applies to models that sample tokens (text-to-image); this is a "
                        f"{task_name!r} run.")
      config.sampling[key] = type(config.sampling[key])(value)
  task = module.make_task(config, facts)
  generator = module.make_generator(config, facts)
  return config, generator, task


def generate(workdir: str, num: int = 64, class_: str = "", prompt: str = "", seed: int = 0,
             temperature: float = -1.0, top_k: int = -1):
  """(num, H, W, C) float images in [0, 1], and the step of the checkpoint they come from."""
  import jax
  import numpy as np
  from jaxai.core import runs, sharding
  _, generator, task = restore_generator(workdir, temperature, top_k)
  text = prompt or class_
  if generator.conditioning == "class" and prompt:
    raise UserError(f"This model is conditioned on a class, not a prompt: use --class with one of "
                    f"{', '.join(generator.class_names)}.")
  if generator.conditioning == "prompt" and class_:
    raise UserError("This model takes a text prompt: use --prompt, e.g. --prompt='a handwritten seven'.")
  if generator.conditioning != "none" and not text:
    flag = "--class" if generator.conditioning == "class" else "--prompt"
    raise UserError(f"This model is conditional: give {flag} (one of {', '.join(generator.class_names)}).")
  row = np.asarray(generator.parse(text))
  condition = np.broadcast_to(row, (num,) + row.shape).copy()
  state, step = runs.restore_latest_state(workdir, task)
  logging.info("Generating %d images from step %d of %s", num, step, workdir)
  images = sharding.on_local_device(generator.sample)(state, jax.random.key(seed), condition)
  return np.asarray(jax.device_get(images)), step


def write_png(images, path: str, columns: int = 0) -> None:
  import math
  from PIL import Image as PILImage
  from jaxai.core.summaries import Image
  grid = Image(images, columns=columns or math.ceil(math.sqrt(len(images)))).grid()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  PILImage.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)


def main(argv):
  from absl import flags
  from jaxai.core import logs
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
  logs.quiet_libraries()
  f = flags.FLAGS
  try:
    check_args(f.num, f.columns, f.out, f["class"].value, f.prompt)
    images, step = generate(f.workdir, f.num, f["class"].value, f.prompt, f.seed, f.temperature, f.top_k)
    write_png(images, f.out, f.columns)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  print(f"Wrote {len(images)} images from step {step} of {f.workdir} to {f.out}")


def _define_flags():
  from absl import flags
  flags.DEFINE_string("workdir", None, "Directory of a GAN, VAE or text-to-image training run.")
  flags.DEFINE_string("class", "", "Class to generate (index or name, e.g. 7 or 'seven') for class-conditional models.")
  flags.DEFINE_string("prompt", "", "Text for text-to-image models, e.g. 'a handwritten seven'.")
  flags.DEFINE_integer("num", 64, "Images to generate, as one batch.")
  flags.DEFINE_integer("columns", 0, "Columns of the grid; 0 = about square.")
  flags.DEFINE_float("temperature", -1.0, "Text-to-image: softmax temperature of the image tokens; -1 = the run's.")
  flags.DEFINE_integer("top_k", -1, "Text-to-image: draw among the k most likely image tokens (0 = all); -1 = the run's.")
  flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives the same images.")
  flags.DEFINE_string("out", "samples.png", "PNG file to write.")
  flags.mark_flag_as_required("workdir")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
