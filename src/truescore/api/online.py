"""Live reliability estimates for the API: the reliability engine's online updater over the store.

At startup (and after every refit or rebuild) the server fits
:class:`truescore.reliability.online.OnlineReliability` to the store's snapshot; each review written
through the API is then fed to :meth:`~truescore.reliability.online.OnlineReliability.update`, so
``GET /items/{id}/quality`` and ``GET /users/{id}/reliability`` move with the writes instead of waiting
for the next batch fit. This module only maps ids to the updater's inner indices and caches its
:meth:`~truescore.reliability.online.OnlineReliability.result` between writes.

Limits (the updater's): the model without rater bias (``reliability.use_bias = False``) and the VB
backend only.

The model holds one rating per user and item, like the store's snapshot (a user's current review of the
item). A review written through the API becomes that rating (:meth:`OnlineEstimates.add`): if the model
already holds one for the pair (the review replaces its author's earlier review), the old rating is
downdated and the new one added (:meth:`OnlineReliability.replace
<truescore.reliability.online.OnlineReliability.replace>`), so the rater's sufficient statistics
:math:`n_u, S_u` lose exactly what the old rating contributed; otherwise it is a new rating.
:meth:`OnlineEstimates.remove` (a deleted review) and :meth:`OnlineEstimates.erase` (an erased user) are
the downdates of one rating and of all of a user's ratings. (The routes that delete reviews and erase
users currently rebuild the whole engine state from the store, which refits this model too.)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from truescore.config import ReliabilitySettings
from truescore.domain import RatingSnapshot, normalise
from truescore.reliability import ReliabilityResult
from truescore.reliability.online import OnlineReliability

__all__ = ["OnlineEstimates", "online_supported"]


def online_supported(settings: ReliabilitySettings) -> bool:
    """The online updater covers the VB model without rater bias."""
    return settings.backend == "vb" and not settings.use_bias


class OnlineEstimates:
    """The online reliability model of one server process, addressed by external ids.

    Parameters
    ----------
    snapshot : RatingSnapshot
        The store's ratings to start from (batch VB fit).
    settings : ReliabilitySettings
    """

    def __init__(self, snapshot: RatingSnapshot, settings: ReliabilitySettings) -> None:
        self.model = OnlineReliability(settings).fit(snapshot)
        self.fitted_at = time.time()
        self._user_ids: list[str] = [str(u) for u in snapshot.user_ids.tolist()]
        self._item_ids: list[str] = [str(i) for i in snapshot.item_ids.tolist()]
        self._users = {u: k for k, u in enumerate(self._user_ids)}
        self._items = {i: k for k, i in enumerate(self._item_ids)}
        self._item_min = snapshot.item_min.tolist()
        self._item_max = snapshot.item_max.tolist()
        self._result: ReliabilityResult | None = None
        self._result_at = -1

    def _pair(self, r: dict[str, Any]) -> tuple[int, int]:
        """Inner indices of a review's user and item, creating new ones (new items take its scale)."""
        u = self._users.get(r["user_id"])
        if u is None:
            u = self._users[r["user_id"]] = len(self._user_ids)
            self._user_ids.append(r["user_id"])
        i = self._items.get(r["item_id"])
        if i is None:
            i = self._items[r["item_id"]] = len(self._item_ids)
            self._item_ids.append(r["item_id"])
            self._item_min.append(float(r["min_rating"]))
            self._item_max.append(float(r["max_rating"]))
        return u, i

    def add(self, reviews: Sequence[dict[str, Any]]) -> int:
        """Make each review (rows with item_id, user_id, rating, min_rating, max_rating), in order, its
        author's current rating of the item: a replace (downdate of the rating the model holds for the
        pair, then the update with the new one) if there is one, else a new rating; a batch that
        :meth:`OnlineReliability.prefers_extend` is merged at once by :meth:`OnlineReliability.extend` (one
        full sweep).
        Returns how many replaced a rating."""
        if self.model.prefers_extend(len(reviews)):
            # one warm-started full sweep over every rating (about 11 ms on the demo store's 40,000) instead
            # of a chain of updates (about 0.7 ms of Python each, a replace twice that: 7 s for 10,000)
            pairs = [self._pair(r) for r in reviews]
            values = [normalise(float(r["rating"]), float(r["min_rating"]), float(r["max_rating"])) for r in reviews]
            return self.model.extend([p[0] for p in pairs], [p[1] for p in pairs], values)
        replaced = 0
        for r in reviews:
            u, i = self._pair(r)
            x = normalise(float(r["rating"]), float(r["min_rating"]), float(r["max_rating"]))
            held = self.model.ratings_of(u, i).shape[0]
            if held:
                self.model.replace(u, i, x)
                replaced += 1
            else:
                self.model.update(u, i, x)
        return replaced

    def replace(self, reviews: Sequence[dict[str, Any]]) -> int:
        """Reviews that replace their author's current rating of the item: the same as :meth:`add` (which
        tells a replace from a first rating by the pairs the model holds). Returns how many replaced."""
        return self.add(reviews)

    def remove(self, user_id: str, item_id: str) -> int:
        """A deleted review: the downdate of ``user_id``'s rating of ``item_id`` (see
        :meth:`OnlineReliability.remove <truescore.reliability.online.OnlineReliability.remove>`).
        Returns how many ratings were removed (0: the model holds none for the pair)."""
        u, i = self._users.get(user_id), self._items.get(item_id)
        if u is None or i is None:
            return 0
        return self.model.remove(u, i)

    def erase(self, user_id: str) -> int:
        """An erased user: the downdate of all of ``user_id``'s ratings (see :meth:`OnlineReliability.remove_user
        <truescore.reliability.online.OnlineReliability.remove_user>`). Returns how many were removed."""
        u = self._users.get(user_id)
        return 0 if u is None else self.model.remove_user(u)

    def result(self) -> ReliabilityResult:
        """The current estimates (recomputed only after new ratings)."""
        n = self.model.n_changes_
        if self._result is None or self._result_at != n:
            n_users, n_items = self.model.n_users_, self.model.n_items_
            view = RatingSnapshot(
                user_ids=np.array(self._user_ids[:n_users], dtype=object),
                item_ids=np.array(self._item_ids[:n_items], dtype=object),
                review_ids=np.empty(0, dtype=object), user_idx=np.empty(0, dtype=np.int64),
                item_idx=np.empty(0, dtype=np.int64), rating=np.empty(0), created_at=np.empty(0),
                item_min=np.array(self._item_min[:n_items]), item_max=np.array(self._item_max[:n_items]),
                item_topic=np.empty(0, dtype=object),
            )
            self._result, self._result_at = self.model.result(view), n
        return self._result

    def item(self, item_id: str) -> dict[str, Any] | None:
        """Seed 000's item record (quality on the item's scale), or None for an item without ratings."""
        k = self._items.get(item_id)
        if k is None:
            return None
        res = self.result()
        if res.item_n_ratings[k] == 0:
            return None
        return {"item_id": item_id, "quality": float(res.item_quality[k]), "quality_sd": float(res.item_quality_sd[k]),
                "n_ratings": int(res.item_n_ratings[k]), "effective_weight": float(res.item_effective_weight[k])}

    def user(self, user_id: str) -> dict[str, Any] | None:
        """Seed 000's rater record, or None for a user without ratings."""
        k = self._users.get(user_id)
        if k is None:
            return None
        res = self.result()
        if res.user_n_ratings[k] == 0:
            return None
        return {"user_id": user_id, "reliability": float(res.reliability[k]),
                "reliability_lo": float(res.reliability_lo[k]), "reliability_hi": float(res.reliability_hi[k]),
                "bias": float(res.bias[k]), "n_ratings": int(res.user_n_ratings[k])}
