"""Per-process engine state of the API: the trust engine's Rater and the item summaries, kept warm.

Reads are answered from this cached state; writes that come through the API are applied to it
incrementally (the Rater's ``add_reviews`` / ``add_votes`` / ``add_trust_edges`` / ``add_flags``), so a
write is visible to the very next read. Events written or erased by other processes (a CLI import,
another server) are noticed by a periodic check of the store-wide change sequence
(``api.refresh_seconds``): every transaction that changes events increments it, so a process whose
cached state was built at sequence ``s`` rebuilds as soon as the store is past ``s`` plus its own
writes. The Rater is rebuilt in the background and swapped in. A rebuild holds no lock that writes or
reads wait for while it reads the store and builds: writes that commit meanwhile are applied to the old
state and journalled, and the journal is replayed onto the new state under the write lock just before
the swap (:meth:`ApiState.rebuild`), so a rebuild (a few seconds on the demo store) stalls nobody.

Cost of a write to the reads (issue 10): applying it merges the new events into the trust engine's
index incrementally (:meth:`truescore.trust.index.ReviewIndex.ensure`: appended columns and recomputed
offsets, a few milliseconds, not a rebuild of the index) and refits the personal model's offsets with
its trust covariances kept (:mod:`truescore.trust.personal`). The write buffers its events; the next
read merges every buffered write at once, under :attr:`ApiState.read_lock`, in a worker thread, so it
(and every later read on this process) sees the write. The covariances are re-estimated
by a background rebuild of the Rater (the refresher, every ``api.refresh_seconds``) once
``personal.hyper_refresh_events`` events were written since they were estimated: until then ``for_you``
uses covariances that are at most that many events old (the offsets and every review are current).

Nothing here computes a rating: the numbers come from :class:`truescore.trust.Rater` and from the
derived tables the engines write; this module only decides when to rebuild what.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from truescore.api.limits import Limiter
from truescore.api.online import OnlineEstimates, online_supported
from truescore.config import Settings
from truescore.domain import Flag, FlagReason, Item, Review, TrustEdge, Vote, from_epoch
from truescore.store import Store, service
from truescore.trust import Rater, WeightedRatingResult

__all__ = ["ApiState", "ItemSummary"]

log = logging.getLogger("truescore.api")

#: columns of the store's frames that the trust engine's index reads (ReviewIndex.from_frames)
_RATER_COLUMNS = {
    "reviews": ["id", "item_id", "user_id", "rating", "min_rating", "max_rating", "created_at",
                "verified_purchase", "supersedes", "topic"],
    "votes": ["review_id", "voter_id", "helpful", "created_at"],
    "flags": ["review_id", "flagger_id", "severity", "created_at"],
    "items": ["id", "topic"],
    "users": ["id", "role"],
}


def _columns(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    cols = _RATER_COLUMNS[table]
    if frame.empty and not len(frame.columns):
        return pd.DataFrame(columns=cols)
    return frame[[c for c in cols if c in frame.columns]]


def build_rater(store: Store, settings: Settings) -> Rater:
    """A trust-engine Rater over everything in ``store`` (current trust edges, reviews, votes, flags)."""
    rater = Rater.from_frames(
        store.trust_frame(),
        _columns(store.review_frame(with_text=False), "reviews"),
        _columns(store.vote_frame(), "votes"),
        _columns(store.flag_frame(), "flags"),
        _columns(store.item_frame(), "items"),
        _columns(store.user_frame(), "users"),
        settings=settings.trust,
        personal=settings.personal,
    )
    rater.index.ensure()  # build the arrays now, before the Rater is shared between threads
    # a read never re-estimates the personal model's trust covariances (a graph search per sampled
    # observer, ~0.6 s on the demo store): the refresher rebuilds the Rater off the read path instead
    rater.personal.inline_hyper_refresh = False
    if settings.personal.enabled:
        rater.personal.fit_for(float("inf"))  # and the personal model's fit of every rating
    return rater


@dataclass(slots=True)
class ItemSummary:
    """What the product list shows for one item (None where no engine has written a row yet)."""

    n_reviews: int = 0
    plain_mean: float | None = None
    scale_min: float = 1.0
    scale_max: float = 5.0
    quality: float | None = None
    quality_sd: float | None = None
    fused_mean: float | None = None
    fused_sd: float | None = None
    lower_bound: float | None = None
    love_score: float | None = None
    tier: str | None = None


@dataclass(slots=True)
class _Summaries:
    items: dict[str, ItemSummary] = field(default_factory=dict)
    observers: list[tuple[str, int]] = field(default_factory=list)
    review_scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    rankings: list[dict[str, Any]] = field(default_factory=list)
    built_at: float = 0.0
    version: int = -1


@dataclass(slots=True)
class _Journalled:
    """A write applied while a rebuild was under way: events of ``kind`` (``rows``), or a deletion of
    ``user_id``'s reviews ``review_ids`` of ``item_id``; ``seq`` is the change sequence it committed."""

    kind: str
    rows: list[dict[str, Any]]
    review_ids: list[str] | None = None
    user_id: str = ""
    item_id: str = ""
    seq: int | None = None


def _num(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return None if f != f else f


class ApiState:
    """The store, the settings and the cached engine state of one server process.

    Parameters
    ----------
    store : Store
    settings : Settings
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.started = time.time()
        #: bumped whenever the cached state changes (a write applied, a rebuild, a job finished)
        self.version = 0
        self._rater: Rater | None = None
        self._online: OnlineEstimates | None = None
        self._build_lock = threading.Lock()
        #: serialises API writes so that the store and the cached state see them in the same order
        self.write_lock = threading.Lock()
        #: serialises every use of the Rater: its index rebuilds lazily after writes and is not thread-safe
        self.read_lock = threading.RLock()
        #: serialises use of the online reliability model (apart from the Rater's lock, so that feeding
        #: a large batch to the online model does not hold up rating reads)
        self.online_lock = threading.RLock()
        self._summaries = _Summaries()
        self._summary_lock = threading.Lock()
        #: the store's change sequence that the cached state has seen (None: not built yet)
        self._seen_seq: int | None = None
        #: writes applied while a rebuild is under way (None: no rebuild), replayed onto the new state
        self._journal: list[_Journalled] | None = None
        #: the derived-results sequence and the fit run the cached summaries and online model were built from
        self._seen_derived = store.derived_seq()
        self._seen_fit = self._fit_token()
        #: why the store cannot be used (deleted, replaced, dropped), found by the refresher; reads answer 503
        self.store_problem: str | None = None
        #: per-key rate limits and quotas (api.rate_*)
        self.limiter = Limiter(store, settings)
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    # ------------------------------------------------------------------ the trust engine
    @property
    def rater(self) -> Rater:
        """The process's Rater, built from the store on first use."""
        rater = self._rater
        if rater is None:
            # as a rebuild: writes during the build are journalled and replayed before the state is used
            with self._build_lock:
                if self._rater is None:
                    self._rebuild_built()
            rater = self._rater
            assert rater is not None
        return rater

    @property
    def rater_ready(self) -> bool:
        return self._rater is not None

    def knows_item(self, item_id: str) -> bool:
        """Is ``item_id`` known to the trust engine (and so to the store)?"""
        with self.read_lock:
            if self.rater.index.item_code(item_id) >= 0:
                return True
        if self.store.get_item(item_id) is None:
            return False
        # stored by another process since the Rater was built: rebuild now, the read must see it
        self.rebuild()
        with self.read_lock:
            return self.rater.index.item_code(item_id) >= 0

    def rating(self, item_id: str, observer: str, topic: str | None, include_paths: bool = True,
               at: float | None = None) -> WeightedRatingResult | None:
        """The trust engine's rating of ``item_id`` for ``observer`` as of ``at`` (default now), with
        ``for_you``; None if the item is unknown."""
        if not self.knows_item(item_id):
            return None
        with self.read_lock:
            return self.rater.effective_rating(item_id, observer, topic=topic, include_paths=include_paths, at=at)

    def baseline(self, item_id: str, topic: str | None) -> WeightedRatingResult | None:
        """The anonymous baseline (operator root's view) of ``item_id``; None if the item is unknown."""
        if not self.knows_item(item_id):
            return None
        with self.read_lock:
            return self.rater.anonymous_baseline_rating(item_id, topic=topic)

    def _build_online(self) -> OnlineEstimates | None:
        if not online_supported(self.settings.reliability):
            return None
        return OnlineEstimates(self.store.snapshot(), self.settings.reliability)

    def refit_online(self) -> None:
        """Restart the online reliability model from the store (after a batch fit rewrote the tables)."""
        _ = self.rater
        with self.write_lock:
            online = self._build_online()
            with self.online_lock:
                self._online = online
            self.version += 1

    def quality(self, item_id: str) -> dict[str, Any] | None:
        """The online reliability model's estimate of an item (None: no online model, or no ratings)."""
        _ = self.rater
        with self.online_lock:
            online = self._online
            return None if online is None else online.item(item_id)

    def reliability(self, user_id: str) -> dict[str, Any] | None:
        """The online reliability model's estimate of a rater (None: no online model, or no ratings)."""
        _ = self.rater
        with self.online_lock:
            online = self._online
            return None if online is None else online.user(user_id)

    @property
    def online_fitted_at(self) -> float | None:
        online = self._online
        return None if online is None else online.fitted_at

    def rebuild(self) -> None:
        """Rebuild the Rater and the online model from the store and swap them in. Reads keep using the
        old state meanwhile, and so do writes: the build holds no lock that a write waits for. Each write
        that commits during the build is applied to the old state as usual and also journalled; under the
        write lock, the journal is replayed onto the new state (an event the build already read is a no-op
        there: the index and the trust graph keep the first statement of a key, the online model replaces
        a rating by the same value, a deletion of what is gone removes nothing) and the new state is
        swapped in, so no write falls between reading the store and the swap."""
        with self._build_lock:
            self._rebuild_built()

    def _rebuild_built(self) -> None:
        """:meth:`rebuild`; the caller holds ``_build_lock`` (and not ``write_lock``)."""
        started = time.perf_counter()
        with self.write_lock:
            seq = service.current_seq(self.store)
            self._journal = []
        try:
            rater = build_rater(self.store, self.settings)
            online = self._build_online()
        except BaseException:
            with self.write_lock:
                self._journal = None
            raise
        with self.write_lock:
            journal, self._journal = self._journal or [], None
            seen = seq
            for entry in journal:
                self._replay(rater, online, entry)
                if entry.seq is not None and entry.seq == seen + 1:  # still current if no other process wrote
                    seen = entry.seq
            with self.online_lock:
                self._rater, self._online, self._seen_seq = rater, online, seen
            self.version += 1
        log.info("engine state rebuilt from the store in %.2f s (version %d, %d writes replayed)",
                 time.perf_counter() - started, self.version, len(journal))

    def _replay(self, rater: Rater, online: OnlineEstimates | None, entry: _Journalled) -> None:
        """Apply a write journalled during a rebuild to the new state (a no-op for what the build read)."""
        if entry.review_ids is not None:
            if entry.review_ids:
                rater.remove_reviews(entry.review_ids)
                if online is not None:
                    online.remove(entry.user_id, entry.item_id)
            return
        self._apply_to_rater(rater, entry.kind, entry.rows)
        if entry.kind == "reviews" and online is not None:
            online.add(entry.rows)

    # ------------------------------------------------------------------ writes
    def apply(self, kind: str, rows: Sequence[dict[str, Any]], inserted: int,
              new_rows: Sequence[dict[str, Any]] = (), seq: int | None = None) -> None:
        """Apply events just written to the store (validated rows, epoch times) to the cached state.

        ``rows`` are the events that are new and current (a review older than its author's current
        review of the item is history and not applied); ``new_rows`` are the reviews among them that are
        a user's first rating of an item. Every review of ``rows`` is fed, in order, to the online
        reliability model (:meth:`OnlineEstimates.add`), which replaces the rating it holds for the
        (user, item) pair by the exact downdate of the old rating followed by the update with the new
        one, and adds a rating for a pair it does not hold (it decides by the pairs it holds, which are
        the store's current reviews, so ``new_rows`` is not needed for it). ``seq`` is the
        change sequence the write committed: if it directly follows the one the state has seen, no
        other process wrote in between and the state stays current; otherwise the next check of the
        store rebuilds it. The caller holds :attr:`write_lock` from before the store write until this
        returns.
        """
        if self._journal is not None and (rows or seq is not None):  # (a seq alone keeps the state current)
            self._journal.append(_Journalled(kind, list(rows), seq=seq))
        rater = self._rater
        if rater is not None and rows:
            with self.read_lock:
                # buffered; the next read merges it incrementally (milliseconds, in a worker thread, see
                # try_rating), and merges every write since the previous read at once
                self._apply_to_rater(rater, kind, rows)
            with self.online_lock:
                if kind == "reviews" and self._online is not None:
                    self._online.add(rows)
        if seq is not None and self._seen_seq is not None and seq == self._seen_seq + 1:
            self._seen_seq = seq
        self.version += 1

    def apply_deletion(self, user_id: str, item_id: str, review_ids: Sequence[str], seq: int | None = None) -> None:
        """Apply a deletion just committed (``user_id``'s reviews ``review_ids`` of ``item_id``, with the votes
        and flags on them) to the cached state incrementally: the trust engine's index drops their rows
        (:meth:`~truescore.trust.Rater.remove_reviews`, merged on the next read) and the online reliability
        model downdates the rating exactly (:meth:`OnlineEstimates.remove`); no rebuild. As :meth:`apply`,
        under :attr:`write_lock`, and ``seq`` keeps the state current when no other process wrote."""
        if self._journal is not None and (review_ids or seq is not None):
            self._journal.append(_Journalled("reviews", [], list(review_ids), user_id, item_id, seq))
        rater = self._rater
        if rater is not None and review_ids:
            with self.read_lock:
                rater.remove_reviews(review_ids)
            with self.online_lock:
                if self._online is not None:
                    self._online.remove(user_id, item_id)
        if seq is not None and self._seen_seq is not None and seq == self._seen_seq + 1:
            self._seen_seq = seq
        self.version += 1

    def user_roles(self, user_ids: Sequence[str]) -> dict[str, str]:
        """Stored role of each known user of ``user_ids``."""
        return {k: str(v["role"]) for k, v in self.store.rows_by_key("users", list(user_ids)).items()}

    def try_rating(self, item_id: str, observer: str, topic: str | None, include_paths: bool = True,
                   at: float | None = None) -> WeightedRatingResult | bool | None:
        """:meth:`rating` without waiting: False when it would block (the engine is being built, a write
        holds the lock, or the item is not in the cached state), so an ``async`` route can hand the
        request to a worker thread instead of stalling the event loop."""
        rater = self._rater
        # an index with buffered writes merges them on its next use (incrementally, milliseconds): let a
        # worker thread do that rather than the event loop
        if rater is None or not getattr(rater.index, "_built", True) or not self.read_lock.acquire(blocking=False):
            return False
        try:
            if rater.index.item_code(item_id) < 0:
                return False
            return rater.effective_rating(item_id, observer, topic=topic, include_paths=include_paths, at=at)
        finally:
            self.read_lock.release()

    @staticmethod
    def _apply_to_rater(rater: Rater, kind: str, rows: Sequence[dict[str, Any]]) -> None:
        if kind == "reviews":
            reviews = [_review(r) for r in rows]
            items = [Item(r["item_id"], r["topic"], r.get("item_title"), from_epoch(r["created_at"]))
                     for r in rows if r.get("topic")]
            rater.add_reviews(reviews, items)
        elif kind == "votes":
            rater.add_votes(Vote(r["review_id"], r["voter_id"], bool(r["helpful"]), from_epoch(r["created_at"]))
                            for r in rows)
        elif kind == "trust":
            rater.add_trust_edges(_edge(r) for r in rows)
        elif kind == "flags":
            rater.add_flags(Flag(r["review_id"], r["flagger_id"], FlagReason(r["reason"]), float(r["severity"]),
                                 from_epoch(r["created_at"])) for r in rows)
        elif kind == "verdicts":  # verdicts feed `truescore score` (the integrity job), not the trust engine
            return
        else:  # pragma: no cover - the routes only post these five kinds
            raise ValueError(f"unknown event kind {kind!r}")

    def derived_changed(self) -> None:
        """A job of this process rewrote derived tables: the summaries must be rebuilt (and the refresher
        need not react to this process's own results again)."""
        with contextlib.suppress(Exception):  # the store may be down: the next check sees the rest
            self._seen_derived = self.store.derived_seq()
            self._seen_fit = self._fit_token()
        self.version += 1

    # ------------------------------------------------------------------ summaries
    def summaries(self) -> _Summaries:
        """Item summaries, observers, review scores and rankings, rebuilt when the state changed
        (at most every ``api.summary_ttl_seconds``)."""
        current = self._summaries
        ttl = self.settings.api.summary_ttl_seconds
        if current.version == self.version or (current.version >= 0 and time.time() - current.built_at < ttl):
            return current
        with self._summary_lock:
            if self._summaries.version == self.version:
                return self._summaries
            version = self.version
            self._summaries = self._build_summaries(version)
            return self._summaries

    def _build_summaries(self, version: int) -> _Summaries:
        store = self.store
        out = _Summaries(built_at=time.time(), version=version)
        snap = store.snapshot()
        if snap.n_ratings:
            n = np.bincount(snap.item_idx, minlength=snap.n_items)
            mean = np.bincount(snap.item_idx, weights=snap.rating, minlength=snap.n_items) / np.maximum(n, 1)
            for k, iid in enumerate(snap.item_ids.tolist()):
                lo, hi = float(snap.item_min[k]), float(snap.item_max[k])
                out.items[str(iid)] = ItemSummary(int(n[k]), lo + float(mean[k]) * (hi - lo), lo, hi)
        for row in store.read_derived("item_quality"):
            s = out.items.setdefault(row["item_id"], ItemSummary())
            s.quality, s.quality_sd = _num(row["quality"]), _num(row["quality_sd"])
        rankings = []
        for row in store.read_derived("product_rankings"):
            s = out.items.setdefault(row["item_id"], ItemSummary())
            s.fused_mean, s.fused_sd = _num(row["fused_mean"]), _num(row["fused_sd"])
            s.lower_bound, s.love_score, s.tier = _num(row["lower_bound"]), _num(row["love_score"]), row["tier"]
            rankings.append(ranking_row(row))
        out.rankings = rankings
        out.review_scores = {row["review_id"]: row for row in store.read_derived("review_scores")}
        trust = store.trust_frame()
        if len(trust):
            counts = trust.groupby("truster_id").size().sort_values(ascending=False, kind="stable")
            out.observers = [(str(k), int(v)) for k, v in counts.items()]
        return out

    # ------------------------------------------------------------------ changes by other processes
    def _fit_token(self) -> tuple[str, float] | None:
        run = self.store.last_run("fit")
        return None if run is None else (str(run["model_version"]), float(run["finished_at"]))

    def check_derived(self) -> bool:
        """Derived results written by another process (a CLI fit, score or rank, a Spark import): the
        summaries are rebuilt on the next read, and a new fit restarts the online model; returns whether
        anything changed."""
        seq = self.store.derived_seq()
        if seq == self._seen_derived:
            return False
        self._seen_derived = seq
        fit = self._fit_token()
        if fit != self._seen_fit:
            self._seen_fit = fit
            if self._rater is not None:
                self.refit_online()
        self.version += 1
        return True

    def check_identity(self) -> str | None:
        """Check that the store is still the one this process opened (:meth:`Store.identity_problem`) and
        remember the answer for the reads (:attr:`store_problem`)."""
        self.store_problem = self.store.identity_problem()
        return self.store_problem

    def check_store(self) -> bool:
        """Rebuild if the store's change sequence moved past what this process has seen (another
        process wrote or erased events); see derived results another process wrote; returns whether the
        cached state changed."""
        if self.check_identity() is not None:
            return False
        changed = self.check_derived()
        if self._rater is None:
            return changed
        with self._build_lock:
            with self.write_lock:
                if service.current_seq(self.store) == self._seen_seq and not self._personal_stale():
                    return changed
            self._rebuild_built()  # off the write lock: writes go on meanwhile and are replayed
            return True

    def _personal_stale(self) -> bool:
        """Have this process's own writes merged ``personal.hyper_refresh_events`` events since the
        personal model's trust covariances were estimated? (Then the refresher rebuilds the Rater in
        the background, reads keep the current one meanwhile.)"""
        rater = self._rater
        if rater is None or not self.settings.personal.enabled:
            return False
        stale = rater.personal.stale_events
        return stale > 0 and stale >= self.settings.personal.hyper_refresh_events

    def start_refresher(self) -> None:
        """Check the store every ``api.refresh_seconds`` in a daemon thread (0 = never)."""
        interval = self.settings.api.refresh_seconds
        if interval <= 0 or self._refresher is not None:
            return
        self._stop = threading.Event()

        stop = self._stop

        def loop() -> None:
            while not stop.wait(interval):
                try:
                    self.check_store()
                except Exception:  # keep serving from the old state; the next round tries again
                    log.exception("checking the store for new events failed")

        self._refresher = threading.Thread(target=loop, name="truescore-refresh", daemon=True)
        self._refresher.start()

    def close(self) -> None:
        """Stop the refresher (the state stays usable; a later start_refresher starts a new one)."""
        self._stop.set()
        self._refresher = None


def ranking_row(row: dict[str, Any]) -> dict[str, Any]:
    """A product_rankings row with its ``details`` JSON parsed."""
    out = dict(row)
    details = out.get("details")
    if isinstance(details, str):
        try:
            out["details"] = json.loads(details)
        except ValueError:
            out["details"] = None
    for key in ("fused_mean", "fused_sd", "n_eff", "lower_bound", "love_score", "plain_mean"):
        out[key] = _num(out.get(key))
    return out


def _review(r: dict[str, Any]) -> Review:
    return Review(
        id=r["id"], item_id=r["item_id"], user_id=r["user_id"], rating=float(r["rating"]),
        created_at=from_epoch(r["created_at"]), min_rating=float(r["min_rating"]), max_rating=float(r["max_rating"]),
        title=r.get("title"), text=None, is_recommended=r.get("is_recommended"),
        is_incentivized=r.get("is_incentivized"), verified_purchase=r.get("verified_purchase"),
        photo_count=int(r.get("photo_count") or 0), supersedes=r.get("supersedes"),
    )


def _edge(r: dict[str, Any]) -> TrustEdge:
    valid = r.get("valid_until")
    return TrustEdge(r["truster_id"], r["trustee_id"], r["domain"], float(r["level"]), from_epoch(r["created_at"]),
                     None if valid is None else from_epoch(valid))
