"""Domain types shared by the store, the engines and the interfaces.

Events are append-only and identified by caller-chosen string ids. Times are timezone-aware UTC
``datetime`` objects in the domain and UTC seconds since the epoch (float) in arrays and in the store.

Ratings keep their own scale ``[min_rating, max_rating]``; engines work on the normalised value

    z = (rating - min_rating) / (max_rating - min_rating)  in [0, 1],

so a 4 on 1..5 and a 7.75 on 1..10 are the same opinion, and a result is shown on a scale again with
``denormalise``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_MAX_RATING",
    "DEFAULT_MIN_RATING",
    "Flag",
    "FlagReason",
    "Item",
    "RatingSnapshot",
    "Review",
    "TrustEdge",
    "TrustEdgeArrays",
    "User",
    "UserRole",
    "Vote",
    "denormalise",
    "from_epoch",
    "normalise",
    "to_epoch",
]

DEFAULT_MIN_RATING = 1.0
DEFAULT_MAX_RATING = 5.0


class UserRole(enum.StrEnum):
    PERSON = "person"
    OPERATOR = "operator"
    RETAILER = "retailer"
    MODERATOR = "moderator"


class FlagReason(enum.StrEnum):
    SPAM = "SPAM"
    FAKE = "FAKE"
    INAPPROPRIATE = "INAPPROPRIATE"
    OFF_TOPIC = "OFF_TOPIC"
    OTHER = "OTHER"


def to_epoch(when: datetime) -> float:
    """UTC seconds since the epoch; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def normalise(rating: float, min_rating: float, max_rating: float) -> float:
    """Map a rating on ``[min_rating, max_rating]`` to ``[0, 1]``."""
    return (rating - min_rating) / (max_rating - min_rating)


def denormalise(z: float, min_rating: float, max_rating: float) -> float:
    """Map a normalised value back onto ``[min_rating, max_rating]``."""
    return min_rating + z * (max_rating - min_rating)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    created_at: datetime = field(default_factory=_now)
    display_name: str | None = None
    role: UserRole = UserRole.PERSON


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    topic: str
    title: str | None = None
    created_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class Review:
    id: str
    item_id: str
    user_id: str
    rating: float
    created_at: datetime = field(default_factory=_now)
    min_rating: float = DEFAULT_MIN_RATING
    max_rating: float = DEFAULT_MAX_RATING
    title: str | None = None
    text: str | None = None
    is_recommended: bool | None = None
    is_incentivized: bool | None = None
    verified_purchase: bool | None = None
    photo_count: int = 0
    supersedes: str | None = None

    @property
    def normalised(self) -> float:
        return normalise(self.rating, self.min_rating, self.max_rating)


@dataclass(frozen=True, slots=True)
class Vote:
    review_id: str
    voter_id: str
    helpful: bool
    created_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class TrustEdge:
    truster_id: str
    trustee_id: str
    domain: str
    level: float
    created_at: datetime = field(default_factory=_now)
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Flag:
    review_id: str
    flagger_id: str
    reason: FlagReason
    severity: float = 1.0
    created_at: datetime = field(default_factory=_now)


IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.object_]


@dataclass(slots=True)
class RatingSnapshot:
    """Compact arrays of every review, as the engines consume them.

    Attributes
    ----------
    user_ids, item_ids : object arrays
        Inner index -> external id, for users and items.
    review_ids : object array
        External id of each rating row.
    user_idx, item_idx : int arrays, one entry per rating
        Inner indices of the rater and the rated item.
    rating : float array
        Normalised rating in [0, 1].
    created_at : float array
        UTC seconds since the epoch.
    item_min, item_max : float arrays, one entry per item
        The item's display scale (the most common scale among its reviews).
    item_topic : object array, one entry per item
    """

    user_ids: StrArray
    item_ids: StrArray
    review_ids: StrArray
    user_idx: IntArray
    item_idx: IntArray
    rating: FloatArray
    created_at: FloatArray
    item_min: FloatArray
    item_max: FloatArray
    item_topic: StrArray

    @property
    def n_ratings(self) -> int:
        return int(self.rating.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @classmethod
    def from_arrays(
        cls,
        user_idx: npt.ArrayLike,
        item_idx: npt.ArrayLike,
        rating: npt.ArrayLike,
        *,
        n_users: int | None = None,
        n_items: int | None = None,
        created_at: npt.ArrayLike | None = None,
        min_rating: float = 0.0,
        max_rating: float = 1.0,
    ) -> RatingSnapshot:
        """Build a snapshot from integer-indexed arrays (ids are the indices as strings).

        ``rating`` is on ``[min_rating, max_rating]`` and is normalised here.
        """
        u = np.asarray(user_idx, dtype=np.int64)
        i = np.asarray(item_idx, dtype=np.int64)
        r = (np.asarray(rating, dtype=np.float64) - min_rating) / (max_rating - min_rating)
        nu = int(n_users if n_users is not None else (u.max() + 1 if u.size else 0))
        ni = int(n_items if n_items is not None else (i.max() + 1 if i.size else 0))
        t = np.zeros(r.shape[0]) if created_at is None else np.asarray(created_at, dtype=np.float64)
        return cls(
            user_ids=np.array([str(k) for k in range(nu)], dtype=object),
            item_ids=np.array([str(k) for k in range(ni)], dtype=object),
            review_ids=np.array([str(k) for k in range(r.shape[0])], dtype=object),
            user_idx=u,
            item_idx=i,
            rating=r,
            created_at=t,
            item_min=np.full(ni, float(min_rating)),
            item_max=np.full(ni, float(max_rating)),
            item_topic=np.array(["reviews.public"] * ni, dtype=object),
        )


@dataclass(slots=True)
class TrustEdgeArrays:
    """Current trust edges (latest statement per truster, trustee, domain; unexpired) as arrays."""

    truster: StrArray
    trustee: StrArray
    domain: StrArray
    level: FloatArray
    created_at: FloatArray
