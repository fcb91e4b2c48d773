"""The four review-weight factors of seed 003 (QRP-0001) and the QRP-0002 summary statistics.

For an observer ``o`` looking at a review ``r`` by reviewer ``u`` in topic ``τ``, the weight is

.. math::

    w(r) = T(o, u, τ) \\cdot H(o, u, τ) \\cdot A(u, τ) \\cdot R(r) \\cdot F(o, r)

where

* :math:`T` is the best-path trust of :mod:`truescore.trust.graph`, with topic inheritance;
* :math:`H = \\max(h_{min}, \\frac{S_+}{S_+ + S_-})` with :math:`S_\\pm` the sums, over HELPFUL (+) and
  UNHELPFUL (-) votes on ``u``'s reviews in ``τ``, of the observer's trust in each voter (paths of at
  most ``max_depth_h`` edges); :math:`H = h_0` (neutral, 0.5) when :math:`S_+ + S_- = 0`;
* :math:`A = \\min(1, \\ln(n + 1) / \\ln(s))` with ``n`` the reviewer's reviews in ``τ`` over the activity
  window (24 months) and ``s`` the saturation (50): 1 review gives 0.18, 10 give 0.61, 49 give 1;
* :math:`R = \\max(r_{min}, e^{-a / h_τ})` with ``a`` the review's age in days and :math:`h_τ` the
  topic's "half-life" (seed 003 names the e-folding time so; 730 days by default);
* :math:`F = \\prod_f \\max(0, 1 - p\\, s_f)` over FLAGs with severity :math:`s_f` by moderators the
  observer trusts enough (1 when there are none; a protocol extension, see ``docs/trust.md``).

The rating is :math:`\\bar z = \\sum w z / \\sum w` over contributing reviews with normalised ratings
``z``; the QRP-0002 statistics are

.. math::

    \\text{confidence\\_pct} = 100 \\sqrt{\\min(1, W / W_{full}) \\, \\min(1, n / n_{full})}, \\qquad
    \\text{polarization} = \\min\\Big(1, \\frac{\\sigma_w}{1/2}\\Big),

with :math:`W = \\sum w`, ``n`` contributors and :math:`\\sigma_w` the weighted standard deviation of
``z`` (on the normalised scale half the range is 1/2, so this is seed 003's sd / (max / 2)).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "activity",
    "aggregate",
    "confidence_pct",
    "confidence_range",
    "contributing",
    "flag_factor",
    "helpfulness",
    "kish_effective_n",
    "polarization",
    "recency",
    "weighted_mean_sd",
]

FloatArray = npt.NDArray[np.float64]
SECONDS_PER_DAY = 86400.0


def activity(n_reviews: npt.ArrayLike, saturation: float) -> FloatArray:
    """A factor: ``min(1, ln(n + 1) / ln(saturation))`` (0 for ``n = 0``).

    The ``n + 1`` form is what gives seed 003's "1 review gives about 0.18" (``ln 2 / ln 50``).

    Raises
    ------
    ValueError
        If ``saturation <= 1`` or a count is negative.
    """
    if saturation <= 1:
        raise ValueError(f"activity_saturation must be > 1, got {saturation}")
    n = np.asarray(n_reviews, dtype=np.float64)
    if n.size and n.min() < 0:
        raise ValueError("n_reviews must be >= 0")
    return np.minimum(1.0, np.log1p(n) / math.log(saturation))


def recency(age_days: npt.ArrayLike, half_life_days: float, floor: float) -> FloatArray:
    """R factor: ``max(floor, exp(-age / half_life))``; a review dated in the future has age 0."""
    if half_life_days <= 0:
        raise ValueError(f"half_life_days must be > 0, got {half_life_days}")
    age = np.maximum(np.asarray(age_days, dtype=np.float64), 0.0)
    return np.maximum(floor, np.exp(-age / half_life_days))


def helpfulness(
    helpful_weight: npt.ArrayLike, unhelpful_weight: npt.ArrayLike, neutral: float, floor: float
) -> FloatArray:
    """H factor: ``max(floor, S+ / (S+ + S-))`` where there is trusted signal, ``neutral`` otherwise."""
    hp = np.asarray(helpful_weight, dtype=np.float64)
    un = np.asarray(unhelpful_weight, dtype=np.float64)
    total = hp + un
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(total > 0, hp / np.where(total > 0, total, 1.0), neutral)
    return np.where(total > 0, np.maximum(floor, ratio), neutral)


def flag_factor(severities: npt.ArrayLike, penalty_per_severity: float) -> float:
    """F factor of one review: ``prod_f max(0, 1 - p * s_f)`` over its counted flags (1 if none)."""
    s = np.asarray(severities, dtype=np.float64)
    if s.size == 0:
        return 1.0
    return float(np.prod(np.maximum(0.0, 1.0 - penalty_per_severity * s)))


def weighted_mean_sd(values: npt.ArrayLike, weights: npt.ArrayLike) -> tuple[float, float]:
    """Weighted mean and (population) weighted standard deviation; ``(nan, nan)`` if no weight."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if total <= 0:
        return math.nan, math.nan
    mean = float((w * v).sum() / total)
    var = float((w * (v - mean) ** 2).sum() / total)
    return mean, math.sqrt(max(0.0, var))


def kish_effective_n(weights: npt.ArrayLike) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0 if no weight)."""
    w = np.asarray(weights, dtype=np.float64)
    sq = float((w * w).sum())
    return float(w.sum()) ** 2 / sq if sq > 0 else 0.0


def confidence_range(weighted_sd: float, weights: npt.ArrayLike, half_range: float = 0.5) -> float:
    """Half-width of the "± x" shown next to a rating, on the normalised scale.

    The standard error of a weighted mean with Kish effective size :math:`n_e`, using the unbiased
    weighted variance :math:`\\sigma_w^2 n_e / (n_e - 1)`:

    .. math::

        \\pm = \\min\\Big(\\tfrac12,\\ \\sigma_w / \\sqrt{n_e - 1}\\Big),

    and the cap (half the scale: nothing is known) when :math:`n_e \\le 1`, i.e. a single contributor
    says nothing about spread. Seed 003's reference divides by :math:`\\sqrt{2W}`, which depends on the
    scale of the weights rather than on how many independent opinions there are.
    """
    n_eff = kish_effective_n(weights)
    if n_eff <= 1.0 + 1e-9 or not math.isfinite(weighted_sd):
        return half_range
    return min(half_range, weighted_sd / math.sqrt(n_eff - 1.0))


def confidence_pct(total_weight: float, contributors: int, full_weight: float, full_contributors: int) -> float:
    """QRP-0002 confidence in [0, 100]: geometric mean of the weight and count saturations."""
    if total_weight <= 0 or contributors <= 0:
        return 0.0
    return 100.0 * math.sqrt(min(1.0, total_weight / full_weight) * min(1.0, contributors / full_contributors))


def polarization(weighted_sd_normalised: float) -> float:
    """QRP-0002 polarization: weighted sd over half the scale (1/2 normalised), capped at 1."""
    if not math.isfinite(weighted_sd_normalised):
        return 0.0
    return min(1.0, weighted_sd_normalised / 0.5)


def contributing(T: npt.ArrayLike, weight: npt.ArrayLike, min_weight: float) -> npt.NDArray[np.bool_]:
    """Which reviews contribute: some trust (``T > 0``) and ``w >= min_weight`` (and ``w > 0``)."""
    t = np.asarray(T, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    return (t > 0) & (w > 0) & (w >= min_weight)


def aggregate(
    ratings: npt.ArrayLike,
    T: npt.ArrayLike,
    H: npt.ArrayLike,
    A: npt.ArrayLike,
    R: npt.ArrayLike,
    min_weight: float = 0.01,
) -> tuple[float | None, float, int, float | None]:
    """Seed 003's rating from a factor table: ``(rating, total_weight, contributors, unweighted_mean)``.

    ``rating = sum(w * r) / sum(w)`` over contributing reviews with ``w = T * H * A * R``; None when none
    contributes. The ratings must share one scale (normalise first otherwise).
    """
    r = np.asarray(ratings, dtype=np.float64)
    w = np.asarray(T, dtype=np.float64) * np.asarray(H) * np.asarray(A) * np.asarray(R)
    mask = contributing(T, w, min_weight)
    total = float(w[mask].sum())
    rating = float((w[mask] * r[mask]).sum() / total) if mask.any() else None
    return rating, total, int(mask.sum()), float(r.mean()) if r.size else None
