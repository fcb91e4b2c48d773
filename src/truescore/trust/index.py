"""In-memory index of the reviews, votes, flags and roles the trust engine reads.

Everything is columnar: one row per review with int32 node ids (from the trust graph's
:class:`~truescore.trust.graph.NodeIndex`), normalised ratings ``z = (r - min) / (max - min)``, epoch
times and topic codes, plus CSR offsets from item to reviews, from user to reviews (in time order),
from review to votes and from review to flags. A request gathers exactly the rows it needs from these
offsets with vectorised numpy, never scanning the whole table.

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

from truescore.domain import Flag, Item, Review, User, UserRole, Vote, to_epoch
from truescore.trust.graph import NodeIndex
from truescore.trust.topics import is_within, validate_topic

__all__ = ["DEFAULT_TOPIC", "ReviewIndex"]

#: Topic of an item known only through its reviews (as in the store).
DEFAULT_TOPIC = "reviews.public"

_I32 = np.int32
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
        self._built = False
        #: Incremented whenever events are added; caches compare it.
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
            self._pending[table].append(frame.copy())
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

    # -- build ----------------------------------------------------------------------------------

    def _merge(self, table: str, keys: list[str]) -> pd.DataFrame:
        parts = [self._frames[table], *self._pending[table]]
        parts = [p for p in parts if len(p)]
        self._pending[table] = []
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
        reviews = self._merge("reviews", ["id"])
        votes = self._merge("votes", ["review_id", "voter_id"])
        flags = self._merge("flags", ["review_id", "flagger_id"])
        items = self._merge("items", ["id"])
        users = self._merge("users", ["id"])
        self._build(reviews, votes, flags, items, users)
        self._built = True
        self._topic_masks = {}

    def _build(
        self, reviews: pd.DataFrame, votes: pd.DataFrame, flags: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame
    ) -> None:
        if "supersedes" in reviews.columns and len(reviews):
            replaced = set(reviews["supersedes"].dropna().astype(str))
            if replaced:
                reviews = reviews[~reviews["id"].astype(str).isin(replaced)].reset_index(drop=True)
        n = len(reviews)
        rating = reviews["rating"].to_numpy(dtype=np.float64)
        lo = reviews["min_rating"].to_numpy(dtype=np.float64)
        hi = reviews["max_rating"].to_numpy(dtype=np.float64)
        if n:
            if not (np.isfinite(rating).all() and np.isfinite(lo).all() and np.isfinite(hi).all()):
                raise ValueError("rating, min_rating and max_rating must be finite")
            if (hi <= lo).any():
                raise ValueError("max_rating must be greater than min_rating")
            if ((rating < lo) | (rating > hi)).any():
                bad = int(np.flatnonzero((rating < lo) | (rating > hi))[0])
                raise ValueError(
                    f"rating {rating[bad]} of review {reviews['id'].iloc[bad]!r} is outside [{lo[bad]}, {hi[bad]}]"
                )
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


def _review_row(r: Review) -> dict[str, Any]:
    row = asdict(r)
    row["created_at"] = to_epoch(r.created_at)
    return {k: row.get(k) for k in [*_REVIEW_COLUMNS, "verified_purchase", "supersedes"]}
