"""SpEagle's metadata priors (Rayana & Akoglu, KDD 2015): behavioural features of users, products and
reviews turned into a prior ``P(spam)`` per node, from metadata alone (ids, rating, date).

Adapted (vectorised with NumPy / pandas, on any rating scale through the normalised rating ``z``) from
``Utils/yelpFeatureExtraction.py`` (``FeatureExtractor.construct_all_features`` and
``calculateNodePriors``) and ``Utils/feature_configuration.txt`` of safe-graph/UGFraud (commit 3552c28),
Copyright the UGFraud authors, licensed under the Apache License, Version 2.0
(http://www.apache.org/licenses/LICENSE-2.0). Changes: vectorised; ratings read as ``z`` in [0, 1]
(a 1..5 star ``r`` is ``z = (r - 1) / 4``), so "positive" is ``z > 0.5``, "extreme" is ``z in {0, 1}`` and
the rating-entropy histogram has 5 equal bins of ``z``; dates are days since the epoch (UGFraud reads
``%Y-%m-%d`` dates, so the same day resolution).

Features (direction: ``+`` higher is more suspicious, ``-`` lower is):

- users: MNR (max reviews in one day / the largest such count) +, PR (share positive) +, NR (share
  negative) +, avgRD (mean |z - item mean|) +, BST (burstiness ``1 - span / 28 days``, 0 beyond) +,
  ERD (entropy of its ratings) -, ETG (entropy of the binned gaps between consecutive dates, gaps under
  33 days, bin edges 0, 0.5, 1, 4, 7, 13, 33) -;
- products: MNR +, PR +, NR +, avgRD (mean |z - its mean|) +, ERD -, ETG -;
- reviews: RD (|z - item mean|) +, EXT (extreme) +, DEV (RD > 0.63) +, ETF (early time frame: 1 when
  ``1 - days since the item's first review / 210 > 0.69``) +, ISR (the author's only review) +.

Prior of a node (SpEagle eq. 1 as coded by UGFraud): for each feature, the node's empirical tail
probability ``q`` toward the suspicious end (ties share the least extreme rank); the prior is
``1 - sqrt(mean_f q_f^2)``, clipped to [0.001, 0.999].
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eval.peers.common import DAY, Encoded

__all__ = ["node_priors", "speagle_priors"]

_GAP_EDGES = np.array([0, 0.5, 1, 4, 7, 13, 33])


def node_priors(features: pd.DataFrame, suspicious_high: dict[str, bool]) -> np.ndarray:
    """``1 - sqrt(mean_f q_f^2)`` per row, ``q_f`` the tail share toward the suspicious end of feature f."""
    n = len(features)
    acc = np.zeros(n)
    for name, high in suspicious_high.items():
        v = features[name]
        if high:
            start = v.rank(method="min").to_numpy() - 1      # 0-based first position of the tie group
            acc += (1.0 - (start + 1) / n) ** 2
        else:
            end = v.rank(method="max").to_numpy()            # 1-based last position of the tie group
            acc += (end / n) ** 2
    return np.clip(1.0 - np.sqrt(acc / len(suspicious_high)), 0.001, 0.999)


def _entropy(groups: np.ndarray, bins: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.zeros(n_groups)
    if groups.size == 0:
        return out
    counts = pd.Series(1, index=pd.MultiIndex.from_arrays([groups, bins])).groupby(level=[0, 1]).sum()
    g = counts.index.get_level_values(0).to_numpy()
    c = counts.to_numpy(float)
    tot = np.bincount(g, c, n_groups)[g]
    p = c / tot
    np.add.at(out, g, -p * np.log2(p))
    return out


def _node_features(node: np.ndarray, n: int, z: np.ndarray, day: np.ndarray, other_mean: np.ndarray
                   ) -> pd.DataFrame:
    cnt = np.bincount(node, minlength=n).astype(float)
    per_day = pd.Series(1, index=pd.MultiIndex.from_arrays([node, day])).groupby(level=[0, 1]).sum()
    mnr = np.zeros(n)
    np.maximum.at(mnr, per_day.index.get_level_values(0).to_numpy(), per_day.to_numpy(float))
    mnr /= max(mnr.max(), 1.0)
    pr = np.bincount(node, (z > 0.5).astype(float), n) / np.maximum(cnt, 1)
    nr = np.bincount(node, (z < 0.5).astype(float), n) / np.maximum(cnt, 1)
    avg_rd = np.bincount(node, np.abs(z - other_mean), n) / np.maximum(cnt, 1)
    erd = _entropy(node, np.minimum((z * 5).astype(int), 4), n)
    order = np.lexsort((day, node))
    sn, sd = node[order], day[order].astype(float)
    same = sn[1:] == sn[:-1]
    gaps = (sd[1:] - sd[:-1])[same]
    gnode = sn[1:][same]
    keep = gaps < 33
    etg = _entropy(gnode[keep], np.searchsorted(_GAP_EDGES, gaps[keep], side="left"), n)
    return pd.DataFrame({"MNR": mnr, "PR": pr, "NR": nr, "avgRD": avg_rd, "ERD": erd, "ETG": etg})


def speagle_priors(enc: Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Priors (user, product, review), each in [0.001, 0.999], in the order of ``enc.users``, ``enc.items``
    and the reviews."""
    day = np.floor(enc.t / DAY).astype(np.int64)
    n_i = np.bincount(enc.item, minlength=enc.n_items)
    item_mean = np.bincount(enc.item, enc.z, enc.n_items) / np.maximum(n_i, 1)
    rd = np.abs(enc.z - item_mean[enc.item])
    uf = _node_features(enc.user, enc.n_users, enc.z, day, item_mean[enc.item])
    first, last = np.full(enc.n_users, np.inf), np.full(enc.n_users, -np.inf)
    np.minimum.at(first, enc.user, day)
    np.maximum.at(last, enc.user, day)
    span = last - first
    uf["BST"] = np.where(span > 28, 0.0, 1.0 - span / 28.0)
    pf = _node_features(enc.item, enc.n_items, enc.z, day, item_mean[enc.item])
    item_first = np.full(enc.n_items, np.inf)
    np.minimum.at(item_first, enc.item, day)
    td = day - item_first[enc.item]
    etf = np.where(td > 210, 0.0, (1.0 - td / 210.0 > 0.69).astype(float))
    n_u = np.bincount(enc.user, minlength=enc.n_users)
    rf = pd.DataFrame({"RD": rd, "EXT": ((enc.z == 0) | (enc.z == 1)).astype(float),
                       "DEV": (rd > 0.63).astype(float), "ETF": etf, "ISR": (n_u[enc.user] == 1).astype(float)})
    up = node_priors(uf, {"MNR": True, "PR": True, "NR": True, "avgRD": True, "BST": True, "ERD": False,
                          "ETG": False})
    pp = node_priors(pf, {"MNR": True, "PR": True, "NR": True, "avgRD": True, "ERD": False, "ETG": False})
    rp = node_priors(rf, {"RD": True, "EXT": True, "DEV": True, "ETF": True, "ISR": True})
    return up, pp, rp
