"""Reliability-diagram data and expected calibration error for 0-1 scores.

For predictions :math:`p_i \\in [0, 1]` and outcomes :math:`y_i \\in \\{0, 1\\}`, split [0, 1] into ``bins``
equal-width bins :math:`B_k`; the reliability diagram plots the mean prediction
:math:`\\bar p_k = |B_k|^{-1} \\sum_{i \\in B_k} p_i` against the observed rate
:math:`\\bar y_k = |B_k|^{-1} \\sum_{i \\in B_k} y_i`, and the expected calibration error is

.. math::  \\mathrm{ECE} = \\sum_k \\frac{|B_k|}{n} \\, |\\bar p_k - \\bar y_k|.

A calibrated model has points on the diagonal and ECE near 0 (sampling noise alone gives about
:math:`\\sqrt{\\bar p (1 - \\bar p) / |B_k|}` per bin).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["expected_calibration_error", "reliability_table"]


def _check(p: npt.ArrayLike, y: npt.ArrayLike, bins: int) -> tuple[np.ndarray, np.ndarray]:
    pp = np.asarray(p, dtype=float)
    yy = np.asarray(y, dtype=float)
    if pp.shape != yy.shape or pp.ndim != 1 or len(pp) == 0:
        raise ValueError("predictions and outcomes must be non-empty 1-d arrays of the same length")
    if np.isnan(pp).any() or (pp < 0).any() or (pp > 1).any():
        raise ValueError("predictions must lie in [0, 1]")
    if not set(np.unique(yy).tolist()) <= {0.0, 1.0}:
        raise ValueError("outcomes must be 0/1")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    return pp, yy


def reliability_table(p: npt.ArrayLike, y: npt.ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Per-bin ``bin_lo, bin_hi, n, mean_predicted, observed_rate`` (NaN for empty bins)."""
    pp, yy = _check(p, y, bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(pp, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        m = idx == b
        rows.append({
            "bin_lo": float(edges[b]), "bin_hi": float(edges[b + 1]), "n": int(m.sum()),
            "mean_predicted": float(pp[m].mean()) if m.any() else np.nan,
            "observed_rate": float(yy[m].mean()) if m.any() else np.nan,
        })
    return pd.DataFrame(rows)


def expected_calibration_error(p: npt.ArrayLike, y: npt.ArrayLike, bins: int = 10) -> float:
    """ECE over ``bins`` equal-width bins (see the module docstring)."""
    t = reliability_table(p, y, bins)
    t = t[t["n"] > 0]
    return float((t["n"] * (t["mean_predicted"] - t["observed_rate"]).abs()).sum() / t["n"].sum())
