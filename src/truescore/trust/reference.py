"""The reference trust query of seed 003, reproduced faithfully for comparison (tests and benchmark).

Quidnug's rater (``examples/reviews-and-comments/algorithm.py``) asks the node for
``get_trust(observer, target, domain, max_depth)`` once per reviewer and once per voter. The node
(``ComputeRelationalTrust`` in its ``registry.go``) answers with a breadth-first search over a
domain-blind trust registry:

1. the queue starts with the observer (path ``[observer]``, trust 1) and ``visited = {observer}``;
2. before each pop, if the queue holds more than ``max_queue`` states or ``visited`` more than
   ``max_visited`` nodes, it stops and returns the best answer so far with ``ErrTrustGraphTooLarge``;
3. for each out-edge ``current -> w`` with level ``l`` and ``w`` not on the current path:
   the path trust is ``trust * l``; if ``w`` is the target it updates the best answer; otherwise, if
   the current path has fewer than ``max_depth`` nodes **and ``w`` was never queued**, ``w`` is marked
   visited and queued.

Step 3 marks a node visited the first time it is *queued*, so when a later, better path reaches an
already-queued node that path is dropped: the answer is the best over the BFS tree, not over all
paths. The domain is ignored (one registry for all domains), no path is returned to the rater, and
every reviewer and voter costs one such search. :func:`quidnug_trust` keeps all of that, including the
10,000-state limits; only the order of out-edges differs (Go iterates a map in random order; here
edges come in CSR order, sorted by node id).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from truescore.trust.graph import DomainGraph

__all__ = ["QUIDNUG_MAX_QUEUE", "QUIDNUG_MAX_VISITED", "ReferenceAnswer", "quidnug_trust"]

#: ``MaxTrustQueueSize`` and ``MaxTrustVisitedSize`` of the Quidnug node.
QUIDNUG_MAX_QUEUE = 10_000
QUIDNUG_MAX_VISITED = 10_000


@dataclass(frozen=True, slots=True)
class ReferenceAnswer:
    """One answer of the reference query.

    Attributes
    ----------
    level : float
        Best trust found (0 if none).
    path : tuple of int
        Node ids of the path that gave ``level`` (empty if none).
    truncated : bool
        True if the node's resource limits stopped the search (``ErrTrustGraphTooLarge``).
    states_popped : int
        Queue states processed (a measure of the work done).
    """

    level: float
    path: tuple[int, ...]
    truncated: bool
    states_popped: int


def quidnug_trust(
    graph: DomainGraph,
    observer: int,
    target: int,
    max_depth: int = 5,
    *,
    max_queue: int | None = QUIDNUG_MAX_QUEUE,
    max_visited: int | None = QUIDNUG_MAX_VISITED,
) -> ReferenceAnswer:
    """The Quidnug node's ``ComputeRelationalTrust`` on one (domain-blind) graph.

    Parameters
    ----------
    graph : DomainGraph
        The edges the node knows (for the node, the union of all domains: see
        :meth:`truescore.trust.graph.TrustGraph.union`).
    observer, target : int
        Node ids.
    max_depth : int, default 5
        ``maxDepth`` (values <= 0 mean 5, as in the node).
    max_queue, max_visited : int or None
        The node's resource limits; None disables them.

    Returns
    -------
    ReferenceAnswer
    """
    if max_depth <= 0:
        max_depth = 5
    if observer == target:
        return ReferenceAnswer(1.0, (observer,), False, 0)
    indptr, indices, level = graph.indptr, graph.indices, graph.level
    n_rows = graph.n_rows
    queue: deque[tuple[int, tuple[int, ...], float]] = deque([(observer, (observer,), 1.0)])
    visited = {observer}
    best, best_path, popped = 0.0, (), 0
    while queue:
        if (max_queue is not None and len(queue) > max_queue) or (
            max_visited is not None and len(visited) > max_visited
        ):
            return ReferenceAnswer(best, best_path, True, popped)
        node, path, trust = queue.popleft()
        popped += 1
        if node >= n_rows:
            continue
        lo, hi = int(indptr[node]), int(indptr[node + 1])
        for w, lv in zip(indices[lo:hi].tolist(), level[lo:hi].tolist(), strict=True):
            if w in path:  # cycle avoidance: the node scans the current path
                continue
            path_trust = trust * lv
            new_path = (*path, w)
            if w == target:
                if path_trust > best:
                    best, best_path = path_trust, new_path
                continue
            if len(path) < max_depth and w not in visited:
                visited.add(w)
                queue.append((w, new_path, path_trust))
    return ReferenceAnswer(best, best_path, False, popped)
