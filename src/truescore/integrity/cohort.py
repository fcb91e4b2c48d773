"""Cohort concentration: an item's raters who were created together, compared with the platform.

Farms register accounts in batches and age them before use. Let ``f_u`` be account ``u``'s creation
time (its first rating when unknown) and ``k(u) = floor(f_u / B)`` its cohort (``B`` =
``cohort_bucket_days``). Only *aged* ratings count: rating ``j`` by ``u`` at ``t_j`` with
``t_j - f_u >= cohort_min_age_days`` (a new account reviewing now is the burst detector's business,
and on sites where most accounts write one review, first activity *is* the review date).

Over all aged ratings, the platform's cohort share is ``P(k) = N_k / N``. For item ``i`` with ``n_i``
aged ratings, ``c_ik`` of them by accounts of cohort ``k``, the expected count is ``n_i P(k)`` and

    lift_ik = c_ik / (n_i P(k)).

A rating belongs to a concentrated cohort when ``c_ik >= cohort_min_accounts`` and
``lift_ik >= cohort_min_lift``; its evidence is ``clip(log10(lift_ik) / 2, 0, 1)``. Honest raters of
an item join the platform at all times, so their cohorts follow ``P``; a batch of accounts used on one
item stands out however slowly it is used.

**Against an independent consensus** (as for rings, :mod:`~truescore.integrity.rings`): accounts that
joined together also rate together honestly (a platform's launch cohort, a community that arrived
together). A concentrated cohort is manipulation only when it rates the item differently from the
item's other raters: with the cohort's mean ``m`` and the other raters' consensus ``c`` (weighted by
``v_u = 1 - b_u``, weighted sd ``s`` floored at 0.1, effective number ``n_eff = (sum v)^2 / sum v^2``),

    z = |m - c| / (s / sqrt(n_eff)) >= consensus_z,

else the cohort's evidence is zero. An item rated only by the cohort cannot be contradicted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from truescore.integrity._common import DAY, DEFAULTS, FloatArray, IntArray, IntegrityInputs

__all__ = ["CohortScores", "cohort_concentration"]

_SD_FLOOR = 0.1


@dataclass(slots=True)
class CohortScores:
    """Per rating: the cohort lift (NaN when not aged) and the evidence in [0, 1]; the cohort index."""

    lift: FloatArray
    evidence: FloatArray
    cohort: IntArray
    bucket_days: float = 14.0


def cohort_concentration(inp: IntegrityInputs, *, bucket_days: float = DEFAULTS.cohort_bucket_days,
                         min_accounts: int = DEFAULTS.cohort_min_accounts, min_lift: float = DEFAULTS.cohort_min_lift,
                         min_age_days: float = DEFAULTS.cohort_min_age_days, consensus_z: float = 0.0,
                         account_weight: FloatArray | None = None) -> CohortScores:
    """Cohort lift and evidence of every rating (see the module docstring).

    ``consensus_z = 0`` switches the consensus test off; ``account_weight`` is ``v_u`` (default 1).
    """
    n = inp.n_ratings
    f = np.full(inp.n_users, np.inf)
    np.minimum.at(f, inp.user_idx, inp.created_at)
    if inp.user_created_at is not None:
        known = np.isfinite(inp.user_created_at)
        f = np.where(known, np.minimum(f, inp.user_created_at), f)
    fu = f[inp.user_idx]
    cohort = np.floor(fu / (bucket_days * DAY)).astype(np.int64)
    aged = (inp.created_at - fu) >= min_age_days * DAY
    lift = np.full(n, np.nan)
    evidence = np.zeros(n)
    if not aged.any():
        return CohortScores(lift, evidence, cohort, bucket_days)
    c0 = int(cohort[aged].min())
    k = cohort - c0
    nk = int(k[aged].max()) + 1
    platform = np.bincount(k[aged], minlength=nk).astype(np.float64)
    share = platform / platform.sum()
    n_i = np.bincount(inp.item_idx[aged], minlength=inp.n_items).astype(np.float64)
    key = inp.item_idx[aged] * nk + k[aged]
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    c = counts[inv].astype(np.float64)
    item_a, k_a = inp.item_idx[aged], k[aged]
    expected = np.maximum(n_i[item_a] * share[k_a], 1e-12)
    lf = c / expected
    lift[aged] = lf
    ev = np.where((c >= min_accounts) & (lf >= min_lift), np.clip(np.log10(lf) / 2.0, 0.0, 1.0), 0.0)
    if consensus_z > 0 and (ev > 0).any():
        v = np.ones(inp.n_users) if account_weight is None else np.asarray(account_weight, dtype=np.float64)
        ev = np.where(_consensus_z(inp, aged, inv, v) >= consensus_z, ev, 0.0)
    evidence[aged] = ev
    return CohortScores(lift, evidence, cohort, bucket_days)


def _consensus_z(inp: IntegrityInputs, aged: np.ndarray, group: IntArray, v_user: FloatArray) -> FloatArray:
    """Per aged rating: ``|m_g - c| / (s / sqrt(n_eff))`` of its (item, cohort) group against the item's
    other raters (all of them, aged or not), weighted by ``v``; 0 when the group is all of the item."""
    item, r = inp.item_idx, inp.rating
    v = v_user[inp.user_idx]
    n_i = inp.n_items

    def item_sums(w: FloatArray) -> FloatArray:
        sums: FloatArray = np.bincount(item, weights=w, minlength=n_i).astype(np.float64, copy=False)
        return sums

    w_i, wr_i, wr2_i, q_i = item_sums(v), item_sums(v * r), item_sums(v * r * r), item_sums(v * v)
    va, ra = v[aged], r[aged]
    n_g = int(group.max()) + 1
    cnt_g = np.bincount(group, minlength=n_g).astype(np.float64)
    m_g = np.bincount(group, weights=ra, minlength=n_g) / np.maximum(cnt_g, 1.0)
    w_g = np.bincount(group, weights=va, minlength=n_g)
    wr_g = np.bincount(group, weights=va * ra, minlength=n_g)
    wr2_g = np.bincount(group, weights=va * ra * ra, minlength=n_g)
    q_g = np.bincount(group, weights=va * va, minlength=n_g)
    it = item[aged]
    w_o = w_i[it] - w_g[group]
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (wr_i[it] - wr_g[group]) / w_o
        var = (wr2_i[it] - wr2_g[group]) / w_o - c * c
        sd = np.maximum(np.sqrt(np.maximum(var, 0.0)), _SD_FLOOR)
        n_eff = w_o * w_o / np.maximum(q_i[it] - q_g[group], 1e-12)
        z = np.abs(m_g[group] - c) / (sd / np.sqrt(n_eff))
    return np.where(w_o > 1e-9, z, 0.0)
