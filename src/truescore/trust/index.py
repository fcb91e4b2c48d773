"""In-memory index of the reviews, votes, flags and roles the trust engine reads.

Everything is columnar: one row per review with int32 node ids (from the trust graph's
:class:`~truescore.trust.graph.NodeIndex`), normalised ratings ``z = (r - min) / (max - min)``, epoch
times and topic codes, plus CSR offsets from item to reviews, from user to reviews (in time order),
from review to votes and from review to flags. A request gathers exactly the rows it needs from these
offsets with vectorised numpy, never scanning the whole table.

New events are buffered by ``add_*`` and merged on the next read (:meth:`ReviewIndex.ensure`). The merge is
incremental whenever it can be: new reviews are appended to the columns, reviews they supersede are
removed (with their votes and flags), new votes and flags are appended, and the CSR offsets and the
touched items' display scales are recomputed with numpy (O(n) array work, a few milliseconds; no pandas
pass over the whole table). The result is the same index a full rebuild over every event would give
(row and item codes may be numbered differently; the rows of an item, of a user and of a review keep the
same order). The merge falls back to a full rebuild only where the incremental rules do not reach:
reviews carrying their own ``topic`` column, a review arriving after votes or flags that name it, or a
superseded review whose item takes its topic from its reviews. ``full_builds`` and ``appends`` count both.

The index is built from pandas frames with the store's column names (``Store.review_frame()``,
``vote_frame()``, ``flag_frame()``, ``item_frame()``, ``user_frame()``) or from domain objects; new
events are buffered and merged on the next read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.domain import Flag, Item, Review, User, UserRole, Vote, current_review_mask, to_epoch
from truescore.trust.graph import NodeIndex
from truescore.trust.topics import is_within, validate_topic

__all__ = ["DEFAULT_TOPIC", "ReviewIndex"]

#: Topic of an item known only through its reviews (as in the store).
DEFAULT_TOPIC = "reviews.public"

_I32 = np.int32
#: buffered or merged frames of a table beyond which they are concatenated into one
_TAIL_FRAMES = 32
IntArray = npt.NDArray[np.int64]

_REVIEW_COLUMNS = ["id", "item_id", "user_id", "rating", "min_rating", "max_rating", "created_at"]
#: columns each buffered frame must carry (the index's own column sets, not whatever a store frame added)
_REQUIRED = {
    "reviews": _REVIEW_COLUMNS,
    "votes": ["review_id", "voter_id", "helpful"],
    "flags": ["review_id", "flagger_id"],
    "items": ["id"],
    "users": ["id"],
}


def _csr(keys: npt.NDArray[Any], n_keys: int, order_by: npt.NDArray[Any] | None = None) -> tuple[IntArray, IntArray]:
    """Offsets and row order grouping rows by integer ``keys`` (stable; within a key by ``order_by``)."""
    order = np.lexsort((order_by, keys)) if order_by is not None else np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=n_keys) if keys.size else np.zeros(n_keys, dtype=np.int64)
    indptr = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, order.astype(np.int64)


#: appended rows up to which the incremental merge inserts into the CSR groups instead of re-sorting
_INSERT_MAX = 256


def _csr_insert(indptr: IntArray, rows: IntArray, keys: npt.NDArray[Any], n_old: int, n_keys: int,
                order_by: npt.NDArray[Any]) -> tuple[IntArray, IntArray]:
    """:func:`_csr` of ``keys`` after rows ``n_old..`` were appended to it, from the offsets and order of
    the first ``n_old`` rows: each new row goes after the rows of its key with ``order_by`` <= its own
    (the order a stable re-sort by (key, order_by, row) gives), without sorting again."""
    indptr = np.concatenate([indptr, np.full(n_keys + 1 - indptr.shape[0], indptr[-1], dtype=np.int64)])
    new = np.arange(n_old, keys.shape[0], dtype=np.int64)
    if not new.size:
        return indptr, rows
    k = keys[new].astype(np.int64)
    new = new[np.lexsort((new, order_by[new], k))]
    k = keys[new].astype(np.int64)
    at = np.empty(new.shape[0], dtype=np.int64)
    for j, (key, row) in enumerate(zip(k.tolist(), new.tolist(), strict=True)):
        lo, hi = int(indptr[key]), int(indptr[key + 1])
        at[j] = lo + int(np.searchsorted(order_by[rows[lo:hi]], order_by[row], side="right"))
    out = np.insert(rows, at, new)
    counts = np.bincount(k, minlength=n_keys)
    indptr[1:] += np.cumsum(counts)
    return indptr, out


def gather(indptr: IntArray, keys: npt.NDArray[Any]) -> tuple[IntArray, IntArray]:
    """Positions ``p`` of every entry of every key in ``keys`` and the index of its key in ``keys``.

    ``keys`` beyond the offsets' range have no entries.
    """
    k = np.asarray(keys, dtype=np.int64)
    k = np.where((k >= 0) & (k < indptr.shape[0] - 1), k, -1)
    valid = k >= 0
    starts = np.where(valid, indptr[np.where(valid, k, 0)], 0)
    counts = np.where(valid, indptr[np.where(valid, k, 0) + 1] - starts, 0)
    total = int(counts.sum())
    owner = np.repeat(np.arange(k.shape[0], dtype=np.int64), counts)
    pos = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(total, dtype=np.int64)
    return pos, owner


class ReviewIndex:
    """Columnar reviews, votes and flags keyed by the shared node ids (see the module docstring).

    Parameters
    ----------
    nodes : NodeIndex
        The trust graph's node index; reviewers, voters and flaggers are added to it.
    """

    # columns and groupings, set by the build and the incremental merge (declared for the type checker)
    f_created: npt.NDArray[Any]
    f_flagger: npt.NDArray[Any]
    f_severity: npt.NDArray[Any]
    flag_indptr: npt.NDArray[Any]
    item_indptr: npt.NDArray[Any]
    item_max: npt.NDArray[Any]
    item_min: npt.NDArray[Any]
    item_rows: npt.NDArray[Any]
    item_topic: npt.NDArray[Any]
    r_created: npt.NDArray[Any]
    r_item: npt.NDArray[Any]
    r_max: npt.NDArray[Any]
    r_min: npt.NDArray[Any]
    r_norm: npt.NDArray[Any]
    r_rating: npt.NDArray[Any]
    r_user: npt.NDArray[Any]
    r_verified: npt.NDArray[Any]
    retailers: npt.NDArray[Any]
    review_ids: npt.NDArray[Any]
    user_indptr: npt.NDArray[Any]
    user_rows: npt.NDArray[Any]
    v_created: npt.NDArray[Any]
    v_helpful: npt.NDArray[Any]
    v_voter: npt.NDArray[Any]
    vote_indptr: npt.NDArray[Any]
    item_ids: pd.Index
    _review_pos: pd.Index
    _item_code: dict[str, int]

    def __init__(self, nodes: NodeIndex) -> None:
        self.nodes = nodes
        self._frames: dict[str, pd.DataFrame] = {
            "reviews": pd.DataFrame(columns=[*_REVIEW_COLUMNS, "verified_purchase", "supersedes", "topic"]),
            "votes": pd.DataFrame(columns=["review_id", "voter_id", "helpful", "created_at"]),
            "flags": pd.DataFrame(columns=["review_id", "flagger_id", "severity", "created_at"]),
            "items": pd.DataFrame(columns=["id", "topic"]),
            "users": pd.DataFrame(columns=["id", "role"]),
        }
        self._pending: dict[str, list[pd.DataFrame]] = {k: [] for k in self._frames}
        #: frames merged incrementally since the last full build (the full build concatenates them)
        self._tail: dict[str, list[pd.DataFrame]] = {k: [] for k in self._frames}
        self._built = False
        #: how many times the arrays were rebuilt from every event, and merged incrementally
        self.full_builds = 0
        self.appends = 0
        #: events (reviews, votes, flags, as buffered) merged since the index was created; personal.py compares it
        self.merged_events = 0
        #: reviews removed (deleted, erased) since the last merge: the next merge drops their rows
        self._removed: set[str] = set()
        #: reviews removed whose rows the merged frames (``_frames``, ``_tail``) may still hold
        self._dropped: set[str] = set()
        #: Incremented whenever events are added or removed; caches compare it.
        self.version = 0
        self._topic_masks: dict[str, npt.NDArray[np.bool_]] = {}

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_frames(
        cls,
        nodes: NodeIndex,
        reviews: pd.DataFrame,
        votes: pd.DataFrame | None = None,
        flags: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
    ) -> ReviewIndex:
        """Index from frames with the store's column names (extra columns are ignored).

        Required review columns: ``id, item_id, user_id, rating, min_rating, max_rating, created_at``
        (epoch seconds); optional ``verified_purchase``, ``supersedes``, ``topic``.
        """
        index = cls(nodes)
        index.add_frame("reviews", reviews)
        for name, frame in (("votes", votes), ("flags", flags), ("items", items), ("users", users)):
            if frame is not None:
                index.add_frame(name, frame)
        return index

    def add_frame(self, table: str, frame: pd.DataFrame) -> None:
        """Buffer a frame of new events of ``table`` (reviews, votes, flags, items or users)."""
        if table not in self._frames:
            raise ValueError(f"table must be one of {sorted(self._frames)}, got {table!r}")
        required_missing = [c for c in _REQUIRED[table] if c not in frame.columns]
        if required_missing:
            raise ValueError(f"{table} frame lacks column(s) {required_missing}")
        if len(frame):
            pending = self._pending[table]
            pending.append(frame.copy())
            if len(pending) > _TAIL_FRAMES:  # many writes and no read: keep the buffer a few frames long
                self._pending[table] = [pd.concat(pending, ignore_index=True)]
            self._built = False
            self.version += 1

    def add_reviews(self, reviews: Iterable[Review], items: Iterable[Item] = ()) -> None:
        rows = [_review_row(r) for r in reviews]
        if rows:
            self.add_frame("reviews", pd.DataFrame(rows))
        self.add_items(items)

    def add_items(self, items: Iterable[Item]) -> None:
        rows = [{"id": i.id, "topic": validate_topic(i.topic)} for i in items]
        if rows:
            self.add_frame("items", pd.DataFrame(rows))

    def add_users(self, users: Iterable[User]) -> None:
        rows = [{"id": u.id, "role": str(u.role)} for u in users]
        if rows:
            self.add_frame("users", pd.DataFrame(rows))

    def add_votes(self, votes: Iterable[Vote]) -> None:
        rows = [
            {
                "review_id": v.review_id,
                "voter_id": v.voter_id,
                "helpful": bool(v.helpful),
                "created_at": to_epoch(v.created_at),
            }
            for v in votes
        ]
        if rows:
            self.add_frame("votes", pd.DataFrame(rows))

    def add_flags(self, flags: Iterable[Flag]) -> None:
        rows = []
        for f in flags:
            if not f.severity >= 0:
                raise ValueError(f"flag severity must be >= 0, got {f.severity}")
            rows.append(
                {
                    "review_id": f.review_id,
                    "flagger_id": f.flagger_id,
                    "severity": float(f.severity),
                    "created_at": to_epoch(f.created_at),
                }
            )
        if rows:
            self.add_frame("flags", pd.DataFrame(rows))

    def remove_reviews(self, review_ids: Iterable[str]) -> int:
        """Forget reviews (deleted or erased in the store) with the votes and flags on them.

        The frames kept for a later full build lose them at once; the arrays lose their rows at the next
        merge, incrementally (as a superseded review's rows are removed: the item's and the user's offsets
        and the touched items' scales are recomputed), so the index equals a full build over the remaining
        events. A removed id may be posted again later as a new review. Returns how many of the ids the
        index knew (merged or buffered)."""
        ids = {str(r) for r in review_ids}
        if not ids:
            return 0
        merged: set[str] = getattr(self, "_review_id_set", set())
        known = {i for i in ids if i in merged}
        # the buffered frames lose the rows now (a removed id posted again later must survive); the merged
        # frames, kept only for a full build, lose them lazily (:meth:`_drop_removed`): a deletion costs the
        # few buffered frames, not a pass over every event
        for table, column in (("reviews", "id"), ("votes", "review_id"), ("flags", "review_id")):
            kept = []
            for frame in self._pending[table]:
                hit = frame[column].astype(str).isin(ids).to_numpy()
                if table == "reviews" and hit.any():
                    known.update(frame["id"].astype(str)[hit])
                kept.append(frame[~hit].reset_index(drop=True) if hit.any() else frame)
            self._pending[table] = kept
        self._dropped |= ids
        self._removed |= ids
        self._built = False
        self.version += 1
        return len(known)

    def _reposted(self) -> bool:
        """Does a buffered review, vote or flag name a removed review whose rows the merged frames still hold?"""
        if not self._dropped:
            return False
        return any(not self._dropped.isdisjoint(frame[column].astype(str))
                   for table, column in (("reviews", "id"), ("votes", "review_id"), ("flags", "review_id"))
                   for frame in self._pending[table])

    def _drop_removed(self) -> None:
        """Drop the rows of removed reviews (and the votes and flags on them) from the merged frames."""
        ids = self._dropped
        if not ids:
            return
        for table, column in (("reviews", "id"), ("votes", "review_id"), ("flags", "review_id")):
            def keep(frame: pd.DataFrame, column: str = column) -> pd.DataFrame:
                if not len(frame):
                    return frame
                return frame[~frame[column].astype(str).isin(ids)].reset_index(drop=True)

            self._frames[table] = keep(self._frames[table])
            self._tail[table] = [keep(f) for f in self._tail[table]]
        self._dropped = set()

    # -- build ----------------------------------------------------------------------------------

    def _merge(self, table: str, keys: list[str]) -> pd.DataFrame:
        parts = [self._frames[table], *self._tail[table], *self._pending[table]]
        parts = [p for p in parts if len(p)]
        self._pending[table] = []
        self._tail[table] = []
        if not parts:
            return self._frames[table]
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        # idempotent by key, as in the store: the first statement of a key stands
        frame = frame.drop_duplicates(keys, keep="first").reset_index(drop=True)
        self._frames[table] = frame
        return frame

    def ensure(self) -> None:
        """Merge buffered events and rebuild the arrays if anything changed."""
        if self._built:
            return
        if self.full_builds and self._append():
            self.appends += 1
        else:
            self._drop_removed()
            pending = sum(len(f) for t in ("reviews", "votes", "flags") for f in self._pending[t])
            reviews = self._merge("reviews", ["id"])
            votes = self._merge("votes", ["review_id", "voter_id"])
            flags = self._merge("flags", ["review_id", "flagger_id"])
            items = self._merge("items", ["id"])
            users = self._merge("users", ["id"])
            self._build(reviews, votes, flags, items, users)
            self._book(reviews, votes, flags, items, users)
            self._removed = set()  # the frames no longer hold them
            self.full_builds += 1
            self.merged_events += pending  # (a fallback full build counts only the events it merged anew)
        self._built = True
        self._topic_masks = {}

    def _book(
        self, reviews: pd.DataFrame, votes: pd.DataFrame, flags: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame
    ) -> None:
        """Keys of every merged event, which the incremental merge checks new events against."""
        self._review_id_set: set[str] = set(reviews["id"].astype(str))
        sup = reviews["supersedes"].dropna().astype(str) if "supersedes" in reviews.columns else pd.Series([])
        self._superseded: set[str] = set(sup)
        self._vote_keys: set[tuple[str, str]] = set(
            zip(votes["review_id"].astype(str), votes["voter_id"].astype(str), strict=True)
        )
        self._flag_keys: set[tuple[str, str]] = set(
            zip(flags["review_id"].astype(str), flags["flagger_id"].astype(str), strict=True)
        )
        targets = set(votes["review_id"].astype(str)) | set(flags["review_id"].astype(str))
        self._orphan_targets: set[str] = {t for t in targets if t not in self._review_pos}
        self._topic_from_items: dict[str, str] = {
            str(i): str(t) for i, t in zip(items["id"].astype(str), items["topic"], strict=True)
        }
        self._user_ids: set[str] = set(users["id"].astype(str))
        has_topic = (reviews["topic"].map(lambda t: isinstance(t, str) and bool(t))
                     if "topic" in reviews.columns else None)
        self._reviews_have_topic = bool(has_topic is not None and len(reviews) and has_topic.any())

    # -- incremental merge ----------------------------------------------------------------------

    def _new(self, table: str, keys: list[str], seen: set[Any]) -> pd.DataFrame | None:
        """The buffered frames of ``table``, first statement of a key only, without keys already merged."""
        parts = [p for p in self._pending[table] if len(p)]
        if not parts:
            return None
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        frame = frame.drop_duplicates(keys, keep="first")
        if len(keys) == 1:  # (not Series.isin: it converts the whole set on every call)
            fresh = np.array([k not in seen for k in frame[keys[0]].astype(str)], dtype=bool)
        else:
            fresh = np.array([k not in seen for k in zip(*(frame[c].astype(str) for c in keys), strict=True)],
                             dtype=bool)
        return frame[np.asarray(fresh, dtype=bool)].reset_index(drop=True)

    def _append(self) -> bool:
        """Merge the buffered events into the arrays without a full rebuild; False (nothing changed)
        where only a full rebuild gives the right index (see the module docstring)."""
        reviews = self._new("reviews", ["id"], self._review_id_set)
        if reviews is not None and "topic" in reviews.columns and reviews["topic"].map(
            lambda t: isinstance(t, str) and bool(t)
        ).any():
            return False
        votes = self._new("votes", ["review_id", "voter_id"], self._vote_keys)
        flags = self._new("flags", ["review_id", "flagger_id"], self._flag_keys)
        items = self._new("items", ["id"], set(self._topic_from_items))
        users = self._new("users", ["id"], self._user_ids)
        new_ids: list[str] = [] if reviews is None else reviews["id"].astype(str).tolist()
        if any(i in self._orphan_targets for i in new_ids):
            return False  # votes or flags arrived before their review: the full build attaches them
        if reviews is not None and len(reviews) and self._pairs_taken(reviews):
            return False  # a second review of a pair without ``supersedes``: the full build applies the rule
        sup_new: set[str] = set()
        if reviews is not None and "supersedes" in reviews.columns:
            sup_new = set(reviews["supersedes"].dropna().astype(str))
        removed = self._removed
        superseded = (self._superseded | sup_new) - removed
        # rows to remove (superseded now, or removed from the store) and new rows to add (not superseded)
        gone_ids = sup_new | removed
        gone = self._review_pos.get_indexer(sorted(gone_ids)) if gone_ids else np.zeros(0, dtype=np.int64)
        gone = gone[gone >= 0]
        if gone.size and self._reviews_have_topic and any(
            str(self.item_ids[i]) not in self._topic_from_items for i in set(self.r_item[gone].tolist())
        ):
            return False  # the item's topic may have come from the removed review
        add = None if reviews is None else reviews[
            np.array([i not in superseded for i in new_ids], dtype=bool)].reset_index(drop=True)
        item_topics = {} if items is None else {
            str(i): validate_topic(str(t), "item topic") for i, t in zip(items["id"].astype(str), items["topic"],
                                                                           strict=True)
        }
        rating = lo = hi = np.zeros(0)
        if add is not None and len(add):
            rating = add["rating"].to_numpy(dtype=np.float64)
            lo = add["min_rating"].to_numpy(dtype=np.float64)
            hi = add["max_rating"].to_numpy(dtype=np.float64)
            _check_scale(rating, lo, hi, add["id"])
        # -- nothing is changed above this line; from here on the merge cannot fail -------------
        n_old = self.review_ids.shape[0]
        keep = np.ones(n_old, dtype=bool)
        keep[gone] = False
        new_pos = np.cumsum(keep) - 1
        v_row = np.repeat(np.arange(n_old, dtype=np.int64), np.diff(self.vote_indptr))
        f_row = np.repeat(np.arange(n_old, dtype=np.int64), np.diff(self.flag_indptr))
        touched_items = set(self.r_item[gone].tolist())
        if gone.size:
            self._orphan_targets |= set(self.review_ids[gone].tolist())
            vk, fk = keep[v_row], keep[f_row]
            v_row, self.v_voter, self.v_helpful, self.v_created = (
                new_pos[v_row[vk]], self.v_voter[vk], self.v_helpful[vk], self.v_created[vk])
            f_row, self.f_flagger, self.f_severity, self.f_created = (
                new_pos[f_row[fk]], self.f_flagger[fk], self.f_severity[fk], self.f_created[fk])
            for name in ("review_ids", "r_rating", "r_min", "r_max", "r_norm", "r_created", "r_verified", "r_user",
                         "r_item"):
                setattr(self, name, getattr(self, name)[keep])
        # items: new ones get the next codes; an item's first items row sets its topic
        item_ids = list(self.item_ids)
        topic = list(self.item_topic)
        for iid, top in item_topics.items():
            code = self._item_code.get(iid)
            if code is None:
                code = self._item_code[iid] = len(item_ids)
                item_ids.append(iid)
                topic.append(top)
            else:
                topic[code] = top
        if add is not None and len(add):
            codes = []
            for iid in add["item_id"].astype(str).tolist():
                code = self._item_code.get(iid)
                if code is None:
                    code = self._item_code[iid] = len(item_ids)
                    item_ids.append(iid)
                    topic.append(DEFAULT_TOPIC)
                codes.append(code)
            r_item = np.asarray(codes, dtype=_I32)
            touched_items |= set(codes)
            created = add["created_at"] if "created_at" in add.columns else pd.Series(np.zeros(len(add)))
            verified = add["verified_purchase"] if "verified_purchase" in add.columns else pd.Series([None] * len(add))
            self.review_ids = np.concatenate([self.review_ids, add["id"].astype(str).to_numpy(dtype=object)])
            self.r_rating = np.concatenate([self.r_rating, rating])
            self.r_min = np.concatenate([self.r_min, lo])
            self.r_max = np.concatenate([self.r_max, hi])
            self.r_norm = np.concatenate([self.r_norm, (rating - lo) / (hi - lo)])
            self.r_created = np.concatenate([self.r_created, created.to_numpy(dtype=np.float64)])
            self.r_verified = np.concatenate(
                [self.r_verified, verified.fillna(False).astype(bool).to_numpy()]).astype(bool)
            self.r_user = np.concatenate(
                [self.r_user, self.nodes.add_many(add["user_id"].astype(str).to_numpy(dtype=object))])
            self.r_item = np.concatenate([self.r_item, r_item]).astype(_I32)
        if gone.size or (add is not None and len(add)):
            self._review_pos = pd.Index(self.review_ids)
        self.item_ids = pd.Index(item_ids)
        self.item_topic = np.array(topic, dtype=object)
        topic_codes, topic_uniques = pd.factorize(self.item_topic)
        self.topics = [str(t) for t in topic_uniques]
        self.item_topic_code = topic_codes.astype(_I32)
        n, n_items = self.review_ids.shape[0], len(item_ids)
        self.r_topic = self.item_topic_code[self.r_item] if n else np.zeros(0, dtype=_I32)
        n_add = 0 if add is None else len(add)
        small = not gone.size and n_add <= _INSERT_MAX  # a few appended rows: insert them, no re-sort
        if small:
            self.item_indptr, self.item_rows = _csr_insert(self.item_indptr, self.item_rows, self.r_item, n_old,
                                                           n_items, self.r_created)
        else:
            self.item_indptr, self.item_rows = _csr(self.r_item.astype(np.int64), n_items, self.r_created)
        self.item_min = np.concatenate([self.item_min, np.full(n_items - self.item_min.shape[0], 1.0)])
        self.item_max = np.concatenate([self.item_max, np.full(n_items - self.item_max.shape[0], 5.0)])
        for item in touched_items:
            self._item_scale(int(item))
        if small:
            self.user_indptr, self.user_rows = _csr_insert(self.user_indptr, self.user_rows, self.r_user, n_old,
                                                           len(self.nodes), self.r_created)
        else:
            self.user_indptr, self.user_rows = _csr(self.r_user.astype(np.int64), len(self.nodes), self.r_created)
        # votes and flags: append those on known reviews, regroup by review row (stable: old ones first)
        if votes is not None and len(votes):
            rows = self._review_pos.get_indexer(votes["review_id"].astype(str))
            self._orphan_targets |= set(votes["review_id"].astype(str)[rows < 0].tolist())
            ok = rows >= 0
            sel = votes[ok]
            vcreated = sel["created_at"] if "created_at" in sel.columns else pd.Series(np.zeros(len(sel)))
            v_row = np.concatenate([v_row, rows[ok].astype(np.int64)])
            self.v_voter = np.concatenate([self.v_voter, self.nodes.add_many(
                sel["voter_id"].astype(str).to_numpy(dtype=object))])
            self.v_helpful = np.concatenate([self.v_helpful, sel["helpful"].astype(bool).to_numpy()]).astype(bool)
            self.v_created = np.concatenate([self.v_created, vcreated.to_numpy(dtype=np.float64)])
            self._vote_keys |= set(zip(votes["review_id"].astype(str), votes["voter_id"].astype(str), strict=True))
        if small and (votes is None or not len(votes)):  # unchanged votes: the new rows have none
            self.vote_indptr = np.concatenate([self.vote_indptr, np.full(n - n_old, self.vote_indptr[-1])])
        else:
            self.vote_indptr, order = _csr(v_row, n)
            self.v_voter, self.v_helpful, self.v_created = (
                self.v_voter[order], self.v_helpful[order], self.v_created[order])
        if flags is not None and len(flags):
            rows = self._review_pos.get_indexer(flags["review_id"].astype(str))
            self._orphan_targets |= set(flags["review_id"].astype(str)[rows < 0].tolist())
            ok = rows >= 0
            sel = flags[ok]
            sev = sel["severity"].to_numpy(dtype=np.float64) if "severity" in sel.columns else np.ones(len(sel))
            fcreated = sel["created_at"] if "created_at" in sel.columns else pd.Series(np.zeros(len(sel)))
            f_row = np.concatenate([f_row, rows[ok].astype(np.int64)])
            self.f_flagger = np.concatenate([self.f_flagger, self.nodes.add_many(
                sel["flagger_id"].astype(str).to_numpy(dtype=object))])
            self.f_severity = np.concatenate([self.f_severity, sev])
            self.f_created = np.concatenate([self.f_created, fcreated.to_numpy(dtype=np.float64)])
            self._flag_keys |= set(zip(flags["review_id"].astype(str), flags["flagger_id"].astype(str), strict=True))
        if small and (flags is None or not len(flags)):
            self.flag_indptr = np.concatenate([self.flag_indptr, np.full(n - n_old, self.flag_indptr[-1])])
        else:
            self.flag_indptr, order = _csr(f_row, n)
            self.f_flagger, self.f_severity, self.f_created = (
                self.f_flagger[order], self.f_severity[order], self.f_created[order])
        if users is not None and len(users):
            roles = users["role"].astype(str) if "role" in users.columns else pd.Series([""] * len(users))
            retail = users["id"].astype(str)[(roles == str(UserRole.RETAILER)).to_numpy()]
            if len(retail):
                self.retailers = np.sort(np.concatenate(
                    [self.retailers, self.nodes.add_many(np.asarray(list(retail), dtype=object))]))
            self._user_ids |= set(users["id"].astype(str))
        # bookkeeping, and the merged frames kept for a later full build
        self.merged_events += (0 if add is None else len(add)) + int(gone.size) + (
            0 if votes is None else len(votes)) + (0 if flags is None else len(flags))
        self._review_id_set -= removed
        self._review_id_set.update(new_ids)
        self._superseded = superseded
        if removed:
            self._vote_keys = {k for k in self._vote_keys if k[0] not in removed}
            self._flag_keys = {k for k in self._flag_keys if k[0] not in removed}
            self._orphan_targets -= removed
            self._removed = set()
        self._topic_from_items.update(item_topics)
        if self._reposted():
            self._drop_removed()  # a removed id posted again: the merged frames lose the old rows first
        for table in self._pending:
            tail = self._tail[table]
            tail.extend(self._pending[table])
            if len(tail) > _TAIL_FRAMES:  # one frame per merge would make every later pass over them slow
                self._tail[table] = [pd.concat(tail, ignore_index=True)]
            self._pending[table] = []
        return True

    def _pairs_taken(self, reviews: pd.DataFrame) -> bool:
        """Does a new review (or two) fall on a (user, item) pair that has a current review it does not
        supersede? (The API always names the review it replaces; a library caller may not.)"""
        sup = reviews["supersedes"] if "supersedes" in reviews.columns else pd.Series([None] * len(reviews))
        seen: set[tuple[str, str]] = set()
        for user, item, named in zip(reviews["user_id"].astype(str), reviews["item_id"].astype(str), sup,
                                     strict=True):
            if (user, item) in seen:
                return True
            seen.add((user, item))
            code, node = self._item_code.get(item), self.nodes.get(user)
            if code is None or node < 0 or node >= self.user_indptr.shape[0] - 1:
                continue
            rows = self.user_rows[self.user_indptr[node] : self.user_indptr[node + 1]]
            held = rows[self.r_item[rows] == code]
            if held.size and not (isinstance(named, str) and named in set(self.review_ids[held].tolist())):
                return True
        return False

    def _item_scale(self, item: int) -> None:
        """Display scale of ``item``: its most common (min, max) pair (ties: the smallest pair)."""
        rows = self.item_rows[self.item_indptr[item] : self.item_indptr[item + 1]]
        if not rows.size:
            self.item_min[item], self.item_max[item] = 1.0, 5.0
            return
        pairs, counts = np.unique(np.stack([self.r_min[rows], self.r_max[rows]], axis=1), axis=0, return_counts=True)
        best = int(np.argmax(counts))
        self.item_min[item], self.item_max[item] = float(pairs[best, 0]), float(pairs[best, 1])

    def _build(
        self, reviews: pd.DataFrame, votes: pd.DataFrame, flags: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame
    ) -> None:
        if len(reviews):  # the one current-review rule (domain.current_review_mask), as the store reads
            current = current_review_mask(
                reviews["id"], reviews["user_id"], reviews["item_id"],
                reviews["created_at"] if "created_at" in reviews.columns else None,
                reviews["supersedes"] if "supersedes" in reviews.columns else None)
            if not current.all():
                reviews = reviews[current].reset_index(drop=True)
        n = len(reviews)
        rating = reviews["rating"].to_numpy(dtype=np.float64)
        lo = reviews["min_rating"].to_numpy(dtype=np.float64)
        hi = reviews["max_rating"].to_numpy(dtype=np.float64)
        _check_scale(rating, lo, hi, reviews["id"])
        self.review_ids = reviews["id"].astype(str).to_numpy(dtype=object)
        self._review_pos = pd.Index(self.review_ids)
        self.r_rating, self.r_min, self.r_max = rating, lo, hi
        self.r_norm = (rating - lo) / (hi - lo) if n else np.zeros(0)
        created = reviews["created_at"] if "created_at" in reviews.columns else pd.Series(np.zeros(n))
        self.r_created = created.to_numpy(dtype=np.float64)
        verified = reviews["verified_purchase"] if "verified_purchase" in reviews.columns else pd.Series([None] * n)
        self.r_verified = verified.fillna(False).astype(bool).to_numpy() if n else np.zeros(0, dtype=bool)
        self.r_user = self.nodes.add_many(reviews["user_id"].astype(str).to_numpy(dtype=object))

        # items and topics: the items frame wins, then the review's own topic column, then the default
        item_topic: dict[str, str] = {}
        if "topic" in reviews.columns and n:
            for iid, top in zip(reviews["item_id"].astype(str), reviews["topic"], strict=True):
                if isinstance(top, str) and top:
                    item_topic.setdefault(iid, top)
        for iid, top in zip(items["id"].astype(str), items["topic"], strict=True):
            item_topic[iid] = validate_topic(str(top), "item topic")
        item_codes, item_uniques = pd.factorize(reviews["item_id"].astype(str).to_numpy(dtype=object))
        known = set(item_uniques)
        extra = [i for i in item_topic if i not in known]
        self.item_ids = pd.Index([*item_uniques, *extra])
        self._item_code = {str(iid): k for k, iid in enumerate(self.item_ids)}
        self.item_topic = np.array([item_topic.get(i, DEFAULT_TOPIC) for i in self.item_ids], dtype=object)
        self.r_item = item_codes.astype(_I32)
        topic_codes, topic_uniques = pd.factorize(self.item_topic)
        self.topics = [str(t) for t in topic_uniques]
        self.item_topic_code = topic_codes.astype(_I32)
        self.r_topic = self.item_topic_code[self.r_item] if n else np.zeros(0, dtype=_I32)
        n_items = len(self.item_ids)
        self.item_indptr, self.item_rows = _csr(self.r_item, n_items, self.r_created)
        # display scale of each item: its most common (min, max) pair
        self.item_min = np.full(n_items, 1.0)
        self.item_max = np.full(n_items, 5.0)
        if n:
            scales = pd.DataFrame({"item": self.r_item, "lo": lo, "hi": hi})
            common = scales.groupby(["item", "lo", "hi"]).size().reset_index(name="k")
            common = common.sort_values(["item", "k"], ascending=[True, False]).drop_duplicates("item")
            self.item_min[common["item"].to_numpy()] = common["lo"].to_numpy()
            self.item_max[common["item"].to_numpy()] = common["hi"].to_numpy()

        n_nodes = len(self.nodes)
        self.user_indptr, self.user_rows = _csr(self.r_user.astype(np.int64), n_nodes, self.r_created)

        # votes (on known reviews only), grouped by review row
        vrow = self._review_pos.get_indexer(votes["review_id"].astype(str)) if len(votes) else np.zeros(0, np.int64)
        keep = vrow >= 0
        votes = votes[keep]
        vrow = vrow[keep]
        self.v_voter = self.nodes.add_many(votes["voter_id"].astype(str).to_numpy(dtype=object))
        self.v_helpful = votes["helpful"].astype(bool).to_numpy() if len(votes) else np.zeros(0, dtype=bool)
        vcreated = votes["created_at"] if "created_at" in votes.columns else pd.Series(np.zeros(len(votes)))
        self.v_created = vcreated.to_numpy(dtype=np.float64)
        self.vote_indptr, order = _csr(vrow.astype(np.int64), n)
        self.v_voter, self.v_helpful, self.v_created = self.v_voter[order], self.v_helpful[order], self.v_created[order]

        frow = self._review_pos.get_indexer(flags["review_id"].astype(str)) if len(flags) else np.zeros(0, np.int64)
        keep = frow >= 0
        flags = flags[keep]
        frow = frow[keep]
        self.f_flagger = self.nodes.add_many(flags["flagger_id"].astype(str).to_numpy(dtype=object))
        sev = flags["severity"] if "severity" in flags.columns else pd.Series(np.ones(len(flags)))
        self.f_severity = sev.to_numpy(dtype=np.float64)
        if self.f_severity.size and not (self.f_severity >= 0).all():
            raise ValueError("flag severity must be >= 0")
        fcreated = flags["created_at"] if "created_at" in flags.columns else pd.Series(np.zeros(len(flags)))
        self.f_created = fcreated.to_numpy(dtype=np.float64)
        self.flag_indptr, order = _csr(frow.astype(np.int64), n)
        self.f_flagger, self.f_severity, self.f_created = (
            self.f_flagger[order],
            self.f_severity[order],
            self.f_created[order],
        )

        roles = users["role"].astype(str) if "role" in users.columns and len(users) else pd.Series([], dtype=str)
        retailer_ids = users["id"].astype(str)[roles == str(UserRole.RETAILER)] if len(roles) else []
        self.retailers = np.sort(self.nodes.add_many(np.asarray(list(retailer_ids), dtype=object)))

    # -- reads ----------------------------------------------------------------------------------

    @property
    def n_reviews(self) -> int:
        self.ensure()
        return int(self.review_ids.shape[0])

    def item_code(self, item_id: str) -> int:
        """Internal code of ``item_id``, or -1 if unknown."""
        self.ensure()
        return self._item_code.get(item_id, -1)

    def topic_mask(self, topic: str) -> npt.NDArray[np.bool_]:
        """Boolean over topic codes: is that item topic ``topic`` or one of its descendants?"""
        self.ensure()
        mask = self._topic_masks.get(topic)
        if mask is None:
            mask = np.array([is_within(t, topic) for t in self.topics], dtype=bool)
            self._topic_masks[topic] = mask
        return mask

    def item_review_rows(self, item: int) -> IntArray:
        self.ensure()
        return self.item_rows[self.item_indptr[item] : self.item_indptr[item + 1]]


def _check_scale(rating: npt.NDArray[np.float64], lo: npt.NDArray[np.float64], hi: npt.NDArray[np.float64],
                 ids: pd.Series) -> None:
    """Every rating finite and within its review's scale ``lo < hi`` (ValueError naming the review)."""
    if not rating.size:
        return
    if not (np.isfinite(rating).all() and np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError("rating, min_rating and max_rating must be finite")
    if (hi <= lo).any():
        raise ValueError("max_rating must be greater than min_rating")
    if ((rating < lo) | (rating > hi)).any():
        bad = int(np.flatnonzero((rating < lo) | (rating > hi))[0])
        raise ValueError(f"rating {rating[bad]} of review {ids.iloc[bad]!r} is outside [{lo[bad]}, {hi[bad]}]")


def _review_row(r: Review) -> dict[str, Any]:
    row = asdict(r)
    row["created_at"] = to_epoch(r.created_at)
    return {k: row.get(k) for k in [*_REVIEW_COLUMNS, "verified_purchase", "supersedes"]}
