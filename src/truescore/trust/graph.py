"""Topic-scoped trust graph and exact bounded-depth best-path search (seed 003, factor T).

Notation
--------
Let :math:`G_D = (V, E_D)` be the trust graph of one domain ``D``: an edge :math:`u \\to v` carries the
level :math:`\\ell_{uv} \\in [0, 1]` of the latest statement ``u`` made about ``v`` in ``D``. The trust
of observer ``o`` in ``v`` within ``d`` hops is the best path product

.. math::

    T_d(o, v) = \\max_{p:\\, o \\leadsto v,\\ |p| \\le d} \\; \\prod_{(a, b) \\in p} \\ell_{ab},
    \\qquad T_d(o, o) = 1,

and 0 when no path of at most ``d`` edges exists.

Algorithm
---------
Because every level is at most 1, a path never gains by revisiting a node, and the bounded-depth
Bellman-Ford recursion

.. math::

    b_0 = \\mathbb{1}_{\\{o\\}}, \\qquad
    b_k(v) = \\max\\big(b_{k-1}(v),\\ \\max_{u \\to v} b_{k-1}(u)\\, \\ell_{uv}\\big)

gives :math:`b_k = T_k(o, \\cdot)` exactly after ``k`` rounds. Only nodes whose value rose in round
``k - 1`` (the *frontier*) can raise anything in round ``k``, so each round relaxes just the out-edges
of the frontier, gathered from the CSR arrays in one vectorised step and reduced per head node with
``numpy.maximum.at``. Every round's improvements ``(node, value, predecessor)`` are kept, so one search
answers ``T_d`` for every ``d <= max_depth`` (``T_5`` for reviewers and ``T_3`` for voters come from the
same search) and rebuilds the best path of any node exactly: a node that improved in round ``j`` has
a best path of exactly ``j`` edges whose predecessor improved in round ``j - 1``.

Dijkstra on :math:`-\\log \\ell` is exact only without the depth bound; breadth-first search that marks a
node visited when it is first queued (the Quidnug node's, see :mod:`truescore.trust.reference`) is
not exact at all: a better path found later is never taken.

Storage
-------
One :class:`DomainGraph` per domain holds CSR arrays (``indptr`` int64, ``indices`` int32 sorted within
each row, ``level`` float64, and optionally ``created`` and ``valid_until`` in UTC epoch seconds). A new
statement about an existing edge is written in place; a new edge goes to a small overlay that is
merged into the CSR arrays once it grows past a fraction of the graph. Node ids are int32 indices from
one :class:`NodeIndex` shared by every domain.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.trust.topics import validate_topic

__all__ = [
    "BestPaths",
    "DomainGraph",
    "NodeIndex",
    "TrustGraph",
    "best_paths",
    "edge_decay_factor",
    "member",
]

_I32 = np.int32
_NO_PRED = -1
_SECONDS_PER_DAY = 86400.0
#: The overlay is merged into the CSR arrays once it holds more than this many edges ...
_OVERLAY_MIN_COMPACT = 4096
#: ... or more than this fraction of the CSR edges, whichever is larger.
_OVERLAY_COMPACT_FRACTION = 0.01

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


# ----------------------------------------------------------------------------------------------------
# node ids
# ----------------------------------------------------------------------------------------------------


class NodeIndex:
    """Map external user ids (strings) to dense int32 node ids and back.

    ``NodeIndex.implicit(n)`` stands for the ids ``"0" .. str(n - 1)`` without storing them (the
    synthetic benchmark's million users); ids added later are stored explicitly after them.
    """

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._n_implicit = 0
        self._to_idx: dict[str, int] = {}
        self._ids: list[str] = []
        for user_id in ids:
            self.add(user_id)

    @classmethod
    def implicit(cls, n: int) -> NodeIndex:
        """An index whose first ``n`` ids are the decimal strings of ``0 .. n - 1``."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        index = cls()
        index._n_implicit = int(n)
        return index

    def __len__(self) -> int:
        return self._n_implicit + len(self._ids)

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, str) and self.get(user_id) >= 0

    def get(self, user_id: str) -> int:
        """Node id of ``user_id``, or -1 if unknown."""
        if self._n_implicit and user_id.isdigit() and (user_id == "0" or user_id[0] != "0"):
            value = int(user_id)
            if value < self._n_implicit:
                return value
        return self._to_idx.get(user_id, -1)

    def add(self, user_id: str) -> int:
        """Node id of ``user_id``, creating it if needed."""
        idx = self.get(user_id)
        if idx >= 0:
            return idx
        if not isinstance(user_id, str) or not user_id:
            raise ValueError(f"user id must be a non-empty string, got {user_id!r}")
        idx = len(self)
        self._to_idx[user_id] = idx
        self._ids.append(user_id)
        return idx

    def add_many(self, user_ids: npt.ArrayLike) -> IntArray:
        """Node ids of an array of user ids, creating unknown ones (vectorised through factorize)."""
        values = np.asarray(user_ids, dtype=object)
        if values.size == 0:
            return np.zeros(0, dtype=_I32)
        codes, uniques = pd.factorize(values)
        mapped = np.fromiter((self.add(str(u)) for u in uniques), dtype=np.int64, count=len(uniques))
        return mapped[np.asarray(codes, dtype=np.intp)].astype(_I32)

    def lookup_many(self, user_ids: Iterable[str]) -> IntArray:
        """Node ids of ``user_ids`` (-1 for unknown ones), without creating any."""
        return np.fromiter((self.get(u) for u in user_ids), dtype=_I32)

    def id_of(self, idx: int) -> str:
        """External id of node ``idx``."""
        idx = int(idx)
        if 0 <= idx < self._n_implicit:
            return str(idx)
        if idx < 0 or idx >= len(self):
            raise IndexError(f"node id {idx} is out of range 0..{len(self) - 1}")
        return self._ids[idx - self._n_implicit]

    def ids_of(self, idx: Iterable[int]) -> list[str]:
        return [self.id_of(i) for i in idx]

    def ids_array(self, idx: npt.ArrayLike) -> npt.NDArray[np.object_]:
        """External ids of an array of node ids, vectorised (-1 gives None)."""
        a = np.asarray(idx, dtype=np.int64)
        out = np.full(a.shape, None, dtype=object)
        if a.size == 0:
            return out
        if a.max() >= len(self):
            raise IndexError(f"node id {int(a.max())} is out of range 0..{len(self) - 1}")
        implicit = (a >= 0) & (a < self._n_implicit)
        if implicit.any():
            out[implicit] = a[implicit].astype(str).astype(object)
        explicit = a >= self._n_implicit
        if explicit.any():
            names = np.asarray(self._ids, dtype=object)
            out[explicit] = names[a[explicit] - self._n_implicit]
        return out


# ----------------------------------------------------------------------------------------------------
# one domain's graph
# ----------------------------------------------------------------------------------------------------


def edge_decay_factor(age_seconds: FloatArray, half_life_days: float | None) -> FloatArray:
    """Multiplier ``0.5 ** (age / half_life)`` of an edge stated ``age_seconds`` ago (1 if off or future).

    This is a true half-life (the level halves every ``half_life_days``), as in the Quidnug node's
    optional edge decay; ``None`` switches decay off.
    """
    age = np.asarray(age_seconds, dtype=np.float64)
    if half_life_days is None:
        return np.ones_like(age)
    return np.exp2(-np.maximum(age, 0.0) / (half_life_days * _SECONDS_PER_DAY))


def _latest_per_pair(src: IntArray, dst: IntArray, created: FloatArray | None) -> npt.NDArray[np.int64]:
    """Indices of the latest statement per (src, dst): sorted by (src, dst), ties to the later input."""
    order = np.lexsort((dst, src)) if created is None else np.lexsort((created, dst, src))
    s, d = src[order], dst[order]
    last = np.ones(order.shape[0], dtype=bool)
    last[:-1] = (s[1:] != s[:-1]) | (d[1:] != d[:-1])
    return order[last]


@dataclass(slots=True)
class _Overlay:
    """Edges added since the CSR arrays were built, sorted by source for vectorised gathers."""

    edges: dict[tuple[int, int], tuple[float, float, float]] = field(default_factory=dict)
    src: IntArray = field(default_factory=lambda: np.zeros(0, dtype=_I32))
    dst: IntArray = field(default_factory=lambda: np.zeros(0, dtype=_I32))
    level: FloatArray = field(default_factory=lambda: np.zeros(0))
    created: FloatArray = field(default_factory=lambda: np.zeros(0))
    valid_until: FloatArray = field(default_factory=lambda: np.zeros(0))
    dirty: bool = False

    def arrays(self) -> _Overlay:
        if self.dirty:
            items = sorted(self.edges.items())
            self.src = np.array([k[0] for k, _ in items], dtype=_I32)
            self.dst = np.array([k[1] for k, _ in items], dtype=_I32)
            self.level = np.array([v[0] for _, v in items], dtype=np.float64)
            self.created = np.array([v[1] for _, v in items], dtype=np.float64)
            self.valid_until = np.array([v[2] for _, v in items], dtype=np.float64)
            self.dirty = False
        return self


class DomainGraph:
    """The trust graph of one domain: CSR arrays plus an overlay of recently added edges.

    Parameters
    ----------
    indptr : int64 array, shape (n_rows + 1,)
    indices : int32 array, shape (nnz,)
        Trustees, sorted within each truster's row.
    level : float64 array, shape (nnz,)
        Edge levels in [0, 1]; 0 means "no trust" (a retracted statement).
    created, valid_until : float64 arrays or None
        Statement time and expiry (UTC epoch seconds; ``inf`` = never expires). ``None`` when unknown.

    Build one with :meth:`from_edges`, which applies "latest statement wins".
    """

    def __init__(
        self,
        indptr: npt.NDArray[np.int64],
        indices: IntArray,
        level: FloatArray,
        created: FloatArray | None = None,
        valid_until: FloatArray | None = None,
    ) -> None:
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(indices, dtype=_I32)
        self.level = np.ascontiguousarray(level, dtype=np.float64)
        self.created = None if created is None else np.ascontiguousarray(created, dtype=np.float64)
        self.valid_until = None if valid_until is None else np.ascontiguousarray(valid_until, dtype=np.float64)
        self._overlay = _Overlay()

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def empty(cls) -> DomainGraph:
        return cls(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=_I32), np.zeros(0))

    @classmethod
    def from_edges(
        cls,
        n_nodes: int,
        src: npt.ArrayLike,
        dst: npt.ArrayLike,
        level: npt.ArrayLike,
        created: npt.ArrayLike | None = None,
        valid_until: npt.ArrayLike | None = None,
    ) -> DomainGraph:
        """Build the CSR arrays from edge lists; the latest statement per (src, dst) wins.

        Ties on ``created`` go to the later position in the input. Levels must lie in [0, 1].

        Raises
        ------
        ValueError
            If the arrays differ in length, a level is outside [0, 1] or not finite, or a node id is
            outside ``0 .. n_nodes - 1``.
        """
        s = np.asarray(src, dtype=np.int64)
        d = np.asarray(dst, dtype=np.int64)
        lv = np.asarray(level, dtype=np.float64)
        cr = None if created is None else np.asarray(created, dtype=np.float64)
        vu = None if valid_until is None else np.asarray(valid_until, dtype=np.float64)
        n = s.shape[0]
        for name, arr in (("trustee", d), ("level", lv), ("created_at", cr), ("valid_until", vu)):
            if arr is not None and arr.shape != (n,):
                raise ValueError(f"{name} has shape {arr.shape}, expected ({n},) like truster")
        _check_levels(lv)
        if n and (min(s.min(), d.min()) < 0 or max(s.max(), d.max()) >= n_nodes):
            raise ValueError(f"truster/trustee node ids must lie in 0..{n_nodes - 1}")
        keep = _latest_per_pair(s.astype(_I32), d.astype(_I32), cr)
        s, d, lv = s[keep], d[keep], lv[keep]
        cr = None if cr is None else cr[keep]
        vu = None if vu is None else np.where(np.isnan(vu[keep]), np.inf, vu[keep])
        if vu is not None and np.isinf(vu).all():
            vu = None
        counts = np.bincount(s, minlength=n_nodes)
        indptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return cls(indptr, d.astype(_I32), lv, cr, vu)

    # -- size -----------------------------------------------------------------------------------

    @property
    def n_rows(self) -> int:
        return int(self.indptr.shape[0] - 1)

    def node_bound(self) -> int:
        """One more than the largest node id the graph mentions (rows and overlay)."""
        ov = self._overlay.arrays()
        top = max(int(ov.src.max()), int(ov.dst.max())) + 1 if ov.src.size else 0
        return max(self.n_rows, top)

    @property
    def nnz(self) -> int:
        """Stored edges (CSR plus overlay), including retracted (level 0) and expired ones."""
        return int(self.indices.shape[0]) + len(self._overlay.edges)

    @property
    def nbytes(self) -> int:
        total = self.indptr.nbytes + self.indices.nbytes + self.level.nbytes
        for arr in (self.created, self.valid_until):
            total += 0 if arr is None else arr.nbytes
        return total + 64 * len(self._overlay.edges)

    # -- updates --------------------------------------------------------------------------------

    def _csr_position(self, u: int, v: int) -> int:
        if u >= self.n_rows:
            return -1
        lo, hi = int(self.indptr[u]), int(self.indptr[u + 1])
        pos = lo + int(np.searchsorted(self.indices[lo:hi], v))
        return pos if pos < hi and self.indices[pos] == v else -1

    def get_edge(self, u: int, v: int) -> float:
        """Stored level of ``u -> v`` (0 if absent), ignoring expiry and decay."""
        hit = self._overlay.edges.get((u, v))
        if hit is not None:
            return hit[0]
        pos = self._csr_position(u, v)
        return float(self.level[pos]) if pos >= 0 else 0.0

    def set_edge(self, u: int, v: int, level: float, created: float = math.inf, valid_until: float = math.inf) -> bool:
        """Record a statement ``u -> v``; returns False if an equally new or newer one already stands.

        ``created = inf`` (unknown) always wins. Existing edges are overwritten in place; new edges go
        to the overlay, merged into the CSR arrays by :meth:`compact` once it grows.
        """
        _check_levels(np.asarray([level], dtype=np.float64))
        created = float(created)
        valid_until = math.inf if valid_until is None or math.isnan(valid_until) else float(valid_until)
        pos = self._csr_position(u, v)
        if pos >= 0:
            if self.created is not None and created < self.created[pos]:
                return False
            self.level[pos] = level
            if self.created is not None:
                self.created[pos] = created
            if valid_until != math.inf or self.valid_until is not None:
                if self.valid_until is None:
                    self.valid_until = np.full(self.indices.shape[0], np.inf)
                self.valid_until[pos] = valid_until
            return True
        old = self._overlay.edges.get((u, v))
        if old is not None and created < old[1]:
            return False
        self._overlay.edges[(u, v)] = (float(level), created, valid_until)
        self._overlay.dirty = True
        if len(self._overlay.edges) > max(_OVERLAY_MIN_COMPACT, _OVERLAY_COMPACT_FRACTION * self.indices.size):
            self.compact()
        return True

    def compact(self, n_nodes: int | None = None) -> None:
        """Merge the overlay into the CSR arrays (O(nnz))."""
        ov = self._overlay.arrays()
        n_rows = max(self.n_rows, int(ov.src.max()) + 1 if ov.src.size else 0, n_nodes or 0)
        row = np.repeat(np.arange(self.n_rows, dtype=_I32), np.diff(self.indptr))
        src = np.concatenate([row, ov.src])
        dst = np.concatenate([self.indices, ov.dst])
        lev = np.concatenate([self.level, ov.level])
        n_csr = self.indices.shape[0]
        created = None
        if self.created is not None:
            created = np.concatenate([self.created, ov.created])
        vu = None
        if self.valid_until is not None or (ov.valid_until.size and np.isfinite(ov.valid_until).any()):
            base = self.valid_until if self.valid_until is not None else np.full(n_csr, np.inf)
            vu = np.concatenate([base, ov.valid_until])
        # Overlay edges never duplicate CSR edges (those are written in place), so no dedup is needed.
        order = np.lexsort((dst, src))
        counts = np.bincount(src, minlength=n_rows)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        self.indptr, self.indices, self.level = indptr, dst[order].astype(_I32), lev[order]
        self.created = None if created is None else created[order]
        self.valid_until = None if vu is None else vu[order]
        self._overlay = _Overlay()

    # -- reads ----------------------------------------------------------------------------------

    def out_edges(
        self, frontier: IntArray
    ) -> tuple[npt.NDArray[np.int64], IntArray, FloatArray, FloatArray | None, FloatArray | None]:
        """All out-edges of the sorted node array ``frontier``.

        Returns
        -------
        pos : int64 array
            Position in ``frontier`` of each edge's tail.
        dst, level : arrays
            Head node and level of each edge.
        created, valid_until : arrays or None
            Per-edge statement time and expiry, when the graph stores them.
        """
        rows = frontier[frontier < self.n_rows]
        starts = self.indptr[rows]
        counts = self.indptr[rows + 1] - starts
        total = int(counts.sum())
        # Edge ids of all frontier rows: a run of consecutive ids per row (the CSR gather trick).
        offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
        eid = offsets + np.arange(total, dtype=np.int64)
        pos = np.repeat(np.arange(rows.shape[0], dtype=np.int64), counts)
        dst = self.indices[eid]
        lev = self.level[eid]
        cr = None if self.created is None else self.created[eid]
        vu = None if self.valid_until is None else self.valid_until[eid]
        ov = self._overlay.arrays() if self._overlay.edges else None
        if ov is not None and ov.src.size:
            where = np.searchsorted(frontier, ov.src)
            hit = where < frontier.shape[0]
            hit[hit] = frontier[where[hit]] == ov.src[hit]
            if hit.any():
                pos = np.concatenate([pos, where[hit].astype(np.int64)])
                dst = np.concatenate([dst, ov.dst[hit]])
                lev = np.concatenate([lev, ov.level[hit]])
                if cr is not None:
                    cr = np.concatenate([cr, ov.created[hit]])
                if vu is not None or np.isfinite(ov.valid_until[hit]).any():
                    base = vu if vu is not None else np.full(eid.shape[0], np.inf)
                    vu = np.concatenate([base, ov.valid_until[hit]])
        # rows filtered out above (frontier nodes beyond the CSR) only appear through the overlay,
        # and ``pos`` must index the full frontier: remap when any were dropped.
        if rows.shape[0] != frontier.shape[0] and eid.shape[0]:
            keep_pos = np.flatnonzero(frontier < self.n_rows)
            pos[: eid.shape[0]] = keep_pos[pos[: eid.shape[0]]]
        return pos, dst, lev, cr, vu

    def edge_arrays(self) -> tuple[IntArray, IntArray, FloatArray]:
        """All stored edges as ``(src, dst, level)`` (CSR then overlay)."""
        ov = self._overlay.arrays()
        row = np.repeat(np.arange(self.n_rows, dtype=_I32), np.diff(self.indptr))
        return (
            np.concatenate([row, ov.src]),
            np.concatenate([self.indices, ov.dst]),
            np.concatenate([self.level, ov.level]),
        )


def _check_levels(level: FloatArray) -> None:
    if level.size and (not np.isfinite(level).all() or level.min() < 0.0 or level.max() > 1.0):
        bad = level[~(np.isfinite(level) & (level >= 0) & (level <= 1))][0]
        raise ValueError(f"trust level must lie in [0, 1], got {bad}")


# ----------------------------------------------------------------------------------------------------
# the search
# ----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Round:
    """Improvements of one round: nodes (sorted), their new values and predecessors."""

    nodes: IntArray
    values: FloatArray
    preds: IntArray


@dataclass(slots=True)
class BestPaths:
    """Result of one bounded-depth best-path search from ``source`` in one domain.

    Attributes
    ----------
    source : int
        The observer's node id.
    max_depth : int
        Rounds run; answers are available for every depth ``d <= max_depth``.
    rounds : list of _Round
        ``rounds[k]`` holds the nodes whose best value rose in round ``k`` (``rounds[0]`` is the source).
    expires_at : float
        Earliest ``valid_until`` among the edges the search relaxed: the answer is exact until then.
    at : float
        The clock (UTC epoch seconds) the search used for expiry and edge decay.
    """

    source: int
    max_depth: int
    rounds: list[_Round]
    expires_at: float = math.inf
    at: float = 0.0
    _reach: dict[int, tuple[IntArray, FloatArray, npt.NDArray[np.int8]]] = field(default_factory=dict)
    _expanded: IntArray | None = None

    def _depth(self, depth: int | None) -> int:
        if depth is None:
            return self.max_depth
        if not 0 <= depth <= self.max_depth:
            raise ValueError(f"depth must lie in 0..{self.max_depth}, got {depth}")
        return depth

    def reach(self, depth: int | None = None) -> tuple[IntArray, FloatArray, npt.NDArray[np.int8]]:
        """Nodes with a path of at most ``depth`` edges: sorted ids, best values, best-path lengths."""
        d = min(self._depth(depth), len(self.rounds) - 1)
        hit = self._reach.get(d)
        if hit is None:
            nodes = np.concatenate([r.nodes for r in self.rounds[: d + 1]])
            values = np.concatenate([r.values for r in self.rounds[: d + 1]])
            hops = np.concatenate(
                [np.full(r.nodes.shape[0], k, dtype=np.int8) for k, r in enumerate(self.rounds[: d + 1])]
            )
            order = np.lexsort((hops, nodes))
            nodes, values, hops = nodes[order], values[order], hops[order]
            last = np.ones(nodes.shape[0], dtype=bool)
            last[:-1] = nodes[1:] != nodes[:-1]
            hit = (nodes[last], values[last], hops[last])
            self._reach[d] = hit
        return hit

    def values(self, targets: npt.ArrayLike, depth: int | None = None) -> FloatArray:
        """:math:`T_d(o, t)` for each target node id (0 where unreachable or unknown)."""
        nodes, values, _ = self.reach(depth)
        t = np.asarray(targets, dtype=np.int64)
        out = np.zeros(t.shape[0])
        if nodes.size == 0 or t.size == 0:
            return out
        where = np.searchsorted(nodes, t)
        where[where >= nodes.shape[0]] = 0
        found = nodes[where] == t
        out[found] = values[where[found]]
        return out

    def paths(self, targets: npt.ArrayLike, depth: int | None = None) -> npt.NDArray[np.int32]:
        """Best paths to ``targets`` as a matrix: row ``i`` is ``[o, ..., t_i]`` padded with -1.

        A row of only -1 means no path. Rebuilt by walking predecessors round by round, vectorised
        over all targets.
        """
        d = min(self._depth(depth), len(self.rounds) - 1)
        t = np.asarray(targets, dtype=np.int64)
        n = t.shape[0]
        level = np.full(n, -1, dtype=np.int64)  # last round <= d in which each target improved
        for k in range(d, -1, -1):
            todo = level < 0
            if not todo.any():
                break
            found, _ = member(self.rounds[k].nodes, t[todo])
            idx = np.flatnonzero(todo)[found]
            level[idx] = k
        out = np.full((n, self.max_depth + 1), -1, dtype=_I32)
        cur = t.copy()
        active = level >= 0
        out[active, level[active]] = cur[active]
        for k in range(d, 0, -1):
            at_k = active & (level == k)
            if not at_k.any():
                continue
            found, where = member(self.rounds[k].nodes, cur[at_k])
            if not found.all():  # cannot happen: a node recorded at round k is in round k's list
                raise RuntimeError("inconsistent search rounds")
            pred = self.rounds[k].preds[where].astype(np.int64)
            cur[at_k] = pred
            level[at_k] = k - 1
            out[at_k, k - 1] = pred
        return out

    def path(self, target: int, depth: int | None = None) -> list[int] | None:
        """Best path ``[o, ..., target]`` as node ids, or None if there is none within ``depth``."""
        row = self.paths([target], depth)[0]
        return None if row[0] < 0 else [int(x) for x in row[row >= 0]]

    def expanded(self) -> IntArray:
        """Sorted nodes whose out-edges the search relaxed: new edges out of any other node cannot
        change this result (used for cache invalidation)."""
        if self._expanded is None:
            parts = [r.nodes for r in self.rounds[: self.max_depth]]
            self._expanded = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=_I32)
        return self._expanded

    def touches(self, tails: npt.ArrayLike) -> bool:
        """True if an edge out of any node in ``tails`` could change this result."""
        found, _ = member(self.expanded(), np.asarray(tails, dtype=np.int64))
        return bool(found.any())

    @property
    def n_reached(self) -> int:
        return int(self.reach()[0].shape[0])

    @property
    def nbytes(self) -> int:
        total = sum(r.nodes.nbytes + r.values.nbytes + r.preds.nbytes for r in self.rounds)
        total += sum(a.nbytes + b.nbytes + c.nbytes for a, b, c in self._reach.values())
        return total + (0 if self._expanded is None else self._expanded.nbytes)


def member(sorted_nodes: npt.NDArray[Any], query: npt.NDArray[Any]) -> tuple[npt.NDArray[np.bool_], Any]:
    """For each query value: is it in the sorted array ``sorted_nodes``, and at which position."""
    if sorted_nodes.size == 0:
        return np.zeros(query.shape[0], dtype=bool), np.zeros(query.shape[0], dtype=np.int64)
    where = np.searchsorted(sorted_nodes, query)
    where[where >= sorted_nodes.shape[0]] = 0
    return sorted_nodes[where] == query, where


def best_paths(
    graph: DomainGraph,
    source: int,
    max_depth: int,
    *,
    n_nodes: int | None = None,
    at: float | None = None,
    edge_half_life_days: float | None = None,
) -> BestPaths:
    """Exact bounded-depth best-path search from ``source`` (see the module docstring).

    Parameters
    ----------
    graph : DomainGraph
        One domain's edges.
    source : int
        Observer node id.
    max_depth : int
        Maximum path length in edges (>= 0).
    n_nodes : int, optional
        Number of node ids in use (defaults to the graph's row count); bounds the scratch array.
    at : float, optional
        Clock in UTC epoch seconds: edges with ``valid_until <= at`` count 0 and edge decay is measured
        up to it. Required when ``edge_half_life_days`` is set or the graph has expiring edges.
    edge_half_life_days : float, optional
        Multiply each level by ``0.5 ** (age / half_life)`` (off when None).

    Returns
    -------
    BestPaths

    Notes
    -----
    Work is proportional to the out-degree sum of the nodes that improve in rounds ``0 .. max_depth -
    1``, never to the whole graph (apart from one zero-filled scratch array of ``n_nodes`` floats).
    """
    if max_depth < 0:
        raise ValueError(f"max_depth must be >= 0, got {max_depth}")
    n = max(graph.node_bound(), int(n_nodes or 0), int(source) + 1)
    if source < 0:
        raise ValueError(f"source node id must be >= 0, got {source}")
    clock = 0.0 if at is None else float(at)
    needs_clock = edge_half_life_days is not None or graph.valid_until is not None
    if needs_clock and at is None:
        raise ValueError("at (the clock) is required when edges expire or decay")
    best = np.zeros(n)
    best[source] = 1.0
    frontier = np.array([source], dtype=_I32)
    fvals = np.ones(1)
    rounds = [_Round(frontier, fvals, np.array([_NO_PRED], dtype=_I32))]
    expires = math.inf
    for _ in range(max_depth):
        pos, dst, lev, created, valid_until = graph.out_edges(frontier)
        if dst.size == 0:
            break
        if valid_until is not None:
            live = valid_until > clock
            if live.any():
                expires = min(expires, float(valid_until[live].min()))
            lev = np.where(live, lev, 0.0)
        if edge_half_life_days is not None and created is not None:
            lev = lev * edge_decay_factor(clock - created, edge_half_life_days)
        cand = fvals[pos] * lev
        better = cand > best[dst]
        if not better.any():
            break
        dst, cand, src = dst[better], cand[better], frontier[pos[better]]
        np.maximum.at(best, dst, cand)
        win = cand == best[dst]
        dst, cand, src = dst[win], cand[win], src[win]
        frontier, first = np.unique(dst, return_index=True)
        frontier = frontier.astype(_I32)
        fvals = cand[first]
        rounds.append(_Round(frontier, fvals, src[first].astype(_I32)))
    return BestPaths(source=int(source), max_depth=int(max_depth), rounds=rounds, expires_at=expires, at=clock)


# ----------------------------------------------------------------------------------------------------
# all domains
# ----------------------------------------------------------------------------------------------------


class TrustGraph:
    """Every domain's :class:`DomainGraph` over one shared :class:`NodeIndex`.

    Parameters
    ----------
    nodes : NodeIndex, optional
        Shared node ids (a new empty index by default).
    """

    def __init__(self, nodes: NodeIndex | None = None) -> None:
        self.nodes = nodes if nodes is not None else NodeIndex()
        self.domains: dict[str, DomainGraph] = {}

    @classmethod
    def from_arrays(
        cls,
        truster: npt.ArrayLike,
        trustee: npt.ArrayLike,
        domain: npt.ArrayLike | str,
        level: npt.ArrayLike,
        created_at: npt.ArrayLike | None = None,
        valid_until: npt.ArrayLike | None = None,
        *,
        nodes: NodeIndex | None = None,
    ) -> TrustGraph:
        """Build from edge arrays; ``truster``/``trustee`` are string ids, or int node ids when
        ``nodes`` is given (an implicit index, for example). The latest statement per
        (truster, trustee, domain) wins.

        Raises
        ------
        ValueError
            On mismatched lengths, a level outside [0, 1], or a malformed domain.
        """
        graph = cls(nodes)
        tr = np.asarray(truster)
        te = np.asarray(trustee)
        if tr.shape != te.shape:
            raise ValueError(f"trustee has shape {te.shape}, expected {tr.shape} like truster")
        if tr.dtype.kind in "iu" and te.dtype.kind in "iu":
            src, dst = tr.astype(np.int64), te.astype(np.int64)
            if src.size and max(src.max(), dst.max()) >= len(graph.nodes):
                raise ValueError("integer truster/trustee ids must be known to the node index")
        else:
            src = graph.nodes.add_many(tr).astype(np.int64)
            dst = graph.nodes.add_many(te).astype(np.int64)
        lv = np.asarray(level, dtype=np.float64)
        cr = None if created_at is None else np.asarray(created_at, dtype=np.float64)
        vu = None if valid_until is None else np.asarray(valid_until, dtype=np.float64)
        if isinstance(domain, str):
            groups: list[tuple[str, npt.NDArray[np.int64]]] = [
                (validate_topic(domain, "domain"), np.arange(src.shape[0]))
            ]
        else:
            dom = np.asarray(domain, dtype=object)
            if dom.shape != src.shape:
                raise ValueError(f"domain has shape {dom.shape}, expected {src.shape} like truster")
            codes, uniques = pd.factorize(dom)
            groups = [(validate_topic(str(u), "domain"), np.flatnonzero(codes == k)) for k, u in enumerate(uniques)]
        n = len(graph.nodes)
        for name, rows in groups:
            graph.domains[name] = DomainGraph.from_edges(
                n,
                src[rows],
                dst[rows],
                lv[rows],
                None if cr is None else cr[rows],
                None if vu is None else vu[rows],
            )
        return graph

    def domain(self, name: str) -> DomainGraph:
        """The graph of domain ``name`` (an empty one if nothing was stated in it)."""
        return self.domains.get(name) or _EMPTY

    def add_edge(
        self,
        truster: str,
        trustee: str,
        domain: str,
        level: float,
        created_at: float = math.inf,
        valid_until: float = math.inf,
    ) -> bool:
        """Record one statement; returns False if a newer one for the same edge already stands."""
        name = validate_topic(domain, "domain")
        u, v = self.nodes.add(truster), self.nodes.add(trustee)
        g = self.domains.get(name)
        if g is None:
            g = self.domains[name] = DomainGraph.empty()
        return g.set_edge(u, v, float(level), created_at, valid_until)

    def search(
        self,
        observer: int,
        domain: str,
        max_depth: int,
        *,
        at: float | None = None,
        edge_half_life_days: float | None = None,
    ) -> BestPaths:
        """:func:`best_paths` from ``observer`` in ``domain``."""
        return best_paths(
            self.domain(domain),
            observer,
            max_depth,
            n_nodes=len(self.nodes),
            at=at,
            edge_half_life_days=edge_half_life_days,
        )

    def union(self, domains: Sequence[str] | None = None) -> DomainGraph:
        """One graph of the given domains' edges (all by default), keeping the highest level per
        pair: what a domain-blind node (the Quidnug reference) sees."""
        names = list(self.domains) if domains is None else list(domains)
        parts = [self.domain(n).edge_arrays() for n in names]
        if not parts:
            return DomainGraph.empty()
        src = np.concatenate([p[0] for p in parts])
        dst = np.concatenate([p[1] for p in parts])
        lev = np.concatenate([p[2] for p in parts])
        # "created" = level, so the latest-wins pass keeps the highest level per pair.
        return DomainGraph.from_edges(len(self.nodes), src, dst, lev, created=lev)

    @property
    def nbytes(self) -> int:
        return sum(g.nbytes for g in self.domains.values())


_EMPTY = DomainGraph.empty()
