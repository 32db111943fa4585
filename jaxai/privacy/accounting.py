"""The privacy accountant (dp-accounting, never hand-written) and the checks a private run needs
before it compiles.

A private run releases `steps` noisy sums, each over a Poisson sample where every unit (an
example for DP-SGD, a client for DP-FedAvg) is in with probability `sampling_prob`, clipped to
sensitivity C and noised with N(0, (noise_multiplier * C)^2): the Poisson-subsampled Gaussian
mechanism, composed `steps` times, under add-or-remove-one adjacency.
"""
import functools
import math

import dp_accounting
import ml_collections
import numpy as np

from jaxai.core.evaluators import HostEvaluator
from jaxai.errors import UserError

ACCOUNTANTS = ("rdp", "pld")


def default_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      enabled=False,
      noise_multiplier=1.0,   # sigma: the noise std is sigma * l2_clip_norm.
      l2_clip_norm=1.0,       # C: every example's (client's) contribution is clipped to this L2 norm.
      delta=1e-5,             # the run's delta; dp/epsilon is reported at it.
      max_epsilon=0.0,        # > 0: refuse to start if the planned run would spend more than this.
      accountant="rdp",       # 'rdp' (Renyi DP, Mironov 2017) or 'pld' (privacy loss distributions: tighter).
  ))


def check_settings(cfg: ml_collections.ConfigDict, sampling_prob: float, *, where: str = "config.dp") -> None:
  """A UserError naming the bad setting, before anything compiles."""
  if cfg.noise_multiplier <= 0:
    raise UserError(f"{where}.noise_multiplier={cfg.noise_multiplier} must be > 0: without noise "
                    f"nothing is private (use {where}.enabled=False for a non-private run).")
  if cfg.l2_clip_norm <= 0:
    raise UserError(f"{where}.l2_clip_norm={cfg.l2_clip_norm} must be > 0 (it bounds each contribution).")
  if not 0 < cfg.delta < 1:
    raise UserError(f"{where}.delta={cfg.delta} must be in (0, 1); usually below 1 / (number of examples).")
  if cfg.accountant not in ACCOUNTANTS:
    raise UserError(f"{where}.accountant={cfg.accountant!r} is unknown; use one of {ACCOUNTANTS}.")
  if not 0 < sampling_prob <= 1:
    raise UserError(f"The sampling rate {sampling_prob:g} must be in (0, 1]: lower the batch size (or "
                    "the client fraction).")
  if cfg.max_epsilon < 0:
    raise UserError(f"{where}.max_epsilon={cfg.max_epsilon} must be >= 0 (0 = no limit).")


@functools.lru_cache(maxsize=256)
def epsilon(noise_multiplier: float, sampling_prob: float, steps: int, delta: float,
            accountant: str = "rdp") -> float:
  """Epsilon at `delta` after `steps` Poisson-subsampled Gaussian releases (add-or-remove-one)."""
  if steps <= 0:
    return 0.0
  event = dp_accounting.SelfComposedDpEvent(
      dp_accounting.PoissonSampledDpEvent(sampling_prob, dp_accounting.GaussianDpEvent(noise_multiplier)),
      int(steps))
  if accountant == "pld":
    acc = dp_accounting.pld.PLDAccountant(dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE)
  else:
    acc = dp_accounting.rdp.RdpAccountant(neighboring_relation=dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE)
  return float(acc.compose(event).get_epsilon(delta))


OPACUS_RDP_ORDERS = tuple([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)))


def classic_rdp_epsilon(noise_multiplier: float, sampling_prob: float, steps: int, delta: float) -> float:
  """Epsilon by the classic RDP conversion eps = min_a RDP(a) + log(1/delta) / (a - 1) over Opacus'
  orders (dp-accounting's RDP curve): how Opacus and TF Privacy computed their published figures,
  for comparing with them. `epsilon` converts more tightly and reports less for the same run."""
  acc = dp_accounting.rdp.RdpAccountant(list(OPACUS_RDP_ORDERS))
  acc.compose(dp_accounting.PoissonSampledDpEvent(sampling_prob, dp_accounting.GaussianDpEvent(noise_multiplier)),
              int(steps))
  return float(np.min(acc.rdp + math.log(1 / delta) / (np.asarray(acc.orders) - 1)))


def refuse_over_budget(cfg: ml_collections.ConfigDict, sampling_prob: float, steps: int, *,
                       unit: str = "example", where: str = "config.dp") -> float:
  """The planned run's final epsilon; a UserError if it exceeds `max_epsilon`, saying what to change."""
  check_settings(cfg, sampling_prob, where=where)
  final = epsilon(cfg.noise_multiplier, sampling_prob, steps, cfg.delta, cfg.accountant)
  if cfg.max_epsilon and final > cfg.max_epsilon:
    # The largest step count that fits, by bisection on the (monotone) accountant.
    lo, hi = 0, steps
    while lo < hi:
      mid = (lo + hi + 1) // 2
      if epsilon(cfg.noise_multiplier, sampling_prob, mid, cfg.delta, cfg.accountant) <= cfg.max_epsilon:
        lo = mid
      else:
        hi = mid - 1
    raise UserError(
        f"This run would spend {unit}-level epsilon {final:.3f} at delta {cfg.delta:g} "
        f"(noise_multiplier {cfg.noise_multiplier}, sampling rate {sampling_prob:.4g}, {steps} steps; "
        f"{cfg.accountant.upper()} accountant), over {where}.max_epsilon={cfg.max_epsilon}. Raise "
        f"{where}.noise_multiplier, lower the batch size (the sampling rate), or train at most {lo} steps "
        f"(num_train_steps / num_epochs); or raise {where}.max_epsilon.")
  return final


def epsilon_evaluator(cfg: ml_collections.ConfigDict, sampling_prob: float, every_steps: int, *,
                      steps_per_release: int = 1) -> HostEvaluator:
  """Logs 'dp/epsilon' (at the run's delta) spent so far; a release is every `steps_per_release` train
  steps (a federated round that spans several train steps)."""
  def fn(_, step):
    releases = step // steps_per_release
    return {"dp/epsilon": epsilon(cfg.noise_multiplier, sampling_prob, releases, cfg.delta, cfg.accountant)}
  return HostEvaluator(fn, every_steps=every_steps, view=lambda state: ())


