"""What every peer gets (the metadata our engine gets) and how its scores are carried between levels.

A review frame has the columns ``id, item_id, user_id, rating, min_rating, max_rating, created_at``
(the CSV ``truescore import --kind reviews`` reads). :func:`encode` turns it into integer arrays once.

Level conversions, used where a detector scores one level only (each table row says which it used):

- per account from per review: the **mean** of the scores of the account's reviews (:func:`to_accounts`);
- per review from per account: the **author's** score (:func:`to_reviews`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Encoded", "PeerScores", "encode", "to_accounts", "to_reviews"]

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Encoded:
    """A review frame as arrays: ``user[e]``, ``item[e]`` index ``users`` / ``items``; ``z[e]`` is the
    rating on the normalised scale [0, 1]; ``t[e]`` seconds since the epoch."""

    review_ids: np.ndarray
    users: np.ndarray
    items: np.ndarray
    user: np.ndarray
    item: np.ndarray
    z: np.ndarray
    t: np.ndarray

    @property
    def n_users(self) -> int:
        return int(self.users.size)

    @property
    def n_items(self) -> int:
        return int(self.items.size)

    @property
    def n_reviews(self) -> int:
        return int(self.user.size)


@dataclass(frozen=True, slots=True)
class PeerScores:
    """A detector's scores (higher = more suspicious), indexed by review id and by user id, and how each
    level was made (``"native"``, ``"mean of its reviews"``, ``"author's"``)."""

    review: pd.Series
    account: pd.Series
    review_from: str = "native"
    account_from: str = "native"


def encode(reviews: pd.DataFrame) -> Encoded:
    users, user = np.unique(reviews["user_id"].astype(str).to_numpy(), return_inverse=True)
    items, item = np.unique(reviews["item_id"].astype(str).to_numpy(), return_inverse=True)
    lo = reviews["min_rating"].to_numpy(float)
    hi = reviews["max_rating"].to_numpy(float)
    z = (reviews["rating"].to_numpy(float) - lo) / (hi - lo)
    t = (pd.to_datetime(reviews["created_at"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return Encoded(reviews["id"].astype(str).to_numpy(), users, items, user, item, z, t.to_numpy(float))


def to_accounts(enc: Encoded, review_score: np.ndarray) -> pd.Series:
    """Mean of each account's review scores."""
    total = np.bincount(enc.user, review_score, enc.n_users)
    n = np.bincount(enc.user, minlength=enc.n_users)
    return pd.Series(total / np.maximum(n, 1), index=enc.users)


def to_reviews(enc: Encoded, account_score: np.ndarray) -> pd.Series:
    """Each review gets its author's score."""
    return pd.Series(np.asarray(account_score, float)[enc.user], index=enc.review_ids)


def both_levels(enc: Encoded, review: np.ndarray | None, account: np.ndarray | None) -> PeerScores:
    """A :class:`PeerScores` from whichever level(s) a detector produced."""
    if review is not None and account is not None:
        return PeerScores(pd.Series(review, index=enc.review_ids), pd.Series(account, index=enc.users))
    if review is not None:
        return PeerScores(pd.Series(review, index=enc.review_ids), to_accounts(enc, review),
                          account_from="mean of its reviews")
    assert account is not None
    return PeerScores(to_reviews(enc, account), pd.Series(account, index=enc.users), review_from="author's")
