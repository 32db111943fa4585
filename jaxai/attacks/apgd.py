"""APGD-CE (Croce & Hein 2020, the step-size-free first attack of AutoAttack), inside jit with lax loops.

Gradient ascent on the cross-entropy with momentum 0.75, starting from step size 2 eps; at checkpoints
w_j = ceil(p_j N) (p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)) an example's
step size is halved, and it restarts from its best point, when either
  1. the loss rose at fewer than rho = 0.75 of the steps since the last checkpoint, or
  2. its step size was not halved at the last checkpoint and its best loss has not risen since.
Returns, per example, a misclassified iterate if one was found, else the one of highest loss. The same
interface as jaxai.attacks.pgd.pgd; restart r draws its start from fold_in(key, r).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxai.attacks import balls
from jaxai.attacks.pgd import cross_entropy, keep_worse, loss_and_grad, worst_score


def checkpoints(steps: int) -> list[int]:
  """The iterations (0 < w < steps) at which step sizes are reconsidered."""
  p = [0.0, 0.22]
  while p[-1] < 1.0:
    p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
  return sorted({math.ceil(q * steps) for q in p[1:] if 0 < math.ceil(q * steps) < steps})


def _expand(v):  # (B,) -> (B, 1, 1, 1)
  return v[:, None, None, None]


def apgd(apply, variables, x, labels, rngs, *, eps: float, steps: int = 100, norm: str = "linf",
         restarts: int = 1, lo: float = 0.0, hi: float = 1.0, rho: float = 0.75, momentum: float = 0.75,
         unroll: int | bool = 1):
  fn = loss_and_grad(apply, variables, cross_entropy, labels)
  marks = checkpoints(steps)
  is_checkpoint = np.zeros(steps + 1, bool)
  is_checkpoint[marks] = True
  since = np.zeros(steps + 1, np.float32)  # iterations since the previous checkpoint, at each checkpoint.
  for prev, w in zip([0] + marks, marks):
    since[w] = w - prev
  is_checkpoint, since = jnp.asarray(is_checkpoint), jnp.asarray(since)
  batch = x.shape[0]
  proj = lambda v: balls.project(v, x, eps, norm, lo, hi)

  def restart(r, found):
    keys = jax.vmap(jax.random.fold_in, (0, None))(rngs, r)
    start = balls.random_start(keys, x, eps, norm, lo, hi)
    zeros = jnp.zeros((batch,), jnp.float32)
    init = dict(x=start, x_prev=start, loss_prev=zeros, eta=jnp.full((batch,), 2.0 * eps, jnp.float32),
                best_x=start, best_loss=jnp.full((batch,), -jnp.inf), best_grad=jnp.zeros_like(x),
                rises=zeros, halved_last=jnp.zeros((batch,), bool), best_at_check=jnp.full((batch,), -jnp.inf),
                found=found)

    def step(k, s):
      loss, grad, logits = fn(s["x"])
      found = keep_worse(s["found"], (s["x"], worst_score(loss, logits, labels)))
      rises = s["rises"] + jnp.where(k > 0, (loss > s["loss_prev"]).astype(jnp.float32), 0.0)
      better = loss > s["best_loss"]
      best_x = jnp.where(_expand(better), s["x"], s["best_x"])
      best_grad = jnp.where(_expand(better), grad, s["best_grad"])
      best_loss = jnp.where(better, loss, s["best_loss"])
      # At a checkpoint: halve the step and go back to the best point where progress stalled.
      at = is_checkpoint[k]
      stalled = (rises < rho * since[k]) | (~s["halved_last"] & (best_loss <= s["best_at_check"]))
      halve = at & stalled
      eta = jnp.where(halve, s["eta"] / 2.0, s["eta"])
      x_k = jnp.where(_expand(halve), best_x, s["x"])
      grad = jnp.where(_expand(halve), best_grad, grad)
      x_prev = jnp.where(_expand(halve), best_x, s["x_prev"])
      z = proj(x_k + _expand(eta) * balls.direction(grad, norm))
      a = jnp.where(k > 0, momentum, 1.0)  # the first step has no momentum.
      x_next = proj(x_k + a * (z - x_k) + (1.0 - a) * (x_k - x_prev))
      return dict(x=x_next, x_prev=x_k, loss_prev=jnp.where(halve, best_loss, loss), eta=eta, best_x=best_x, best_loss=best_loss,
                  best_grad=best_grad, rises=jnp.where(at, 0.0, rises),
                  halved_last=jnp.where(at, halve, s["halved_last"]),
                  best_at_check=jnp.where(at, best_loss, s["best_at_check"]), found=found)

    s = jax.lax.fori_loop(0, steps, step, init)
    logits = apply(variables, s["x"])
    found = keep_worse(s["found"], (s["x"], worst_score(cross_entropy(logits, labels), logits, labels)))
    return found  # per example: a misclassified point, else the highest-loss one of all restarts so far.

  init = (x, jnp.full((batch,), -jnp.inf))
  best_x, _ = jax.lax.fori_loop(0, restarts, restart, init)
  return best_x
