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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from truescore.integrity._common import DAY, FloatArray, IntArray, IntegrityInputs

__all__ = ["CohortScores", "cohort_concentration"]


@dataclass(slots=True)
class CohortScores:
    """Per rating: the cohort lift (NaN when not aged) and the evidence in [0, 1]; the cohort index."""

    lift: FloatArray
    evidence: FloatArray
    cohort: IntArray
    bucket_days: float = 14.0


def cohort_concentration(inp: IntegrityInputs, *, bucket_days: float = 14.0, min_accounts: int = 5,
                         min_lift: float = 10.0, min_age_days: float = 7.0) -> CohortScores:
    """Cohort lift and evidence of every rating (see the module docstring)."""
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
    evidence[aged] = ev
    return CohortScores(lift, evidence, cohort, bucket_days)
