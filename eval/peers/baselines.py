"""Trivial baselines from the same metadata: what a detector must beat to carry any lift.

- **review count**: the author's number of reviews, fewer = more suspicious (``-n``);
- **rating deviation**: ``|z - mean of the item's other ratings|`` per review (0 when alone), per account
  the mean over its reviews;
- **extremity**: ``|2 z - 1|`` (1 at either end of the scale, 0 in the middle), per account the mean.
"""

from __future__ import annotations

import numpy as np

from eval.peers.common import Encoded, PeerScores, both_levels, to_accounts

__all__ = ["BASELINES", "deviation", "extremity", "review_count"]


def review_count(enc: Encoded) -> PeerScores:
    n = np.bincount(enc.user, minlength=enc.n_users).astype(float)
    return both_levels(enc, -n[enc.user], -n)


def deviation(enc: Encoded) -> PeerScores:
    cnt = np.bincount(enc.item, minlength=enc.n_items)[enc.item]
    tot = np.bincount(enc.item, enc.z, enc.n_items)[enc.item]
    loo = np.where(cnt > 1, (tot - enc.z) / np.maximum(cnt - 1, 1), enc.z)
    dev = np.abs(enc.z - loo)
    return both_levels(enc, dev, to_accounts(enc, dev).to_numpy())


def extremity(enc: Encoded) -> PeerScores:
    ext = np.abs(2.0 * enc.z - 1.0)
    return both_levels(enc, ext, to_accounts(enc, ext).to_numpy())


BASELINES = {"baseline: review count (fewer = worse)": review_count,
             "baseline: rating deviation": deviation,
             "baseline: extremity": extremity}
