"""Robust accuracy of any classification run against an adversarial attack, at several radii:

  python -m jaxai.attack --workdir=<run> --attack=pgd --eps=0,0.1,0.2,0.3 --steps=100 --restarts=10
  python -m jaxai.attack --workdir=<run> --attack=apgd --norm=l2 --eps=0,0.5,1,1.5,2 --num_examples=1000

The run is rebuilt from `<workdir>/config.json` and `facts.json`, its latest checkpoint restored, and
the attack (jaxai.attacks: fgsm, pgd or apgd) run on the eval split of the run's config (or its first
--num_examples images) on one device. Example i draws its random starts from fold_in(key(seed), i), as
the in-training evaluator (jaxai.tasks.classification.robust) does, so the same seed gives the same
figures. eps is an argument of the compiled attack: one compilation serves every radius.

Prints accuracy against eps with the attack's throughput, per-class clean and robust accuracy and the
class that loses most, and writes to --out_dir (default <workdir>/attack):
  <attack>_<norm>.json            every figure;
  <attack>_<norm>_accuracy.png    accuracy vs eps, overall and per class;
  <attack>_<norm>_examples.png    adversarial examples at the largest eps beside their originals, with
                                  true and predicted classes and the perturbation, amplified.
Bad flags, a workdir that is not a classification run or has no checkpoint, and an eps no image can
take are errors before anything compiles.
"""
import dataclasses
import json
import math
import os
import sys
import time

from absl import app, logging

from jaxai.errors import UserError

TASK = "classification"


@dataclasses.dataclass(frozen=True)
class Settings:
  """What the attack does (the flags, checked)."""
  attack: str
  eps: tuple[float, ...]  # ascending, distinct.
  norm: str = "linf"
  steps: int = 100
  restarts: int = 1
  step_size: float = 0.0  # 0: 2.5 eps / steps (PGD).
  seed: int = 0
  unroll: int = 1

  @property
  def gradient_steps(self) -> int:
    """Gradient evaluations per example at one eps (the unit of the throughput)."""
    return 1 if self.attack == "fgsm" else self.steps * self.restarts

  def describe(self) -> str:
    if self.attack == "fgsm":
      return f"FGSM ({self.norm})"
    step = f"step {self.step_size:g}" if self.step_size else "step 2.5 eps / steps"
    step = "adaptive step" if self.attack == "apgd" else step
    return (f"{self.attack.upper()}-{self.steps} ({self.norm}, {self.restarts} restart"
            f"{'s' if self.restarts != 1 else ''}, {step}), seed {self.seed}")


def parse_eps(text: str) -> tuple[float, ...]:
  """'0,0.1,0.3' -> (0.0, 0.1, 0.3), sorted and without repeats."""
  try:
    values = [float(v) for v in text.split(",") if v.strip()]
  except ValueError:
    raise UserError(f"--eps={text!r} must be comma-separated numbers, e.g. --eps=0,0.1,0.2,0.3.") from None
  if not values or not all(math.isfinite(v) for v in values):
    raise UserError(f"--eps={text!r} must list at least one finite radius, e.g. --eps=0,0.1,0.2,0.3.")
  return tuple(sorted(set(values)))


def check_args(settings: Settings, num_examples: int, batch_size: int, num_shown: int,
               image_shape=None) -> None:
  """The checks of the flags alone; with `image_shape` (the run's) also eps against the pixel range."""
  from jaxai import attacks
  for eps in settings.eps:
    attacks.check(settings.attack, eps, settings.norm, settings.steps, settings.restarts, settings.step_size,
                  image_shape=image_shape)
  if settings.step_size and settings.attack != "pgd":
    raise UserError(f"--step_size applies to pgd only: {settings.attack} sets its own steps "
                    "(fgsm one step of eps, apgd an adaptive step size). Leave it at 0.")
  if num_examples < 0 or batch_size < 0 or num_shown < 0:
    raise UserError(f"--num_examples={num_examples}, --batch_size={batch_size} and --num_shown={num_shown} "
                    "must be >= 0 (0: the whole eval split, the run's eval batch size, no examples drawn).")
  if settings.unroll < 1:
    raise UserError(f"--unroll={settings.unroll} must be >= 1 (1: no unrolling of the attack's loop).")


def load_run(workdir: str, data_dir: str = ""):
  """(config, facts) of the classification run in `workdir`, with a checkpoint to restore; `data_dir`
  replaces the run's own. Reads no data and compiles nothing."""
  from jaxai.core import checkpoint, runs
  from jaxai.tasks import classification
  config = runs.load_config(workdir, TASK, classification.default_config())
  facts = runs.load_facts(workdir)
  if facts is None:
    raise UserError(f"{workdir} has no {runs.FACTS_FILE}; it was saved by an older version: train it again.")
  directory = os.path.join(workdir, checkpoint.CHECKPOINT_DIR)
  if not os.path.isdir(directory) or not any(p.isdigit() for p in os.listdir(directory)):
    raise UserError(f"The run in {workdir} has no checkpoint in {directory}: train it first "
                    f"(python -m jaxai.main --config=configs/mnist_cnn.py --workdir={workdir}).")
  if data_dir:
    config.data_dir = data_dir
  return config, facts


def restore_classifier(workdir: str, config, facts):
  """(apply(variables, x) -> logits on pixels in [0, 1], variables, checkpoint step)."""
  import numpy as np
  from jaxai.tasks.classification.task import pixel_classifier, restore_model
  model, variables, step = restore_model(workdir, config, facts)
  mean, std = (np.asarray(facts[k], np.float32) for k in ("mean", "std"))
  return pixel_classifier(model, mean, std), variables, step


def load_examples(config, facts, num_examples: int) -> dict:
  """{'image': uint8 (N, H, W, C), 'label': (N,), 'index': (N,) position in the split}."""
  import numpy as np
  from jaxai.data.labelled import load_examples as load_split  # config.classes too.
  try:
    data = load_split(config, config.eval_split, num_examples or config.max_eval_examples)
  except UserError as e:
    raise UserError(f"{e} (Here --data_dir=<dir> replaces the run's data_dir.)") from None
  if tuple(data["image"].shape[1:]) != tuple(facts["image_shape"]):
    raise UserError(f"The {config.dataset} images in {config.data_dir or 'the default data_dir'} are "
                    f"{data['image'].shape[1:]}, the run was trained on {tuple(facts['image_shape'])}: "
                    "point --data_dir at the run's dataset.")
  if num_examples and len(data["label"]) < num_examples:
    logging.warning("The %s split has %d examples, fewer than --num_examples=%d.", config.eval_split,
                    len(data["label"]), num_examples)
  return dict(data, index=np.arange(len(data["label"])))


def attack_all(apply, variables, data: dict, settings: Settings, batch_size: int, num_shown: int = 0) -> dict:
  """Every example attacked at every eps, in batches on this process's first device.

  Returns {'clean_pred': (N,), 'adv_pred': (E, N), 'max_perturbation': (E,), 'seconds': (E,),
  'compile_seconds', 'shown': up to num_shown examples at the largest eps (x, x_adv, label, clean, adv
  predictions), misclassified ones first}. Batches are padded to `batch_size` (padding repeats example 0
  and is dropped), so one compiled program serves every batch and every eps.
  """
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jaxai import attacks
  from jaxai.attacks import balls
  from jaxai.core import sharding
  from jaxai.data import pipeline

  base_key = jax.random.key(settings.seed)

  def attack_batch(variables, images, labels, index, eps, step_size):
    """uint8 (B, H, W, C), (B,), (B,), eps and step size () f32 -> predictions (B,), x_adv, sizes (B,)."""
    x = images.astype(jnp.float32) / 255.0
    rngs = jax.vmap(jax.random.fold_in, (None, 0))(base_key, index)  # (B,) keys, as the evaluator's.
    x_adv = attacks.run(settings.attack, apply, variables, x, labels, rngs, eps=eps, norm=settings.norm,
                        steps=settings.steps, restarts=settings.restarts, step_size=step_size,
                        unroll=settings.unroll)
    x_adv = jax.lax.stop_gradient(x_adv)
    return jnp.argmax(apply(variables, x_adv), -1), x_adv, balls.distance(x_adv, x, settings.norm)

  def predict(variables, images):
    return jnp.argmax(apply(variables, images.astype(jnp.float32) / 255.0), -1)

  device = jax.local_devices()[0]
  variables = jax.device_put(sharding.local_copy(variables), device)
  batches = list(pipeline.padded_batches(data, batch_size, 0, 1))  # host arrays, the last one padded.
  first = jax.device_put(batches[0], device)
  start = time.perf_counter()
  scalar = jnp.zeros((), jnp.float32)
  run_attack = jax.jit(attack_batch).lower(variables, first["image"], first["label"], first["index"],
                                           scalar, scalar).compile()
  run_predict = jax.jit(predict).lower(variables, first["image"]).compile()
  compile_seconds = time.perf_counter() - start

  n = len(data["label"])
  clean = np.concatenate([np.asarray(run_predict(variables, jax.device_put(b["image"], device)))[b["mask"]]
                          for b in batches])
  adv_pred = np.zeros((len(settings.eps), n), np.int64)
  max_perturbation, seconds = np.zeros(len(settings.eps)), np.zeros(len(settings.eps))
  shown_hit, shown_kept = [], []  # at the largest eps: (x, x_adv, label, clean, adv) misclassified / not.
  for e, eps in enumerate(settings.eps):
    if eps == 0:  # the attack cannot move any pixel: the clean predictions.
      adv_pred[e] = clean
      continue
    step_size = settings.step_size or 2.5 * eps / max(settings.steps, 1)
    eps_f32, step_f32 = np.float32(eps), np.float32(step_size)
    start = time.perf_counter()
    offset = 0
    for b in batches:
      on_device = jax.device_put(b, device)
      pred, x_adv, size = run_attack(variables, on_device["image"], on_device["label"], on_device["index"],
                                     eps_f32, step_f32)
      mask = b["mask"]
      pred, size = np.asarray(pred)[mask], np.asarray(size)[mask]
      rows = slice(offset, offset + len(pred))
      adv_pred[e, rows] = pred
      max_perturbation[e] = max(max_perturbation[e], float(size.max(initial=0.0)))
      if e == len(settings.eps) - 1 and len(shown_hit) < num_shown:
        x_adv = np.asarray(x_adv)[mask]
        for i in np.flatnonzero(clean[rows] == b["label"][mask]):  # correct before the attack.
          item = (b["image"][mask][i] / 255.0, x_adv[i], int(b["label"][mask][i]), int(clean[rows][i]),
                  int(pred[i]))
          if pred[i] != item[2] or len(shown_kept) < num_shown:
            (shown_hit if pred[i] != item[2] else shown_kept).append(item)
      offset += len(pred)
    seconds[e] = time.perf_counter() - start
  shown = (shown_hit + shown_kept)[:num_shown]
  return dict(clean_pred=clean, adv_pred=adv_pred, max_perturbation=max_perturbation, seconds=seconds,
              compile_seconds=compile_seconds, shown=shown)


def summarize(labels, clean_pred, adv_pred, eps, class_names) -> dict:
  """Accuracy per eps, per class (clean and at each eps), and the class whose accuracy drops most
  between clean and the largest eps. labels, clean_pred (N,); adv_pred (E, N)."""
  import numpy as np
  labels = np.asarray(labels)
  correct = np.asarray(adv_pred) == labels[None]  # (E, N)
  clean = np.asarray(clean_pred) == labels
  per_class = []
  for c, name in enumerate(class_names):
    rows = labels == c
    if rows.any():
      per_class.append(dict(label=c, name=name, count=int(rows.sum()),
                            clean_accuracy=float(clean[rows].mean()),
                            accuracy=[float(v) for v in correct[:, rows].mean(1)]))
  for row in per_class:
    row["drop"] = row["clean_accuracy"] - row["accuracy"][-1]
  worst = max(per_class, key=lambda r: r["drop"])  # the first of equals.
  return dict(clean_accuracy=float(clean.mean()), accuracy=[float(v) for v in correct.mean(1)],
              num_correct=[int(v) for v in correct.sum(1)], per_class=per_class, most_affected=worst)


def report_text(summary: dict, settings: Settings, outcome: dict, n: int, header: str) -> tuple[str, list]:
  """(the tables the command prints, examples x steps per second at each eps: None at eps 0)."""
  lines = [header, "",
           f"{'eps':>8}  {'accuracy':>8}  {'correct':>11}  {'seconds':>8}  {'examples x steps / s':>20}"]
  throughput = []
  for e, eps in enumerate(settings.eps):
    seconds = outcome["seconds"][e]
    rate = n * settings.gradient_steps / seconds if eps > 0 and seconds > 0 else None
    throughput.append(rate)
    lines.append(f"{eps:8.4g}  {summary['accuracy'][e]:8.4f}  {summary['num_correct'][e]:>5d}/{n:<5d}  "
                 + (f"{seconds:8.2f}  {rate:20.1f}" if rate else f"{'-':>8}  {'-':>20}"))
  plural = "s" if settings.gradient_steps > 1 else ""
  lines.append(f"(compiled once for every eps in {outcome['compile_seconds']:.1f} s; examples x steps counts "
               f"{settings.gradient_steps} gradient evaluation{plural} per example and eps; eps 0 is not "
               "attacked.)")
  attacked = [(e, eps) for e, eps in enumerate(settings.eps) if eps > 0] or [(0, settings.eps[0])]
  width = max(len(r["name"]) for r in summary["per_class"]) + 2
  lines += ["", "Per class (accuracy clean, then under attack at each eps; drop = clean - largest eps):",
            f"  {'class':<{width}}{'n':>6}  {'clean':>7}"
            + "".join(f"  {f'eps {eps:g}':>9}" for _, eps in attacked) + f"  {'drop':>7}"]
  for r in summary["per_class"]:
    lines.append(f"  {r['name']:<{width}}{r['count']:>6d}  {r['clean_accuracy']:7.4f}"
                 + "".join(f"  {r['accuracy'][e]:9.4f}" for e, _ in attacked) + f"  {r['drop']:7.4f}")
  w = summary["most_affected"]
  lines.append(f"Most affected class: {w['name']} (label {w['label']}): accuracy {w['clean_accuracy']:.4f} "
               f"clean -> {w['accuracy'][-1]:.4f} at eps {settings.eps[-1]:g} (drop {w['drop']:.4f}).")
  return "\n".join(lines), throughput


def plot_accuracy(path: str, summary: dict, settings: Settings, title: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
  colors = plt.get_cmap("tab10" if len(summary["per_class"]) <= 10 else "tab20")
  for i, r in enumerate(summary["per_class"]):
    ax.plot(settings.eps, r["accuracy"], "-", lw=1, alpha=0.7, color=colors(i % colors.N), label=r["name"])
  ax.plot(settings.eps, summary["accuracy"], "o-", lw=2.5, color="black", label="all")
  ax.set_xlabel(f"eps ({settings.norm}, pixels in [0, 1])")
  ax.set_ylabel("accuracy")
  ax.set_ylim(-0.02, 1.02)
  ax.grid(alpha=0.3)
  ax.set_title(title, fontsize=9)
  ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def plot_examples(path: str, shown: list, class_names, eps: float, title: str) -> None:
  """Three rows: originals (true / predicted), adversarial examples (predicted, red when wrong), and
  the perturbations, each scaled to its own largest change (grey = none)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  columns = len(shown)
  fig, axes = plt.subplots(3, columns, figsize=(1.5 * columns + 0.6, 5.2), dpi=120, squeeze=False)
  for j, (x, x_adv, label, clean, adv) in enumerate(shown):
    delta = x_adv - x
    amplify = 0.5 / max(float(np.abs(delta).max()), 1e-12)
    images = (x, x_adv, np.clip(0.5 + amplify * delta, 0.0, 1.0))
    captions = (f"true {class_names[label]}\npred {class_names[clean]}", f"pred {class_names[adv]}",
                f"delta x{amplify:.3g}")
    for i, (image, caption) in enumerate(zip(images, captions)):
      ax = axes[i, j]
      ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0.0, vmax=1.0)
      ax.set_xticks([]), ax.set_yticks([])
      ax.set_title(caption, fontsize=7, color="red" if i == 1 and adv != label else "black")
  for i, name in enumerate(("original", f"eps {eps:g}", "perturbation")):
    axes[i, 0].set_ylabel(name, fontsize=8)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def run_attack(workdir: str, settings: Settings, num_examples: int = 0, batch_size: int = 0,
               out_dir: str = "", num_shown: int = 8, data_dir: str = "") -> dict:
  """Everything the command does; returns the JSON record (also written to out_dir)."""
  from jaxai.tasks.generative.common import class_names as names_of
  settings = dataclasses.replace(settings, eps=tuple(sorted(set(settings.eps))))
  check_args(settings, num_examples, batch_size, num_shown)
  config, facts = load_run(workdir, data_dir)
  check_args(settings, num_examples, batch_size, num_shown, image_shape=tuple(facts["image_shape"]))
  data = load_examples(config, facts, num_examples)
  apply, variables, step = restore_classifier(workdir, config, facts)
  batch_size = batch_size or config.eval_batch_size
  n = len(data["label"])
  logging.info("Attacking %d examples with %s at eps %s, step %d of %s", n, settings.describe(),
               settings.eps, step, workdir)
  outcome = attack_all(apply, variables, data, settings, min(batch_size, n), num_shown)
  class_names = names_of(config.dataset, facts["num_classes"])
  summary = summarize(data["label"], outcome["clean_pred"], outcome["adv_pred"], settings.eps, class_names)
  header = (f"{settings.describe()} on {n} {config.eval_split} examples of {config.dataset}, step {step} of "
            f"{workdir}")
  text, throughput = report_text(summary, settings, outcome, n, header)
  print(text)

  out_dir = out_dir or os.path.join(workdir, "attack")
  os.makedirs(out_dir, exist_ok=True)
  stem = os.path.join(out_dir, f"{settings.attack}_{settings.norm}")
  files = {"json": stem + ".json", "accuracy_plot": stem + "_accuracy.png"}
  title = f"{settings.describe()}\n{n} {config.eval_split} examples of {config.dataset}, step {step}"
  plot_accuracy(files["accuracy_plot"], summary, settings, title)
  if outcome["shown"] and settings.eps[-1] > 0:
    files["examples_plot"] = stem + "_examples.png"
    plot_examples(files["examples_plot"], outcome["shown"], class_names, settings.eps[-1], title)
  record = dict(
      workdir=os.path.abspath(workdir), step=step, dataset=config.dataset, split=config.eval_split,
      num_examples=n, **dataclasses.asdict(settings), gradient_steps_per_example=settings.gradient_steps,
      clean_accuracy=summary["clean_accuracy"],
      results=[dict(eps=eps, accuracy=summary["accuracy"][e], num_correct=summary["num_correct"][e],
                    max_perturbation=float(outcome["max_perturbation"][e]),
                    seconds=float(outcome["seconds"][e]), examples_steps_per_second=throughput[e])
               for e, eps in enumerate(settings.eps)],
      compile_seconds=outcome["compile_seconds"], per_class=summary["per_class"],
      most_affected_class=summary["most_affected"], files=files)
  with open(files["json"], "w") as f:
    json.dump(record, f, indent=2)
  print("Wrote " + ", ".join(files.values()))
  return record


def main(argv):
  from absl import flags
  from jaxai.core import logs
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}.")
  logs.quiet_libraries()
  f = flags.FLAGS
  try:
    settings = Settings(attack=f.attack, eps=parse_eps(f.eps), norm=f.norm, steps=f.steps,
                        restarts=f.restarts, step_size=f.step_size, seed=f.seed, unroll=f.unroll)
    run_attack(f.workdir, settings, f.num_examples, f.batch_size, f.out_dir, f.num_shown, f.data_dir)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def _define_flags():
  from absl import flags
  flags.DEFINE_string("workdir", None, "Directory of a classification training run (with a checkpoint).")
  flags.DEFINE_string("attack", "pgd", "fgsm, pgd or apgd (APGD-CE).")
  flags.DEFINE_string("eps", "0,0.1,0.2,0.3", "Comma-separated radii in pixel units (pixels in [0, 1]).")
  flags.DEFINE_string("norm", "linf", "Threat model: linf or l2.")
  flags.DEFINE_integer("steps", 100, "Attack iterations per restart (pgd, apgd).")
  flags.DEFINE_integer("restarts", 1, "Random restarts; each example keeps its worst case (pgd, apgd).")
  flags.DEFINE_float("step_size", 0.0, "PGD step in pixel units; 0 = 2.5 eps / steps.")
  flags.DEFINE_integer("num_examples", 0, "Attack the first N images of the eval split; 0 = the run's.")
  flags.DEFINE_integer("batch_size", 0, "Examples per attacked batch; 0 = the run's eval_batch_size.")
  flags.DEFINE_integer("seed", 0, "Seed of the random starts (example i uses fold_in(key(seed), i)).")
  flags.DEFINE_integer("unroll", 1, "Unroll of the attack's step loop (see jaxai.attacks.pgd).")
  flags.DEFINE_string("out_dir", "", "Where the JSON and PNGs go; '' = <workdir>/attack.")
  flags.DEFINE_integer("num_shown", 8, "Adversarial examples drawn beside their originals (0: none).")
  flags.DEFINE_string("data_dir", "", "TFDS data_dir replacing the run's config.data_dir; '' = the run's.")
  flags.mark_flag_as_required("workdir")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
