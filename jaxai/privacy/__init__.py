"""Differential privacy shared by every domain: the settings, the accountant and the noise.

  accounting   epsilon of Poisson-subsampled Gaussian mechanisms (dp-accounting: RDP or PLD), the
               `dp.max_epsilon` refusal before anything compiles, and the `dp/epsilon` evaluator.
  dpsgd        per-example clipped gradient sums (jax-privacy) and the Gaussian noise added to them.
"""
from jaxai.privacy.accounting import (check_settings, classic_rdp_epsilon, default_config, epsilon,
                                      epsilon_evaluator, refuse_over_budget)

__all__ = ["check_settings", "classic_rdp_epsilon", "default_config", "epsilon", "epsilon_evaluator",
           "refuse_over_budget"]
