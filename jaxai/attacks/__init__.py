"""Adversarial attacks as pure JAX functions over a batch (jit, lax loops): FGSM, PGD (L-inf / L2,
random start, restarts keeping each example's worst case) and APGD-CE. A library: it knows classifiers
only as `apply(variables, x) -> logits` on float pixels in [lo, hi], and never imports a task.

  x_adv = attacks.run("pgd", apply, variables, x, labels, rngs, eps=0.3, steps=100, restarts=10)
"""
from jaxai.attacks.apgd import apgd
from jaxai.attacks.balls import NORMS
from jaxai.attacks.pgd import fgsm, pgd
from jaxai.attacks import balls
from jaxai.errors import UserError

ATTACKS = ("fgsm", "pgd", "apgd")


def check(name: str, eps: float, norm: str = "linf", steps: int = 1, restarts: int = 1,
          step_size: float = 0.0, lo: float = 0.0, hi: float = 1.0, image_shape=None) -> None:
  """A UserError for an attack that cannot run as asked; call it before compiling anything."""
  if name not in ATTACKS:
    raise UserError(f"attack={name!r} is unknown; available attacks: {', '.join(ATTACKS)}.")
  balls.check(eps, norm, lo, hi, image_shape)
  if name != "fgsm" and (steps < 1 or restarts < 1):
    raise UserError(f"{name}: steps={steps} and restarts={restarts} must both be >= 1.")
  if step_size < 0:
    raise UserError(f"step_size={step_size} must be >= 0 (0: 2.5 eps / steps).")


def run(name: str, apply, variables, x, labels, rngs, *, eps: float, norm: str = "linf", steps: int = 10,
        restarts: int = 1, step_size: float = 0.0, lo: float = 0.0, hi: float = 1.0, unroll: int | bool = 1):
  """x_adv of the named attack (FGSM takes no steps, restarts or rngs; `unroll`: see pgd)."""
  if name == "fgsm":
    return fgsm(apply, variables, x, labels, eps=eps, norm=norm, lo=lo, hi=hi)
  if name == "pgd":
    return pgd(apply, variables, x, labels, rngs, eps=eps, steps=steps, step_size=step_size, norm=norm,
               restarts=restarts, lo=lo, hi=hi, unroll=unroll)
  if name == "apgd":
    return apgd(apply, variables, x, labels, rngs, eps=eps, steps=steps, norm=norm, restarts=restarts,
                lo=lo, hi=hi, unroll=unroll)
  raise UserError(f"attack={name!r} is unknown; available attacks: {', '.join(ATTACKS)}.")


__all__ = ["ATTACKS", "NORMS", "apgd", "balls", "check", "fgsm", "pgd", "run"]
