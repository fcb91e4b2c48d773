"""Camouflage-resistant dense-block detection: FRAUDAR's weighted peeling (Hooi et al., KDD 2016).

Let ``S = (U_S, I_S)`` be a set of accounts and items of the bipartite rating graph, and give each item
column the weight ``c_i = 1 / log(d_i + 5)``, ``d_i`` its number of raters. The suspiciousness of ``S``
is its weighted density

    g(S) = f(S) / (|U_S| + |I_S|),   f(S) = sum over edges (u, i) inside S of c_i.

The column weighting is what makes the block camouflage resistant: an account of a ring that also rates
popular items (camouflage) adds edges of weight ``1/log(d + 5)``, small for popular items, while the ring's
targets, rated by few outsiders, keep a high weight (FRAUDAR, Theorem 2: camouflage cannot lower the
density of the fraudulent block's own edges).

The maximiser is found by peeling. Each node's *priority* is its weighted degree inside ``S`` (for an
account ``sum_{i in S} c_i``; for an item ``c_i`` times its raters in ``S``); the priorities sum to
``2 f(S)``. FRAUDAR removes the node of least priority one at a time (a 2-approximation of the densest
block). Here every node whose priority is within ``(1 + eps)`` of the current least priority is removed
at once (one vectorised pass per round; with ``eps -> 0`` this is FRAUDAR's greedy order, and nodes
are only removed together when their priorities are within a factor ``1 + eps``, so it keeps the
2-approximation up to that factor). The densest ``S`` seen is returned. The detectors call it on
candidate subgraphs (the accounts around co-targeted items), not on the whole platform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from truescore.integrity._common import FloatArray, IntArray

__all__ = ["DenseBlock", "column_weights", "peel"]


@dataclass(frozen=True, slots=True)
class DenseBlock:
    """The densest block found: masks over rows (accounts) and columns (items) and its density ``g``."""

    rows: IntArray
    cols: IntArray
    density: float


def column_weights(degree: FloatArray) -> FloatArray:
    """FRAUDAR's column weight ``1 / log(d + 5)``."""
    return 1.0 / np.log(np.asarray(degree, dtype=np.float64) + 5.0)


def peel(rows: IntArray, cols: IntArray, weight: FloatArray, n_rows: int, n_cols: int, *,
         eps: float = 0.1) -> DenseBlock:
    """Batch-peel the bipartite graph of edges ``(rows[k], cols[k])`` with weights ``weight[k]``.

    Returns the block of highest weighted density ``f(S)/|S|`` seen while peeling (see the module
    docstring). Duplicate edges count once each, so pass de-duplicated edges.
    """
    if eps <= 0:
        raise ValueError("eps must be positive")
    alive_r = np.zeros(n_rows, dtype=bool)
    alive_c = np.zeros(n_cols, dtype=bool)
    alive_r[rows] = True
    alive_c[cols] = True
    best = DenseBlock(np.flatnonzero(alive_r), np.flatnonzero(alive_c), 0.0)
    edge = np.ones(rows.shape[0], dtype=bool)
    while True:
        r, c, w = rows[edge], cols[edge], weight[edge]
        size = int(alive_r.sum() + alive_c.sum())
        if size == 0 or r.size == 0:
            break
        f = float(w.sum())
        g = f / size
        if g > best.density:
            best = DenseBlock(np.flatnonzero(alive_r), np.flatnonzero(alive_c), g)
        pr = np.bincount(r, weights=w, minlength=n_rows)
        pc = np.bincount(c, weights=w, minlength=n_cols)
        least = min(float(pr[alive_r].min()) if alive_r.any() else np.inf,
                    float(pc[alive_c].min()) if alive_c.any() else np.inf)
        cut = (1.0 + eps) * least
        alive_r &= ~(pr <= cut)
        alive_c &= ~(pc <= cut)
        # nodes left without edges are dropped too
        edge = alive_r[rows] & alive_c[cols]
        alive_r &= np.bincount(rows[edge], minlength=n_rows) > 0
        alive_c &= np.bincount(cols[edge], minlength=n_cols) > 0
        edge = alive_r[rows] & alive_c[cols]
    return best
