"""Behaviour features per review and per account: what review sites' own filters look at.

The families follow Mukherjee et al., "What Yelp fake review filter might be doing?" (ICWSM 2013) and
Rayana & Akoglu, "Collective opinion spam detection" (KDD 2015): activity (one-review accounts, short
tenure), burstiness (maximum reviews per day), rating deviation from the item's other raters, and
extremity. Every feature is oriented so that *larger is more suspicious*, with the sign fixed on
principle (none was fitted to labels), then rank-normalised (:func:`~._common.percentile_rank`).

Let rating ``j`` be by account ``u`` of item ``i``, ``r_j`` in [0, 1], at time ``t_j``, and let ``n_u``,
``n_i`` be the numbers of ratings of the account and the item.

Per account ``u``:

- ``few_reviews = -log(1 + n_u)``: farms burn accounts; filters flag singletons;
- ``busiest_day_share = max_d c_ud / n_u``, ``c_ud`` the account's ratings on calendar day ``d``
  (Mukherjee's MNR, relative to the account's activity, so 1 for a one-day account);
- ``short_tenure = -log(1 + (t_last - t_first)/day)``;
- ``rating_deviation = mean_j dev_j`` (below);
- ``extremity = mean_j |2 r_j - 1|``: paid reviews sit at the ends of the scale;
- ``low_reliability = -log(reliability_lo_u)`` when the reliability engine has fitted the rater.

Per review ``j``:

- ``rating_deviation dev_j = |r_j - c_i^(-j)|``, ``c_i^(-j)`` the item's consensus without ``j``:
  ``c_i^(-j) = (sum_k w_k r_k - w_j r_j) / (sum_k w_k - w_j)`` over the item's ratings, with weights
  ``w = 1`` in a first pass and ``w_k = 1 - b_u(k)`` (the equal-weight account score of pass one,
  ``detector_prior``) in the second, so that a crowd of suspicious accounts does not define the
  consensus it is measured against (REV2's fairness/goodness idea, two steps); NaN (neutral) for an
  item's only rating;
- ``extremity |2 r_j - 1|``;
- ``item_day_burst = log(c_j / e_j)``: ``c_j`` the item's ratings within ``W/2`` of ``t_j``,
  ``e_j = max(1, n_i W / span_i)`` the count expected from the item's own rate.

The account score ``b_u`` is the weighted mean of the account percentiles (weights
:func:`account_weights`: one vote per family of features), re-ranked over accounts; the review
score ``b_j`` the weighted mean of the account's ``b_u`` and the review percentiles
(:data:`REVIEW_WEIGHTS`), re-ranked over reviews. Both are in [0, 1] and only their order carries
meaning. (The suspicion replaces ``b_u`` in the review's mean by the author's account *suspicion*:
:func:`~truescore.integrity.suspicion.inherited_review_score`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from truescore.integrity._common import (
    DAY,
    DEFAULTS,
    FloatArray,
    IntegrityInputs,
    percentile_rank,
    weighted_percentile_mean,
)

__all__ = ["ACCOUNT_FAMILIES", "REVIEW_WEIGHTS", "BehaviourScores", "account_weights", "behaviour_scores"]

#: the account features in families of features that measure one thing: a family's weight is shared by its
#: features present, so three correlated activity features (a one-review account is extreme on all three)
#: count as one vote, not three
ACCOUNT_FAMILIES = {"activity": ("few_reviews", "busiest_day_share", "short_tenure"),
                    "disagreement": ("rating_deviation", "low_reliability"),
                    "extremity": ("extremity",)}


def account_weights(present: Iterable[str], *, disagreement_weight: float = DEFAULTS.disagreement_weight,
                    extremity_weight: float = DEFAULTS.extremity_weight) -> dict[str, float]:
    """Weight of each present account feature's percentile in the account score ``b_u``.

    Family weights: activity 1, disagreement ``disagreement_weight``, extremity ``extremity_weight``; each
    split equally among the family's features in ``present``:

        W_f = W_family(f) / #{g in family(f), g present}

    (defaults, docs/integrity.md "How the defaults were chosen": disagreement 3, the smallest family weight
    at which the suspicion beats each labelled data set's best trivial baseline; extremity 0, because its
    direction flips between data sets: AUC 0.36 on one, 0.63-0.69 on the others)."""
    have = set(present)
    family_weight = {"activity": 1.0, "disagreement": disagreement_weight, "extremity": extremity_weight}
    out: dict[str, float] = {}
    for family, features in ACCOUNT_FAMILIES.items():
        members = [f for f in features if f in have]
        for f in members:
            out[f] = family_weight[family] / len(members)
    return out

#: weight of the account score and of each review feature's percentile in the review score
REVIEW_WEIGHTS = {"account": 3.0, "rating_deviation": 1.0, "extremity": 1.0, "item_day_burst": 1.0}


@dataclass(slots=True)
class BehaviourScores:
    """Behavioural features (raw and as percentiles) and the combined scores.

    Attributes
    ----------
    account, review : float arrays in [0, 1]
        Combined behavioural score per account and per review (percentiles: order only).
    account_features, review_features : dict of float arrays
        Raw features, oriented so that larger is more suspicious.
    account_ranks, review_ranks : dict of float arrays
        Their percentiles.
    consensus_loo : float array, one per review
        The item's leave-one-out consensus used for the rating deviation (NaN when alone).
    detector_prior : float array in [0, 1], one per account
        Every account feature's percentile with the same weight, re-ranked: the prior by which the
        consensus (its second pass) and the ring and cohort detectors down-weight atypical accounts. It
        keeps equal feature weights, so the consensus a rating's deviation is measured against is not
        set by a score that weighs that deviation heavily.
    account_weights : dict of float
        The weight of each account feature in ``account`` (:func:`account_weights`); a feature of weight 0
        is computed (and exported) but is never given as a reason.
    """

    account: FloatArray
    review: FloatArray
    account_features: dict[str, FloatArray]
    review_features: dict[str, FloatArray]
    account_ranks: dict[str, FloatArray]
    review_ranks: dict[str, FloatArray]
    consensus_loo: FloatArray
    detector_prior: FloatArray
    account_weights: dict[str, float]


def _loo_consensus(inp: IntegrityInputs, w: FloatArray) -> FloatArray:
    item = inp.item_idx
    sw = np.bincount(item, weights=w, minlength=inp.n_items)
    swr = np.bincount(item, weights=w * inp.rating, minlength=inp.n_items)
    den = sw[item] - w
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (swr[item] - w * inp.rating) / den
    return np.where(den > 1e-9, out, np.nan)


def _item_day_burst(inp: IntegrityInputs, window_days: float) -> FloatArray:
    n = inp.n_ratings
    if n == 0:
        return np.zeros(0)
    window = window_days * DAY
    order = np.lexsort((inp.created_at, inp.item_idx))
    items, times = inp.item_idx[order], inp.created_at[order]
    gap = float(times.max() - times.min()) + 10 * window + 1.0
    key = items.astype(np.float64) * gap + (times - times.min())
    count = (np.searchsorted(key, key + window / 2, side="right")
             - np.searchsorted(key, key - window / 2, side="left")).astype(np.float64)
    n_i = np.bincount(items, minlength=inp.n_items).astype(np.float64)
    t_min = np.full(inp.n_items, np.inf)
    t_max = np.full(inp.n_items, -np.inf)
    np.minimum.at(t_min, items, times)
    np.maximum.at(t_max, items, times)
    span = np.maximum(t_max - t_min, window)
    expected = np.maximum(n_i[items] * window / span[items], 1.0)
    out = np.empty(n)
    out[order] = np.log(count / expected)
    return out


def behaviour_scores(inp: IntegrityInputs, *,
                     burst_window_days: float = DEFAULTS.burst_day_window_days,
                     disagreement_weight: float = DEFAULTS.disagreement_weight,
                     extremity_weight: float = DEFAULTS.extremity_weight) -> BehaviourScores:
    """Compute every behaviour feature and the combined account and review scores (the account score's
    family weights: :func:`account_weights`)."""
    n_u = np.bincount(inp.user_idx, minlength=inp.n_users).astype(np.float64)
    has = n_u > 0
    user = inp.user_idx
    # activity and burstiness
    day = np.floor(inp.created_at / DAY).astype(np.int64)
    key = user * (int(day.max() - day.min()) + 1 if day.size else 1) + (day - (day.min() if day.size else 0))
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    max_day = np.zeros(inp.n_users)
    np.maximum.at(max_day, user[first], counts.astype(np.float64))
    t_first = np.full(inp.n_users, np.inf)
    t_last = np.full(inp.n_users, -np.inf)
    np.minimum.at(t_first, user, inp.created_at)
    np.maximum.at(t_last, user, inp.created_at)
    if inp.user_created_at is not None:
        known = np.isfinite(inp.user_created_at)
        t_first = np.where(known, np.minimum(t_first, inp.user_created_at), t_first)
    with np.errstate(invalid="ignore", divide="ignore"):
        tenure = np.where(has, (t_last - t_first) / DAY, np.nan)
    ext = np.abs(2.0 * inp.rating - 1.0)
    burst = _item_day_burst(inp, burst_window_days)

    fitted = inp.reliability_lo is not None and bool(np.isfinite(inp.reliability_lo).any())
    present = [f for family in ACCOUNT_FAMILIES.values() for f in family if fitted or f != "low_reliability"]
    weights = account_weights(present, disagreement_weight=disagreement_weight, extremity_weight=extremity_weight)

    def account_part(dev: FloatArray) -> tuple[dict[str, FloatArray], dict[str, FloatArray], FloatArray, FloatArray]:
        ok = np.isfinite(dev)
        dev_sum = np.bincount(user, weights=np.where(ok, dev, 0.0), minlength=inp.n_users)
        dev_n = np.bincount(user, weights=ok.astype(np.float64), minlength=inp.n_users)
        with np.errstate(invalid="ignore", divide="ignore"):
            feats = {
                "few_reviews": np.where(has, -np.log1p(n_u), np.nan),
                "busiest_day_share": np.where(has, max_day / np.maximum(n_u, 1.0), np.nan),
                "short_tenure": -np.log1p(np.maximum(tenure, 0.0)),
                "rating_deviation": np.where(dev_n > 0, dev_sum / dev_n, np.nan),
                "extremity": np.where(has, np.bincount(user, weights=ext, minlength=inp.n_users) / n_u, np.nan),
            }
        if fitted and inp.reliability_lo is not None:
            lo = inp.reliability_lo
            feats["low_reliability"] = np.where(np.isfinite(lo) & (lo > 0), -np.log(np.maximum(lo, 1e-300)), np.nan)
        ranks = {k: _rank_over(v, has) for k, v in feats.items()}
        used = {k: v for k, v in ranks.items() if weights[k] > 0}
        score = _rank_over(weighted_percentile_mean(used, weights), has)
        prior = _rank_over(weighted_percentile_mean(ranks, dict.fromkeys(ranks, 1.0)), has)
        return feats, ranks, score, prior

    dev1 = np.abs(inp.rating - _loo_consensus(inp, np.ones(inp.n_ratings)))
    _, _, _, b1 = account_part(dev1)
    w2 = np.clip(1.0 - b1[user], 0.05, 1.0)
    consensus = _loo_consensus(inp, w2)
    dev = np.abs(inp.rating - consensus)
    acc_feats, acc_ranks, account, prior = account_part(dev)
    rev_feats = {"rating_deviation": dev, "extremity": ext, "item_day_burst": burst}
    rev_ranks = {k: percentile_rank(v) for k, v in rev_feats.items()}
    rev_ranks_all = {"account": account[user], **rev_ranks}
    review = percentile_rank(weighted_percentile_mean(rev_ranks_all, REVIEW_WEIGHTS))
    return BehaviourScores(account=account, review=review, account_features=acc_feats, review_features=rev_feats,
                           account_ranks=acc_ranks, review_ranks=rev_ranks, consensus_loo=consensus,
                           detector_prior=prior,
                           account_weights=weights)


def _rank_over(x: FloatArray, mask: np.ndarray) -> FloatArray:
    """Percentiles among the accounts in ``mask`` (accounts without ratings get 0)."""
    out = np.zeros(x.shape[0])
    out[mask] = percentile_rank(x[mask])
    return out
