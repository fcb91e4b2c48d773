"""Near-duplicate texts across accounts, by MinHash over word 3-shingles (Broder 1997).

Let ``A`` be the set of word 3-shingles of a text (lower-cased, punctuation dropped). For ``H``
independent hash functions ``h_k(x) = (a_k x + b_k) mod p`` (``p = 2^31 - 1``) over CRC-32 shingle hashes, the
signature is ``m_k(A) = min_{x in A} h_k(x)``, and ``P[m_k(A) = m_k(B)] = J(A, B)``, the Jaccard similarity. Locality
sensitive hashing groups texts whose signatures agree on all ``R`` rows of at least one of ``H/R``
bands (``H = 32``, ``R = 4``: pairs with ``J = 0.8`` collide with probability ``1 - (1 - 0.8^4)^8``
= 0.9996, pairs with ``J = 0.3`` with 0.06); candidates are confirmed with the estimated Jaccard
``mean_k [m_k(A) = m_k(B)] >= duplicate_threshold``.

A templated or paraphrased campaign posts the same text from many accounts on its few targets. A
review gets the evidence ``1`` when its text has near-duplicates by at least
``duplicate_min_accounts`` distinct accounts (itself included) on the same item, the text has at least
``duplicate_min_words`` words (shorter texts, "Great product!", repeat honestly), and the cluster is
concentrated on the item beyond chance: with ``c`` of the cluster's ``f`` occurrences on the item,
``n_i`` texts on the item and ``N`` on the platform, ``lift = (c / n_i) / (f / N) >= duplicate_min_lift``.
A stock phrase (or a template that many honest reviewers happen to share) appears on an item about as
often as anywhere else; a campaign's text is piled onto its targets.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from truescore.integrity._common import FloatArray, IntegrityInputs

__all__ = ["Duplicates", "near_duplicates"]

_H, _R = 32, 4
_P = (1 << 31) - 1
_WORD = re.compile(r"[a-z0-9']+")



@dataclass(slots=True)
class Duplicates:
    """Per rating: ``group`` (near-duplicate cluster id, -1 none), ``accounts`` (distinct accounts in the
    cluster on this item) and ``evidence`` in [0, 1]."""

    group: np.ndarray
    accounts: np.ndarray
    evidence: FloatArray
    lift: FloatArray | None = None


def _signatures(texts: list[str | None], min_words: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240611)
    a = rng.integers(1, _P, _H, dtype=np.uint64)
    b = rng.integers(0, _P, _H, dtype=np.uint64)
    rows, sigs = [], []
    for j, t in enumerate(texts):
        if not t:
            continue
        words = _WORD.findall(t.lower())
        if len(words) < min_words:
            continue
        sh = {" ".join(words[k:k + 3]) for k in range(len(words) - 2)}
        x = np.fromiter((zlib.crc32(s.encode()) for s in sh), dtype=np.uint64, count=len(sh))
        # (a x + b) mod p with a, b, x < p = 2^31 - 1: the product stays below 2^62 (no overflow)
        hv = (a[:, None] * (x[None, :] % np.uint64(_P)) + b[:, None]) % np.uint64(_P)
        rows.append(j)
        sigs.append(hv.min(axis=1))
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, _H), dtype=np.uint64)
    return np.asarray(rows, dtype=np.int64), np.vstack(sigs)


def near_duplicates(inp: IntegrityInputs, *, threshold: float = 0.8, min_accounts: int = 3,
                    min_words: int = 8, min_lift: float = 20.0) -> Duplicates:
    """Near-duplicate clusters of texts and the evidence per rating (see the module docstring)."""
    n = inp.n_ratings
    group = np.full(n, -1, dtype=np.int64)
    accounts = np.zeros(n, dtype=np.int64)
    evidence = np.zeros(n)
    if inp.texts is None:
        return Duplicates(group, accounts, evidence)
    rows, sig = _signatures(inp.texts, min_words)
    if rows.size < 2:
        return Duplicates(group, accounts, evidence)
    parent = np.arange(rows.size)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    for band in range(_H // _R):
        keys = sig[:, band * _R:(band + 1) * _R]
        _, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.ravel()
        order = np.argsort(inv, kind="stable")
        same = np.flatnonzero(inv[order][1:] == inv[order][:-1])
        for k in same:
            p, q = int(order[k]), int(order[k + 1])
            if float(np.mean(sig[p] == sig[q])) >= threshold:
                rp, rq = find(p), find(q)
                if rp != rq:
                    parent[rq] = rp
    roots = np.array([find(k) for k in range(rows.size)])
    group[rows] = roots
    # distinct accounts per (cluster, item)
    g, it, us = roots, inp.item_idx[rows], inp.user_idx[rows]
    pairs = np.unique(np.c_[g, it, us], axis=0)
    gi, cnt = np.unique(pairs[:, :2], axis=0, return_counts=True)
    lookup = {(int(x), int(y)): int(c) for (x, y), c in zip(gi, cnt, strict=True)}
    acc = np.array([lookup[(int(x), int(y))] for x, y in zip(g, it, strict=True)])
    # concentration beyond chance: (c / n_i) / (f / N)
    key = pd.MultiIndex.from_arrays([g, it])
    c = pd.Series(1, index=key).groupby(level=[0, 1]).size().reindex(key).to_numpy(float)
    f = pd.Series(g).map(pd.Series(g).value_counts()).to_numpy(float)
    n_i = np.bincount(it, minlength=inp.n_items).astype(float)[it]
    lift = (c / n_i) / (f / rows.size)
    accounts[rows] = acc
    evidence[rows] = ((acc >= min_accounts) & (lift >= min_lift)).astype(np.float64)
    lifts = np.full(n, np.nan)
    lifts[rows] = lift
    return Duplicates(group, accounts, evidence, lifts)
