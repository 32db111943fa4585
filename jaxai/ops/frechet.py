"""The Frechet distance between two Gaussians fitted to feature sets (FID when the features are an
Inception network's; here the project's own MNIST / Fashion-MNIST classifier's penultimate layer).

  d^2 = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))

The matrix square root is scipy.linalg.sqrtm (float64, on the host); a tiny imaginary part from
rounding is dropped, a large one is an error. A singular product (features that never vary) is
regularized with eps on both diagonals.
"""
import warnings

import numpy as np
import scipy.linalg


def statistics(features) -> tuple[np.ndarray, np.ndarray]:
  """(N, D) features -> mean (D,) and covariance (D, D), float64 (N - 1 in the denominator)."""
  x = np.asarray(features, np.float64)
  if x.ndim != 2 or len(x) < 2:
    raise ValueError(f"Frechet statistics need (N >= 2, D) features, got shape {x.shape}.")
  return x.mean(0), np.cov(x, rowvar=False)


def distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  """The squared Frechet distance between N(mu1, sigma1) and N(mu2, sigma2) (>= 0)."""
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f"Feature statistics differ in shape: {mu1.shape} {sigma1.shape} vs {mu2.shape} {sigma2.shape}.")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
  if caught or not np.isfinite(covmean).all():
    # A singular product (features that never vary, e.g. dead ReLUs): regularize both, as the
    # reference FID implementation does.
    offset = np.eye(len(sigma1)) * eps
    covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"sqrtm of the covariance product has a large imaginary part "
                       f"({np.abs(covmean.imag).max():.3g}): too few samples for the feature size?")
    covmean = covmean.real
  diff = mu1 - mu2
  return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean), 0.0))


def distance_between(features1, features2) -> float:
  """The Frechet distance between two (N, D) feature sets."""
  return distance(*statistics(features1), *statistics(features2))
