"""Per-observer trust-weighted ratings: seed 003's ``TrustWeightedRater`` (QRP-0001/0002), exact and fast.

For observer ``o`` and item ``i`` in topic ``τ``, every review ``r`` of ``i`` other than ``o``'s own gets
the weight :math:`w = T \\cdot H \\cdot A \\cdot R \\cdot F` of :mod:`truescore.trust.factors`, and

.. math::

    \\text{rating}(o, i) = \\operatorname{denorm}\\Big(\\frac{\\sum_r w(r)\\, z_r}{\\sum_r w(r)}\\Big)

over the reviews with :math:`T > 0` and :math:`w \\ge w_{min}`, where :math:`z_r = (r - \\min)/(\\max -
\\min)` puts every review on [0, 1] and ``denorm`` shows the result on the item's display scale. With no
such review the rating is None, not zero.

How it differs from the reference (Quidnug ``algorithm.py`` over a node)
------------------------------------------------------------------------
* T is the exact best path within ``max_depth_t`` edges (the node's BFS keeps only the first path to
  each node and stops at 10,000 queued states), per domain, with the topic-inheritance chain applied
  (the node ignores the domain);
* one search per (observer, domain) answers every reviewer (depth 5) and every voter (depth 3) of a
  request, and is cached with a TTL; a new trust edge drops only the cached searches that relaxed an
  edge out of its truster (the only ones it can change); a search also knows the earliest expiry among
  the edges it used and is recomputed after it;
* the path comes back, so ``top_intermediary_quid`` ("via Bob") and the full path are filled;
* A counts the reviewer's reviews in the topic (and its subtopics) over the activity window (the
  reference counts events on a stream); H ignores a reviewer's votes on their own reviews;
* moderator FLAGs, the verified-purchase bootstrap and optional edge decay are implemented.

``at`` sets the clock for recency, the activity window, which reviews/votes/flags exist (created at or
before it), edge expiry and edge decay; the trust graph itself is the current one (no time travel).

Every answer also carries the observer's personal estimate ``for_you`` (:mod:`truescore.trust.personal`).
This module keeps the orchestration, the cached searches and the per-reviewer factor caches
(:class:`~truescore.trust.cache.TTLCache`); the factor math is in :mod:`~truescore.trust.factors`, the
index look-ups behind A, H and F in :mod:`~truescore.trust.weights`, the result in
:mod:`~truescore.trust.assemble`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.config import PersonalSettings, TrustSettings
from truescore.domain import Flag, Item, Review, TrustEdge, User, Vote, to_epoch
from truescore.trust import factors
from truescore.trust.assemble import build_result, contributing_order, fill_baseline
from truescore.trust.cache import TTLCache
from truescore.trust.clock import clock_of
from truescore.trust.graph import BestPaths, NodeIndex, TrustGraph, member
from truescore.trust.index import ReviewIndex
from truescore.trust.personal import PersonalModel
from truescore.trust.results import TrustAnswer, WeightedRatingResult
from truescore.trust.topics import is_within, topic_chain, validate_topic
from truescore.trust.weights import BOOTSTRAP, NO_PATH, SELF, ReviewWeights, activity_counts, flags_on, votes_on

__all__ = ["CacheStats", "Rater"]

_SECONDS_PER_DAY = 86400.0
_NONE, _SELF, _BOOT = NO_PATH, SELF, BOOTSTRAP

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _touching(domain: str, tails: npt.NDArray[np.int64]) -> Callable[[Any, BestPaths], bool]:
    """A cache predicate: the search of ``domain`` whose best paths pass through one of ``tails``."""

    def predicate(key: Any, found: BestPaths) -> bool:
        return bool(key[1] == domain and found.touches(tails))

    return predicate


@dataclass(slots=True)
class CacheStats:
    """Counters of the (observer, domain) search cache."""

    searches: int = 0
    hits: int = 0
    invalidated: int = 0
    expired: int = 0


@dataclass(slots=True)
class _ReviewerValues:
    """Per-reviewer factor values (sorted reviewer node ids -> values) computed at clock ``at``.

    Cached under a token of what the values depend on: the index version and, for H, the very search
    objects (the observer's cached searches of the chain's domains) the voter trust came from, so a new
    edge that drops one of those searches also drops this entry.
    """

    reviewers: IntArray
    values: FloatArray
    at: float


class Rater:
    """Trust-weighted ratings over an in-memory trust graph and review index.

    Parameters
    ----------
    graph : TrustGraph
        Current trust edges of every domain.
    index : ReviewIndex
        Reviews, votes, flags and user roles, sharing ``graph.nodes``.
    settings : TrustSettings, optional
        Default: the documented defaults (``TrustSettings()``); the doors pass the configured section.
    personal : PersonalSettings, optional
        Settings of the personal estimate ``for_you``; default ``PersonalSettings()``.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> from truescore.domain import Item, Review, TrustEdge
    >>> now = datetime(2025, 1, 1, tzinfo=UTC)
    >>> rater = Rater.from_events(
    ...     items=[Item("x", "reviews.public.books")],
    ...     reviews=[Review("r1", "x", "bob", 4.0, now - timedelta(days=1))],
    ...     trust=[TrustEdge("alice", "bob", "reviews.public.books", 1.0, now)],
    ... )
    >>> round(rater.effective_rating("x", "alice", at=now).rating, 2)
    4.0
    """

    def __init__(
        self,
        graph: TrustGraph,
        index: ReviewIndex,
        settings: TrustSettings | None = None,
        personal: PersonalSettings | None = None,
    ) -> None:
        if index.nodes is not graph.nodes:
            raise ValueError("index must share the graph's NodeIndex (index.nodes is graph.nodes)")
        self.graph = graph
        self.index = index
        self.settings = settings if settings is not None else TrustSettings()
        self.personal_settings = personal if personal is not None else PersonalSettings()
        size, ttl = self.settings.cache_max_entries, self.settings.cache_ttl_seconds
        self.personal = PersonalModel(index, graph, self.personal_settings, TTLCache(size, ttl))
        self.stats = CacheStats()
        size, ttl = self.settings.cache_max_entries, self.settings.cache_ttl_seconds
        #: (observer node, domain) -> best-path search
        self.search_cache: TTLCache[BestPaths] = TTLCache(size, ttl)
        #: ("A" or "H", observer node, topic) -> per-reviewer factor values
        self._reviewer_cache: TTLCache[_ReviewerValues] = TTLCache(size, ttl)
        #: (item, topic) -> (clock, the baseline observer's weights)
        self._baseline_cache: TTLCache[tuple[float, ReviewWeights]] = TTLCache(size, ttl)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------------------
    # constructors
    # ------------------------------------------------------------------------------------------

    @classmethod
    def from_frames(
        cls,
        trust: pd.DataFrame,
        reviews: pd.DataFrame,
        votes: pd.DataFrame | None = None,
        flags: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        *,
        settings: TrustSettings | None = None,
        nodes: NodeIndex | None = None,
        personal: PersonalSettings | None = None,
    ) -> Rater:
        """Build from frames with the store's column names.

        ``trust`` needs ``truster_id, trustee_id, domain, level`` and optionally ``created_at`` and
        ``valid_until`` (epoch seconds); the latest statement per (truster, trustee, domain) wins.
        """
        missing = [c for c in ("truster_id", "trustee_id", "domain", "level") if c not in trust.columns]
        if missing:
            raise ValueError(f"trust frame lacks column(s) {missing}")
        graph = TrustGraph.from_arrays(
            trust["truster_id"].astype(str).to_numpy(dtype=object),
            trust["trustee_id"].astype(str).to_numpy(dtype=object),
            trust["domain"].astype(str).to_numpy(dtype=object),
            trust["level"].to_numpy(dtype=np.float64),
            trust["created_at"].to_numpy(dtype=np.float64) if "created_at" in trust.columns else None,
            pd.to_numeric(trust["valid_until"]).to_numpy(dtype=np.float64) if "valid_until" in trust.columns else None,
            nodes=nodes,
        )
        index = ReviewIndex.from_frames(graph.nodes, reviews, votes, flags, items, users)
        return cls(graph, index, settings, personal)

    @classmethod
    def from_events(
        cls,
        *,
        reviews: Iterable[Review] = (),
        items: Iterable[Item] = (),
        users: Iterable[User] = (),
        votes: Iterable[Vote] = (),
        trust: Iterable[TrustEdge] = (),
        flags: Iterable[Flag] = (),
        settings: TrustSettings | None = None,
        personal: PersonalSettings | None = None,
    ) -> Rater:
        """Build from domain objects (tests, small embeddings)."""
        edges = list(trust)
        frame = pd.DataFrame(
            {
                "truster_id": [e.truster_id for e in edges],
                "trustee_id": [e.trustee_id for e in edges],
                "domain": [e.domain for e in edges],
                "level": np.array([e.level for e in edges], dtype=np.float64),
                "created_at": np.array([to_epoch(e.created_at) for e in edges], dtype=np.float64),
                "valid_until": np.array(
                    [math.inf if e.valid_until is None else to_epoch(e.valid_until) for e in edges], dtype=np.float64
                ),
            }
        )
        graph = TrustGraph.from_arrays(
            frame["truster_id"].to_numpy(dtype=object),
            frame["trustee_id"].to_numpy(dtype=object),
            frame["domain"].to_numpy(dtype=object),
            frame["level"].to_numpy(),
            frame["created_at"].to_numpy(),
            frame["valid_until"].to_numpy(),
        )
        index = ReviewIndex(graph.nodes)
        index.add_reviews(reviews, items)
        index.add_users(users)
        index.add_votes(votes)
        index.add_flags(flags)
        return cls(graph, index, settings, personal)

    # ------------------------------------------------------------------------------------------
    # incremental updates
    # ------------------------------------------------------------------------------------------

    def add_trust_edge(
        self,
        edge: TrustEdge,
    ) -> bool:
        """Record a trust statement and drop exactly the cached searches it could change.

        Returns False if a newer statement about the same (truster, trustee, domain) already stands.
        """
        return self.add_trust_edges([edge]) == 1

    def add_trust_edges(self, edges: Iterable[TrustEdge]) -> int:
        """Record trust statements; returns how many changed the graph. Caches of searches that never
        relaxed an edge out of a changed truster in that domain stay valid."""
        changed: dict[str, list[int]] = {}
        count = 0
        with self._lock:
            for e in edges:
                vu = math.inf if e.valid_until is None else to_epoch(e.valid_until)
                if self.graph.add_edge(e.truster_id, e.trustee_id, e.domain, e.level, to_epoch(e.created_at), vu):
                    count += 1
                    changed.setdefault(validate_topic(e.domain, "domain"), []).append(
                        self.graph.nodes.get(e.truster_id)
                    )
            for domain, tails in changed.items():
                tail_arr = np.unique(np.asarray(tails, dtype=np.int64))
                self.stats.invalidated += self.search_cache.drop_where(_touching(domain, tail_arr))
        return count

    def add_reviews(self, reviews: Iterable[Review], items: Iterable[Item] = ()) -> None:
        with self._lock:
            self.index.add_reviews(reviews, items)

    def add_votes(self, votes: Iterable[Vote]) -> None:
        with self._lock:
            self.index.add_votes(votes)

    def remove_reviews(self, review_ids: Iterable[str]) -> int:
        """Forget reviews deleted from the store, with the votes and flags on them (incremental:
        :meth:`ReviewIndex.remove_reviews`); returns how many the index knew."""
        with self._lock:
            return self.index.remove_reviews(review_ids)

    def add_flags(self, flags: Iterable[Flag]) -> None:
        with self._lock:
            self.index.add_flags(flags)

    def add_users(self, users: Iterable[User]) -> None:
        with self._lock:
            self.index.add_users(users)

    def clear_cache(self) -> None:
        with self._lock:
            self.search_cache.clear()
            self.personal.estimates.clear()
            self._reviewer_cache.clear()
            self._baseline_cache.clear()

    # ------------------------------------------------------------------------------------------
    # trust
    # ------------------------------------------------------------------------------------------

    @property
    def _depth(self) -> int:
        return max(self.settings.max_depth_t, self.settings.max_depth_h)

    def _search(self, observer: int, domain: str, clock: float) -> BestPaths:
        """The observer's best-path search in ``domain``, from the cache while it is younger than the TTL,
        no edge it used has expired by ``clock`` and (with edge decay) it was computed for a clock
        within the TTL of this one."""
        s = self.settings
        key = (observer, domain)
        cache = self.search_cache
        if cache.enabled:
            expired_before = cache.expired
            found = cache.get(key)
            if found is not None:
                same_clock = s.edge_decay_half_life_days is None or abs(clock - found.at) <= s.cache_ttl_seconds
                if clock < found.expires_at and same_clock:
                    self.stats.hits += 1
                    return found
                cache.pop(key)
                self.stats.expired += 1
            elif cache.expired > expired_before:
                self.stats.expired += 1
        result = self.graph.search(
            observer, domain, self._depth, at=clock, edge_half_life_days=s.edge_decay_half_life_days
        )
        self.stats.searches += 1
        cache.put(key, result)
        return result

    def _topical(
        self, observer: int, targets: IntArray, chain: Sequence[tuple[str, int]], depth: int, clock: float
    ) -> tuple[FloatArray, IntArray]:
        """Topical trust in each target: ``max_k decay**steps_k * T_depth`` over the chain's domains.

        Returns the values (capped at 1) and the index in ``chain`` of the winning domain (``_NONE``,
        or ``_SELF`` where the target is the observer).
        """
        vals = np.zeros(targets.shape[0])
        which = np.full(targets.shape[0], _NONE, dtype=np.int64)
        if observer < 0 or targets.size == 0:
            return vals, which
        decay = self.settings.topic_inheritance_decay
        for k, (domain, steps) in enumerate(chain):
            if domain not in self.graph.domains:
                continue
            v = self._search(observer, domain, clock).values(targets, depth) * decay**steps
            better = v > vals
            vals[better] = v[better]
            which[better] = k
        me = targets == observer
        vals[me] = 1.0
        which[me] = _SELF
        return np.minimum(vals, 1.0), which

    def trust(
        self,
        observer: str,
        target: str,
        topic: str,
        *,
        max_depth: int | None = None,
        at: datetime | float | None = None,
    ) -> TrustAnswer:
        """Topical trust of ``observer`` in ``target`` for ``topic``, with the best path.

        Parameters
        ----------
        max_depth : int, optional
            Path length bound, at most ``max(max_depth_t, max_depth_h)``; defaults to ``max_depth_t``.
        """
        depth = self.settings.max_depth_t if max_depth is None else int(max_depth)
        if not 0 <= depth <= self._depth:
            raise ValueError(f"max_depth must lie in 0..{self._depth}, got {max_depth}")
        chain = topic_chain(topic)
        with self._lock:
            o, t = self.graph.nodes.get(observer), self.graph.nodes.get(target)
            if o < 0 or t < 0:
                return TrustAnswer(1.0 if observer == target else 0.0, [observer] if observer == target else None, None)
            clock = _clock(at)
            vals, which = self._topical(o, np.array([t]), chain, depth, clock)
            k = int(which[0])
            if k == _SELF:
                return TrustAnswer(1.0, [observer], chain[0][0], 0)
            if k == _NONE:
                return TrustAnswer(0.0, None, None, 0)
            domain, steps = chain[k]
            path = self._search(o, domain, clock).path(t, depth)
            ids = self.graph.nodes.ids_of(path) if path is not None else None
            return TrustAnswer(float(vals[0]), ids, domain, steps)

    def trust_levels(
        self,
        observer: str,
        targets: Sequence[str] | npt.ArrayLike,
        topic: str,
        *,
        max_depth: int | None = None,
        at: datetime | float | None = None,
    ) -> FloatArray:
        """Topical trust of ``observer`` in every user of ``targets`` (0 for unknown users), vectorised:
        one cached search per domain of the chain answers them all (no paths)."""
        depth = self.settings.max_depth_t if max_depth is None else int(max_depth)
        if not 0 <= depth <= self._depth:
            raise ValueError(f"max_depth must lie in 0..{self._depth}, got {max_depth}")
        chain = topic_chain(topic)
        ids = [str(t) for t in np.asarray(targets, dtype=object).ravel()]
        with self._lock:
            nodes = self.graph.nodes.lookup_many(ids).astype(np.int64)
            o = self.graph.nodes.get(observer)
            vals, _ = self._topical(o, nodes, chain, depth, _clock(at))
        vals[nodes < 0] = 0.0
        vals[np.array([t == observer for t in ids], dtype=bool)] = 1.0
        return vals

    # ------------------------------------------------------------------------------------------
    # ratings
    # ------------------------------------------------------------------------------------------

    def effective_rating(
        self,
        item_id: str,
        observer: str,
        *,
        topic: str | None = None,
        at: datetime | float | None = None,
        include_paths: bool = True,
        with_baseline: bool = True,
        with_personal: bool = True,
    ) -> WeightedRatingResult:
        """The rating ``observer`` should see for ``item_id`` (QRP-0001), with the QRP-0002 fields
        and the observer's personal estimate ``for_you`` (:mod:`truescore.trust.personal`).

        Parameters
        ----------
        item_id : str
        observer : str
            User id; an unknown observer trusts nobody and gets ``rating=None``.
        topic : str, optional
            Defaults to the item's topic.
        at : datetime or float, optional
            Clock (default now).
        include_paths : bool, default True
            Fill each contribution's full ``path`` (``top_intermediary_quid`` is always filled).
        with_baseline : bool, default True
            Also compute the anonymous baseline (the configured baseline observer's view).
        with_personal : bool, default True
            Also compute ``for_you`` (when ``PersonalSettings.enabled``).

        Raises
        ------
        ValueError
            If ``item_id`` is unknown or ``topic`` is malformed.
        """
        with self._lock:
            item, topic_name, clock = self._prepare(item_id, topic, at)
            own = self._weights(item, observer, topic_name, clock)
            c = contributing_order(own)
            paths = self._paths(observer, own, c, topic_name, clock)
            result = build_result(self.index, self.graph.nodes, self.settings, item, item_id, observer, topic_name,
                                  clock, own, c, paths, include_paths)
            if with_baseline:
                base_id = self.settings.baseline_observer_id
                base = own if observer == base_id else self._baseline_weights(item, topic_name, clock)
                fill_baseline(result, self.index, item, base)
            if with_personal and self.personal_settings.enabled:
                self._fill_personal(result, item, observer, clock, own, c, paths)
            return result

    def anonymous_baseline_rating(
        self,
        item_id: str,
        *,
        topic: str | None = None,
        at: datetime | float | None = None,
        include_paths: bool = False,
    ) -> WeightedRatingResult:
        """The rating the configured baseline observer (operator root) sees: the same for everyone,
        the value to show crawlers (see :func:`~truescore.trust.results.aggregate_rating_jsonld`)."""
        return self.effective_rating(
            item_id, self.settings.baseline_observer_id, topic=topic, at=at, include_paths=include_paths
        )

    # -- internals ------------------------------------------------------------------------------

    def _prepare(self, item_id: str, topic: str | None, at: datetime | float | None) -> tuple[int, str, float]:
        self.index.ensure()
        item = self.index.item_code(item_id)
        if item < 0:
            raise ValueError(f"item_id {item_id!r} is not known to the trust index")
        topic_name = validate_topic(topic) if topic is not None else str(self.index.item_topic[item])
        return item, topic_name, _clock(at)

    def _baseline_weights(self, item: int, topic: str, clock: float) -> ReviewWeights:
        """The baseline observer's weights for an item: the same for every request, so they are cached
        under the same rules as H (TTL, clock within the TTL, index version, identical searches)."""
        s = self.settings
        base_id = s.baseline_observer_id
        o = self.graph.nodes.get(base_id)
        if not self._baseline_cache.enabled:
            return self._weights(item, base_id, topic, clock)
        domains = [d for d, _ in topic_chain(topic)]
        domains += [d for d in sorted(self.graph.domains) if is_within(d, s.moderation_domain)]
        searches = tuple(self._search(o, d, clock) for d in domains if d in self.graph.domains) if o >= 0 else ()
        token = (self.index.version, *searches)
        key = (item, topic)
        hit = self._baseline_cache.get(key, token)
        if hit is not None and abs(clock - hit[0]) <= s.cache_ttl_seconds:
            return hit[1]
        weights = self._weights(item, base_id, topic, clock)
        self._baseline_cache.put(key, (clock, weights), token)
        return weights

    def _weights(self, item: int, observer_id: str, topic: str, clock: float) -> ReviewWeights:
        s, idx = self.settings, self.index
        o = self.graph.nodes.get(observer_id)
        rows = idx.item_review_rows(item)
        rows = rows[idx.r_created[rows] <= clock]
        if o >= 0:
            rows = rows[idx.r_user[rows] != o]
        users = idx.r_user[rows].astype(np.int64)
        uniq, inv = np.unique(users, return_inverse=True)
        chain = topic_chain(topic)
        t_u, which_u = self._topical(o, uniq, chain, s.max_depth_t, clock)
        T, which = t_u[inv], which_u[inv]

        boot_from = None
        verified = idx.r_verified[rows]
        if s.verified_purchase_bootstrap > 0 and idx.retailers.size and verified.any() and o >= 0:
            t_r, w_r = self._topical(o, idx.retailers.astype(np.int64), chain, s.max_depth_t, clock)
            best = int(np.argmax(t_r))
            floor_t = s.verified_purchase_bootstrap * float(t_r[best])
            lift = verified & (floor_t > T)
            if lift.any():
                T = T.copy()
                which = which.copy()
                T[lift] = floor_t
                which[lift] = _BOOT
                boot_from = (int(idx.retailers[best]), int(w_r[best]))

        a_u, h_u = self._activity_helpfulness(o, uniq, topic, chain, clock)
        age_days = (clock - idx.r_created[rows]) / _SECONDS_PER_DAY
        R = factors.recency(age_days, s.half_life_for(topic), s.recency_floor)
        F = self._flag_factors(o, rows, clock)
        A, H = a_u[inv], h_u[inv]
        w = T * H * A * R * F
        contrib = factors.contributing(T, w, s.min_weight)
        return ReviewWeights(rows, users, T, which, H, A, R, F, w, contrib, age_days, boot_from)

    def _activity_helpfulness(
        self, observer: int, reviewers: IntArray, topic: str, chain: Sequence[tuple[str, int]], clock: float
    ) -> tuple[FloatArray, FloatArray]:
        """A and H of each reviewer, from the per-reviewer caches where still valid.

        A depends on the reviewer, the topic and the clock; H also on the observer's searches. Seed 003
        allows caching helpfulness per observer for about five minutes; here an entry lives for
        ``cache_ttl_seconds``, for clocks within that span, and only while the index version and the
        searches it came from are unchanged (so new votes, reviews or relevant trust edges drop it).
        """
        version = self.index.version
        a_token: tuple[Any, ...] = (version,)
        A = self._cached_factor(
            ("A", -1, topic), a_token, reviewers, clock, lambda missing: self._activity(missing, topic, clock)
        )
        if observer < 0:
            return A, np.full(reviewers.shape[0], self.settings.helpfulness_neutral)
        searches = tuple(self._search(observer, d, clock) for d, _ in chain if d in self.graph.domains)
        h_token: tuple[Any, ...] = (version, *searches)
        H = self._cached_factor(
            ("H", observer, topic),
            h_token,
            reviewers,
            clock,
            lambda missing: self._helpfulness(observer, missing, topic, chain, clock),
        )
        return A, H

    def _cached_factor(
        self,
        key: tuple[str, int, str],
        token: tuple[Any, ...],
        reviewers: IntArray,
        clock: float,
        compute: Callable[[IntArray], FloatArray],
    ) -> FloatArray:
        """Values of ``compute`` for ``reviewers``, from the per-reviewer cache where present (computed
        for a clock within the TTL, under the same token); missing reviewers are computed and added."""
        cache = self._reviewer_cache
        entry = cache.get(key, token)
        if entry is not None and abs(clock - entry.at) > self.settings.cache_ttl_seconds:
            cache.pop(key)
            entry = None
        if entry is None:
            values = compute(reviewers)
            cache.put(key, _ReviewerValues(reviewers.copy(), values, clock), token)
            return values
        found, where = member(entry.reviewers, reviewers)
        out = np.empty(reviewers.shape[0])
        out[found] = entry.values[where[found]]
        if not found.all():
            missing = reviewers[~found]
            fresh = compute(missing)
            out[~found] = fresh
            keys = np.concatenate([entry.reviewers, missing])
            vals = np.concatenate([entry.values, fresh])
            order = np.argsort(keys, kind="stable")
            entry.reviewers, entry.values = keys[order], vals[order]
        return out

    def _activity(self, reviewers: IntArray, topic: str, clock: float) -> FloatArray:
        """A: ``min(1, ln(n + 1) / ln(saturation))``, n = reviews in the topic (and subtopics) created
        in ``(clock - window, clock]``."""
        s = self.settings
        counts = activity_counts(self.index, reviewers, topic, clock, s.activity_window_days)
        return factors.activity(counts, s.activity_saturation)

    def _helpfulness(
        self, observer: int, reviewers: IntArray, topic: str, chain: Sequence[tuple[str, int]], clock: float
    ) -> FloatArray:
        """H: votes on the reviewers' reviews in the topic, each weighted by the observer's topical trust
        in the voter within ``max_depth_h`` edges; a reviewer's votes on their own reviews are ignored."""
        s = self.settings
        voters, vowner, helpful = votes_on(self.index, reviewers, topic, clock)
        tv, _ = self._topical(observer, voters, chain, s.max_depth_h, clock)
        n = reviewers.shape[0]
        hp = np.bincount(vowner, weights=tv * helpful, minlength=n)
        un = np.bincount(vowner, weights=tv * ~helpful, minlength=n)
        return factors.helpfulness(hp, un, s.helpfulness_neutral, s.helpfulness_floor)

    def _flag_factors(self, observer: int, rows: IntArray, clock: float) -> FloatArray:
        """F for each row: ``prod max(0, 1 - p * severity)`` over flags by moderators the observer
        trusts at or above the threshold in the moderation domain or its subdomains."""
        s = self.settings
        F = np.ones(rows.shape[0])
        if observer < 0 or s.flag_penalty_per_severity == 0:
            return F
        flaggers, fowner, severity = flags_on(self.index, rows, clock)
        if flaggers.size == 0:
            return F
        chain = [(d, 0) for d in sorted(self.graph.domains) if is_within(d, s.moderation_domain)]
        trust, _ = self._topical(observer, flaggers, chain, s.max_depth_t, clock)
        counted = trust >= s.moderator_trust_threshold
        factor = np.maximum(0.0, 1.0 - s.flag_penalty_per_severity * severity)
        np.multiply.at(F, fowner[counted], factor[counted])
        return F

    def _paths(self, observer: str, wt: ReviewWeights, c: IntArray, topic: str, clock: float) -> list[list[str] | None]:
        """Best path (as user ids) of every contributing row, vectorised per winning domain."""
        out: list[list[str] | None] = [None] * c.shape[0]
        o = self.graph.nodes.get(observer)
        if o < 0 or c.size == 0:
            return out
        nodes = self.graph.nodes
        chain = topic_chain(topic)
        which = wt.which[c]
        users = wt.users[c]
        depth = self.settings.max_depth_t
        for k in np.unique(which[which >= 0]).tolist():
            sel = np.flatnonzero(which == k)
            matrix = self._search(o, chain[k][0], clock).paths(users[sel], depth)
            lengths = (matrix >= 0).sum(axis=1).tolist()
            names = nodes.ids_array(np.where(matrix >= 0, matrix, 0)).tolist()
            for j, row, length in zip(sel.tolist(), names, lengths, strict=True):
                out[j] = row[:length]
        boot = np.flatnonzero(which == _BOOT)
        if boot.size and wt.boot_from is not None:
            retailer, k = wt.boot_from
            head = [observer] if k == _SELF else None
            if k >= 0:
                p = self._search(o, chain[k][0], clock).path(retailer, depth)
                head = nodes.ids_of(p) if p is not None else None
            if head is not None:
                for j in boot.tolist():
                    out[j] = [*head, nodes.id_of(int(users[j]))]
        return out

    def _fill_personal(self, result: WeightedRatingResult, item: int, observer: str, clock: float,
                       own: ReviewWeights, c: IntArray, paths: list[list[str] | None]) -> None:
        """``for_you`` from the contributing rows ``c`` and their best paths (hops = path length)."""
        hops = np.array([len(p) - 1 if p is not None and len(p) > 1 else 1 for p in paths], dtype=np.int64)
        est = self.personal.estimate(
            item, self.graph.nodes.get(observer), clock, own.users[c], self.index.r_norm[own.rows[c]], own.w[c], hops
        )
        result.for_you, result.for_you_sd, result.for_you_explanation = est.for_you, est.for_you_sd, est.explanation
        result.for_you_public, result.for_you_public_sd = est.public, est.public_sd
        result.for_you_calibration, result.for_you_calibration_ratings = est.calibration, est.calibration_ratings
        result.for_you_trust_mean, result.for_you_trust_shift = est.trust_mean, est.trust_shift
        result.for_you_trust_reviews, result.for_you_trust_agreement = est.trust_reviews, est.trust_agreement

def _clock(at: datetime | float | str | None) -> float:
    return clock_of(at)
