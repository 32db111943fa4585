"""Distillation on MNIST against Hinton et al. (2015): a teacher, the 2x800 student trained from
scratch on the labels, and the same student distilled from the teacher (T = 20, alpha = 0.9), each
trained in-process by the shared trainer from configs/mnist_distill.py. The default teacher is the
small CNN (2,000 steps): at these budgets the paper's 2x1200 MLP teacher (--teacher=mlp) is barely
better than the student, so there is little to distil.

  python benchmarks/compress_distill.py                      # students 6,000 steps (~13 epochs)
  python benchmarks/compress_distill.py --teacher=mlp --teacher_steps=6000   # the paper's teacher
  python benchmarks/compress_distill.py --steps=500          # a smoke run
  python benchmarks/compress_distill.py --dataset=fashion    # the Fashion-MNIST variants
  python benchmarks/compress_distill.py --workdir=DIR --temperature=4 --alpha=0.5
      # another distilled student; the finished teacher and student runs in DIR are reused

Prints test errors of 10,000 test images for each model, Hinton et al.'s figures beside them
(teacher 67, student alone 146, distilled 74: their runs trained far longer, with dropout and weight
constraints on the teacher), and the wall time of each run (data loading, compilation, training and
the final evaluation). Budgets are modest for a shared CPU, so the absolute errors are above the
paper's; the comparison to read is distilled vs from scratch at the same budget. The machine's CPU
may be shared with other work: wall times are indicative only.
"""
import argparse
import importlib.util
import os
import tempfile
import time

from jaxai import tasks
from jaxai.core import trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA_DIR = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "tfds"))
HINTON_ERRORS = {"teacher": 67, "student": 146, "distilled": 74}  # MNIST, Hinton et al. 2015 section 3.


def get_config(variant: str):
  spec = importlib.util.spec_from_file_location("mnist_distill", os.path.join(REPO, "configs", "mnist_distill.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def train(variant: str, workdir: str, args, teacher_dir: str = "", steps: int = 0) -> dict:
  """Trains (or, for a finished run in `workdir`, only evaluates) one model."""
  config = get_config(variant)
  config.data_dir = args.data_dir
  config.num_train_steps = steps = steps or args.steps
  config.optimizer.warmup_steps = min(config.optimizer.warmup_steps, steps // 10)
  config.eval_every_steps = 0           # evaluate once, at the end, on the whole test split.
  config.checkpoint_every_steps = 0
  config.log_every_steps = max(steps // 10, 1)
  if teacher_dir:
    config.init_from.path = teacher_dir
    config.distill.temperature, config.distill.alpha = args.temperature, args.alpha
  start = time.perf_counter()
  _, results = trainer.train_and_evaluate(config, workdir, tasks.make_task(config))
  wall = time.perf_counter() - start
  errors = round((1.0 - results["eval/accuracy"]) * results["eval/examples"])
  return {"errors": errors, "examples": int(results["eval/examples"]), "wall": wall,
          "reused": results.get("already_finished", False)}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=6000, help="train steps (batch 128) of each run")
  parser.add_argument("--temperature", type=float, default=20.0, help="of the distilled student")
  parser.add_argument("--alpha", type=float, default=0.9, help="weight of the soft term")
  parser.add_argument("--teacher", choices=["mlp", "cnn"], default="",
                      help="the paper's 2x1200 MLP, or the small CNN (configs/mnist_distill.py:cnn_teacher); "
                      "default: cnn on mnist, mlp on fashion")
  parser.add_argument("--teacher_steps", type=int, default=2000, help="0 = --steps")
  parser.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist")
  parser.add_argument("--workdir", default="", help="root for the three workdirs (default: a new temp dir)")
  parser.add_argument("--data_dir", default=DEFAULT_DATA_DIR)
  args = parser.parse_args()
  root = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="jaxai_distill_"))
  prefix = "fashion_" if args.dataset == "fashion" else ""
  args.teacher = args.teacher or ("cnn" if args.dataset == "mnist" else "mlp")
  if args.teacher == "cnn":
    if args.dataset != "mnist":
      parser.error("--teacher=cnn is for --dataset=mnist")
    prefix = "cnn_"
  teacher = prefix + "teacher"
  rows = {}
  rows["teacher"] = train(teacher, os.path.join(root, teacher), args, steps=args.teacher_steps)
  student = prefix.replace("cnn_", "") + "student"
  rows["student"] = train(student, os.path.join(root, student), args)
  distilled = f"{prefix}distilled_T{args.temperature:g}_alpha{args.alpha:g}"
  rows["distilled"] = train(prefix.rstrip("_"), os.path.join(root, distilled), args,
                            teacher_dir=os.path.join(root, teacher))

  print(f"\n{args.dataset}: {args.steps} train steps of batch 128 each (teacher: "
        f"{args.teacher_steps or args.steps}); workdirs in {root}")
  print(f"{'model':<34} {'test errors':>12} {'Hinton 2015':>12} {'wall s':>8}")
  names = {"teacher": "teacher CNN 16-32, dropout, jitter" if args.teacher == "cnn" else
                      "teacher MLP 2x1200, dropout, jitter", "student": "student MLP 2x800 from scratch",
           "distilled": f"student 2x800 distilled T={args.temperature:g} a={args.alpha:g}"}
  for key, row in rows.items():
    anchor = HINTON_ERRORS[key] if args.dataset == "mnist" else "-"
    wall = "reused" if row["reused"] else f"{row['wall']:.0f}"
    print(f"{names[key]:<34} {row['errors']:>6} / {row['examples']:<5} {anchor:>12} {wall:>8}")
  print("(CPU shared with other work; wall times include data loading and compilation; 'reused': a "
        "finished run in the workdir, evaluated again.)")


if __name__ == "__main__":
  main()
