"""Small numerical helpers: Gamma credible intervals in bulk, the ELBO pieces."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaincinv, gammaln

__all__ = ["gamma_interval", "gamma_kl_terms", "gaussian_kl_terms"]

FloatArray = npt.NDArray[np.float64]


def gamma_interval(shape: FloatArray, rate: FloatArray, level: float) -> tuple[FloatArray, FloatArray]:
    """Equal-tailed ``level`` credible interval of ``Gamma(shape, rate)``, elementwise.

    The inverse incomplete gamma function is slow (about 0.4 us per call), but in a VB fit the shape
    ``a0 + n_u / 2`` takes one value per distinct rating count, so it is evaluated once per distinct
    shape and scaled by ``1 / rate``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"credible_level must lie in (0, 1), got {level}")
    tail = 0.5 * (1.0 - level)
    if shape.size == 0:
        return np.empty(0), np.empty(0)
    uniq, inverse = np.unique(shape, return_inverse=True)
    lo = gammaincinv(uniq, tail)[inverse] / rate
    hi = gammaincinv(uniq, 1.0 - tail)[inverse] / rate
    return lo, hi


def gamma_kl_terms(shape: FloatArray, rate: FloatArray, a0: float, b0: float) -> float:
    """``sum_u E_q[log p(alpha_u)] - E_q[log q(alpha_u)]`` for ``q = Gamma(shape, rate)``, prior ``Gamma(a0, b0)``."""
    elog = digamma(shape) - np.log(rate)
    mean = shape / rate
    prior = a0 * np.log(b0) - gammaln(a0) + (a0 - 1.0) * elog - b0 * mean
    entropy = shape - np.log(rate) + gammaln(shape) + (1.0 - shape) * digamma(shape)
    return float(np.sum(prior + entropy))


def gaussian_kl_terms(mean: FloatArray, var: FloatArray, mu: float, tau: float) -> float:
    """``sum E_q[log N(x; mu, 1/tau)] - E_q[log q(x)]`` for ``q = N(mean, var)``."""
    return float(np.sum(0.5 * np.log(tau) - 0.5 * tau * ((mean - mu) ** 2 + var) + 0.5 + 0.5 * np.log(var)))
