"""Robust accuracy during training: FGSM, PGD and APGD-CE (jaxai.attacks) on the test split, or on its
first `max_examples` images, at every evaluation.

Summaries: eval/robust_accuracy_<attack> for each attack, eval/robust_accuracy_worst (an example counts
only if it survives every attack: the "best attack" figure), eval/robust_subset_accuracy (clean
accuracy on the same images) and eval/robust_examples. Each example's random starts come from
fold_in(key(seed), its index in the split), so a figure does not depend on batch size or device count.
"""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxai import attacks
from jaxai.core.evaluators import DatasetEvaluator
from jaxai.data import pipeline
from jaxai.errors import UserError


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      attacks=(),               # any of 'fgsm', 'pgd', 'apgd'; () = no robust evaluation.
      norm="linf",              # 'linf' or 'l2'.
      eps=0.3,                  # in pixel units (pixels in [0, 1]).
      pgd_steps=100, pgd_restarts=1, pgd_step_size=0.0,  # step size 0: 2.5 eps / steps.
      apgd_steps=100, apgd_restarts=1,
      max_examples=0,           # > 0: the first N images of the eval split (0: all of it).
      batch_size=0,             # global; 0: config.eval_batch_size.
      unroll=1,                 # the attack loops' unroll (see jaxai.attacks.pgd).
      seed=0,
      every_steps=0,            # 0: config.eval_every_steps.
  ))


def budget(cfg: ml_collections.ConfigDict, name: str) -> tuple[int, int]:
  """(steps, restarts) of the named attack (FGSM: one step)."""
  return {"pgd": (cfg.pgd_steps, cfg.pgd_restarts), "apgd": (cfg.apgd_steps, cfg.apgd_restarts)}.get(name, (1, 1))


def check(cfg: ml_collections.ConfigDict, image_shape) -> None:
  for name in cfg.attacks:
    steps, restarts = budget(cfg, name)
    try:
      attacks.check(name, cfg.eps, cfg.norm, steps, restarts, cfg.pgd_step_size, image_shape=image_shape)
    except UserError as e:
      raise UserError(f"config.robust_eval: {e}") from None


def make_evaluator(cfg, apply, variables_of, load_test, eval_batch_size: int) -> DatasetEvaluator:
  """`apply(variables, x) -> logits` on pixels in [0, 1]; `variables_of(state)`; `load_test()` the split."""
  base_key = jax.random.key(cfg.seed)

  def step(state, batch):
    variables = variables_of(state)
    x = batch["image"].astype(jnp.float32) / 255.0
    labels, mask = batch["label"], batch["mask"].astype(jnp.float32)
    rngs = jax.vmap(jax.random.fold_in, (None, 0))(base_key, batch["index"])
    correct = lambda x_: (jnp.argmax(apply(variables, x_), -1) == labels).astype(jnp.float32)
    clean = correct(x)
    sums, survived = {"robust_subset_accuracy": jnp.sum(clean * mask)}, clean
    for name in cfg.attacks:
      steps, restarts = budget(cfg, name)
      x_adv = attacks.run(name, apply, variables, x, labels, rngs, eps=cfg.eps, norm=cfg.norm, steps=steps,
                          restarts=restarts, step_size=cfg.pgd_step_size, unroll=cfg.unroll)
      hit = correct(jax.lax.stop_gradient(x_adv))
      sums[f"robust_accuracy_{name}"] = jnp.sum(hit * mask)
      survived = survived * hit
    sums["robust_accuracy_worst"] = jnp.sum(survived * mask)
    sums["count"] = jnp.sum(mask)
    return sums

  def batches():
    test = dict(load_test())
    n = len(test["label"]) if not cfg.max_examples else min(cfg.max_examples, len(test["label"]))
    test = {k: v[:n] for k, v in test.items()} | {"index": np.arange(n)}
    return pipeline.padded_batches(test, cfg.batch_size or eval_batch_size)

  return DatasetEvaluator(step, batches, every_steps=cfg.every_steps, count_key="robust_examples")
