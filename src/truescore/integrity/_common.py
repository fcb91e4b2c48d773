"""Shared inputs and numerics of the integrity detectors.

Every detector reads the same :class:`IntegrityInputs` (one entry per rating, dense user and item
indices, ratings normalised to [0, 1] with each review's own scale) and returns plain arrays, so it can
be used and tested without a database.

Rank normalisation. A feature ``x`` (oriented so that larger is more suspicious) becomes its mid-rank
percentile ``p(x_k) = (#{x < x_k} + (#{x = x_k} + 1)/2 - 1/2) / n`` in [0, 1]; missing values (NaN) get the
neutral 0.5. Percentiles are scale free, so features with different units and heavy tails can be
averaged without fitting anything, and ties (e.g. thousands of one-review accounts) share one value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from truescore.config import IntegritySettings

__all__ = ["DAY", "DEFAULTS", "IntegrityInputs", "TextClusters", "TextSignatures", "group_cumsum", "percentile_rank",
           "weighted_percentile_mean"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]

DAY = 86400.0
_EPS = 1e-12

#: The detectors' defaults: those of :class:`~truescore.config.IntegritySettings` (their one source; read only).
DEFAULTS = IntegritySettings()


@dataclass(frozen=True, slots=True)
class TextSignatures:
    """MinHash signatures of the review texts (:mod:`truescore.integrity.duplicates`), computed wherever the
    texts are: ``rows`` (increasing positions in the rating order) of the texts with at least
    ``min_words`` words, and their signatures ``values``, shape ``(len(rows), H)``, unsigned integers in
    ``[0, p)`` (uint64 as computed, uint32 when unpacked: the values and so the results are the same)."""

    rows: IntArray
    values: npt.NDArray[np.unsignedinteger[Any]]
    min_words: int


@dataclass(frozen=True, slots=True)
class TextClusters:
    """Near-duplicate clusters formed elsewhere from the signatures (bands and confirmation, e.g. in a
    Spark job): ``rows`` as in :class:`TextSignatures`, ``roots`` the cluster id (union-find root, a
    position in ``rows``) of each, and the ``min_words`` and ``threshold`` they were formed with."""

    rows: IntArray
    roots: IntArray
    min_words: int
    threshold: float


@dataclass(slots=True)
class IntegrityInputs:
    """Per-rating arrays shared by every detector.

    Attributes
    ----------
    user_idx, item_idx : int arrays, one entry per rating
    rating : float array
        Normalised rating in [0, 1].
    created_at : float array
        UTC epoch seconds.
    n_users, n_items : int
    user_created_at : float array, one per user, optional
        Account creation time (NaN = unknown: the first rating is used).
    reliability_lo : float array, one per user, optional
        Lower credible bound of the reliability engine's rater precision (NaN = not fitted).
    texts : list of str or None, optional
        Review texts (None or empty = no text).
    signatures : TextSignatures, optional
        The texts' MinHash signatures computed elsewhere, instead of ``texts`` (the near-duplicate
        detector is the only reader of texts, and it reads them only through these).
    clusters : TextClusters, optional
        The near-duplicate clusters formed from the signatures elsewhere, instead of both.
    review_ids, user_ids, item_ids : object arrays, optional
        External ids, for rings and reasons.
    """

    user_idx: IntArray
    item_idx: IntArray
    rating: FloatArray
    created_at: FloatArray
    n_users: int
    n_items: int
    user_created_at: FloatArray | None = None
    reliability_lo: FloatArray | None = None
    texts: list[str | None] | None = None
    signatures: TextSignatures | None = None
    clusters: TextClusters | None = None
    review_ids: ObjArray | None = None
    user_ids: ObjArray | None = None
    item_ids: ObjArray | None = None

    def __post_init__(self) -> None:
        n = self.rating.shape[0]
        for name in ("user_idx", "item_idx", "created_at"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"IntegrityInputs.{name} has {getattr(self, name).shape[0]} entries, expected {n}")
        if self.texts is not None and len(self.texts) != n:
            raise ValueError(f"IntegrityInputs.texts has {len(self.texts)} entries, expected {n}")
        if sum(x is not None for x in (self.texts, self.signatures, self.clusters)) > 1:
            raise ValueError("IntegrityInputs: give texts, signatures or clusters, not several")
        if self.signatures is not None:
            self._check_rows(self.signatures.rows, self.signatures.values.shape, n)
        if self.clusters is not None:
            self._check_rows(self.clusters.rows, self.clusters.roots.shape, n)
        for name in ("user_created_at", "reliability_lo"):
            arr = getattr(self, name)
            if arr is not None and arr.shape[0] != self.n_users:
                raise ValueError(f"IntegrityInputs.{name} needs one entry per user ({self.n_users})")
        if n and (self.user_idx.min() < 0 or self.user_idx.max() >= self.n_users):
            raise ValueError("IntegrityInputs.user_idx out of range")
        if n and (self.item_idx.min() < 0 or self.item_idx.max() >= self.n_items):
            raise ValueError("IntegrityInputs.item_idx out of range")
        if not np.isfinite(self.rating).all() or not np.isfinite(self.created_at).all():
            raise ValueError("IntegrityInputs.rating and created_at must be finite")

    @staticmethod
    def _check_rows(rows: IntArray, shape: tuple[int, ...], n: int) -> None:
        if len(shape) < 1 or shape[0] != rows.shape[0]:
            raise ValueError("IntegrityInputs: signatures / clusters need one entry per entry of rows")
        if rows.size and (rows[0] < 0 or rows[-1] >= n or (np.diff(rows) <= 0).any()):
            raise ValueError(f"IntegrityInputs: signature rows must be increasing positions in [0, {n})")

    @property
    def n_ratings(self) -> int:
        return int(self.rating.shape[0])

    @classmethod
    def from_snapshot(cls, snapshot: object, *, texts: list[str | None] | None = None,
                      signatures: TextSignatures | None = None, clusters: TextClusters | None = None,
                      user_created_at: FloatArray | None = None,
                      reliability_lo: FloatArray | None = None) -> IntegrityInputs:
        """From a :class:`~truescore.domain.RatingSnapshot` (and optional per-user extras)."""
        s = snapshot
        return cls(user_idx=s.user_idx, item_idx=s.item_idx, rating=s.rating,  # type: ignore[attr-defined]
                   created_at=s.created_at, n_users=s.n_users, n_items=s.n_items,  # type: ignore[attr-defined]
                   user_created_at=user_created_at, reliability_lo=reliability_lo, texts=texts,
                   signatures=signatures, clusters=clusters,
                   review_ids=s.review_ids, user_ids=s.user_ids, item_ids=s.item_ids)  # type: ignore[attr-defined]


def percentile_rank(x: npt.ArrayLike) -> FloatArray:
    """Mid-rank percentile of each value in [0, 1] (ties share one value, NaN -> 0.5)."""
    a = np.asarray(x, dtype=np.float64)
    out = np.full(a.shape[0], 0.5)
    ok = np.isfinite(a)
    m = int(ok.sum())
    if m == 0:
        return out
    v = a[ok]
    sorted_v = np.sort(v)
    below = np.searchsorted(sorted_v, v, side="left")
    upto = np.searchsorted(sorted_v, v, side="right")
    out[ok] = (below + 0.5 * (upto - below)) / m
    return out


def weighted_percentile_mean(features: dict[str, FloatArray], weights: dict[str, float]) -> FloatArray:
    """``sum_k w_k p(x_k) / sum_k w_k`` over the features present (each already oriented and ranked)."""
    total = sum(weights[k] for k in features)
    if total <= 0:
        raise ValueError("feature weights must not all be zero")
    acc = np.zeros(next(iter(features.values())).shape[0])
    for k, v in features.items():
        acc += weights[k] * v
    return acc / total


def group_cumsum(values: FloatArray, starts: IntArray) -> FloatArray:
    """Cumulative sum of ``values`` restarting at each index of ``starts`` (sorted, first 0)."""
    c = np.cumsum(values)
    offset = np.zeros_like(c)
    if starts.size:
        base = np.r_[0.0, c[starts[1:] - 1]] if starts.size > 1 else np.array([0.0])
        lengths = np.diff(np.r_[starts, values.shape[0]])
        offset = np.repeat(base, lengths)
    return c - offset
