"""The trust engine over a store: a :class:`~truescore.trust.Rater` built from the store's current events."""

from __future__ import annotations

from truescore.config import TrustSettings
from truescore.store import Store
from truescore.trust import Rater

__all__ = ["rater_from_store"]


def rater_from_store(store: Store, settings: TrustSettings | None = None) -> Rater:
    """Load the current trust edges, reviews, votes, flags, items and user roles of ``store`` into a Rater.

    Uses ``store.trust_frame()`` (latest statement per edge, expired and withdrawn ones dropped),
    ``review_frame(with_text=False)``, ``vote_frame()``, ``flag_frame()``, ``item_frame()`` and
    ``user_frame()``.
    """
    return Rater.from_frames(store.trust_frame(), store.review_frame(with_text=False), store.vote_frame(),
                             store.flag_frame(), store.item_frame(), store.user_frame(), settings=settings)
