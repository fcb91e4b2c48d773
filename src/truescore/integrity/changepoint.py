"""Per-item change points on rater-calibrated residuals (BIRDNEST / HoloScope-style deviation).

A slow attack shifts an item's ratings for good from some time on, without any burst. Let item ``i``'s
ratings be in time order, ``r_j`` normalised, ``m_i`` the item mean and ``b_u`` the rater's calibration,
its shrunk mean offset from the items it rated, ``b_u = sum_j (r_j - m_i(j)) / (n_u + n0)`` (``n0 = 3``),
so that a harsh or lenient rater's usual offset is not taken for a change. The residual is
``e_j = r_j - m_i - b_u``. With ``S_k`` the cumulative sum of the first ``k`` of the item's ``n``
residuals, ``sigma`` their standard deviation, the CUSUM statistic of a level shift after ``k`` is

    Z_k = (S_k - (k/n) S_n) / (sigma sqrt(k (n - k) / n)),

the standardised difference between the means before and after ``k`` (the likelihood-ratio statistic
of one Gaussian mean shift). The change point is ``k* = argmax |Z_k|``; the item has a significant
change when ``|Z_k*| >= change_z`` (and ``n >= change_min_ratings``). Each rating after ``k*`` whose
residual points the way of the shift gets the evidence ``clip((|Z| - z0) / z0, 0, 1)``.

A change point alone is no proof: items do get better or worse (the genuine-change scenario). The
suspicion therefore multiplies this evidence with the author's behavioural score, so a change carried
by established, ordinary raters is not flagged while one carried by suspicious accounts is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from truescore.integrity._common import DEFAULTS, FloatArray, IntegrityInputs, group_cumsum

__all__ = ["ChangePoints", "change_points"]

_N0 = 3.0


@dataclass(slots=True)
class ChangePoints:
    """Per item: ``z`` (the largest |Z|, signed; 0 when untested) and ``at`` (time of the change, NaN);
    per rating: ``evidence`` in [0, 1]."""

    z: FloatArray
    at: FloatArray
    evidence: FloatArray


def change_points(inp: IntegrityInputs, *, z0: float = DEFAULTS.change_z,
                  min_ratings: int = DEFAULTS.change_min_ratings) -> ChangePoints:
    """Level-shift change point of every item (see the module docstring)."""
    n = inp.n_ratings
    z_item = np.zeros(inp.n_items)
    at = np.full(inp.n_items, np.nan)
    evidence = np.zeros(n)
    if n == 0:
        return ChangePoints(z_item, at, evidence)
    item, user = inp.item_idx, inp.user_idx
    cnt = np.bincount(item, minlength=inp.n_items).astype(np.float64)
    m = np.bincount(item, weights=inp.rating, minlength=inp.n_items) / np.maximum(cnt, 1.0)
    off = inp.rating - m[item]
    n_u = np.bincount(user, minlength=inp.n_users).astype(np.float64)
    b = np.bincount(user, weights=off, minlength=inp.n_users) / (n_u + _N0)
    e = off - b[user]
    order = np.lexsort((inp.created_at, item))
    it, es = item[order], e[order]
    starts = np.flatnonzero(np.r_[True, it[1:] != it[:-1]])
    lengths = np.diff(np.r_[starts, n])
    pos = np.arange(n) - np.repeat(starts, lengths) + 1.0           # k = 1..n within the item
    tot_n = np.repeat(lengths.astype(np.float64), lengths)
    s = group_cumsum(es, starts)
    s_n = np.repeat(s[starts + lengths - 1], lengths)
    mean_e = np.repeat(np.add.reduceat(es, starts) / lengths, lengths)
    var = np.repeat(np.add.reduceat((es - mean_e) ** 2, starts) / np.maximum(lengths - 1, 1), lengths)
    with np.errstate(invalid="ignore", divide="ignore"):
        zk = (s - pos / tot_n * s_n) / (np.sqrt(np.maximum(var, 1e-6)) * np.sqrt(pos * (tot_n - pos) / tot_n))
    zk = np.where((pos < tot_n) & (tot_n >= min_ratings), zk, 0.0)
    absz = np.abs(zk)
    best = np.maximum.reduceat(absz, starts)
    # position of the maximum within each item: the first index reaching it
    hit = absz == np.repeat(best, lengths)
    first_hit = np.full(starts.size, -1)
    idx = np.flatnonzero(hit)
    grp = np.searchsorted(starts, idx, side="right") - 1
    first_hit[grp[::-1]] = idx[::-1]
    items_sorted = it[starts]
    sig = (best >= z0) & (first_hit >= 0)
    z_signed = np.where(first_hit >= 0, zk[np.maximum(first_hit, 0)], 0.0)
    z_item[items_sorted] = np.where(sig, z_signed, 0.0)
    times_sorted = inp.created_at[order]
    at[items_sorted[sig]] = times_sorted[first_hit[sig]]
    # ratings after the change whose residual follows the shift (Z > 0: the early part is above, so the
    # later part is lower; the shift direction of the later part is -sign(Z))
    after = pos > np.repeat(np.where(first_hit >= 0, first_hit - starts + 1, np.inf), lengths)
    direction = -np.sign(np.repeat(z_signed, lengths))
    strength = np.repeat(np.where(sig, np.clip((best - z0) / z0, 0.0, 1.0), 0.0), lengths)
    ev_sorted = np.where(after & (np.sign(es) == direction) & (direction != 0), strength, 0.0)
    evidence[order] = ev_sorted
    return ChangePoints(z_item, at, evidence)
