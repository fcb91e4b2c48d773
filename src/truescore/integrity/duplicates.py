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

In pieces, so that the texts need not be where the rest runs. The per-text part,
:func:`minhash_signatures` (shingles, signature, the ``min_words`` check), is a pure function of a batch
of texts (:func:`pack_signatures`: ``H`` 4-byte integers per text). The rest reads only the signatures
and each rating's item and account: :func:`candidate_pairs` (bands, confirmation), :func:`union_clusters`
(the clusters, joined in the pairs' order) and :func:`duplicates_from_clusters` (accounts, lift,
evidence). :func:`near_duplicates` chains them from ``IntegrityInputs.texts``, or starts from
``IntegrityInputs.signatures`` or ``IntegrityInputs.clusters`` computed elsewhere (``truescore spark
score`` computes the signatures on the executors and the pairs in Spark); the result is the same,
cluster ids included.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.integrity._common import (
    DEFAULTS,
    FloatArray,
    IntArray,
    IntegrityInputs,
    TextClusters,
    TextSignatures,
)

__all__ = [
    "BANDS",
    "BAND_ROWS",
    "SIGNATURE_BYTES",
    "SIGNATURE_SIZE",
    "Duplicates",
    "TextClusters",
    "TextSignatures",
    "candidate_pairs",
    "duplicates_from_clusters",
    "duplicates_from_signatures",
    "minhash_signatures",
    "near_duplicates",
    "pack_signatures",
    "signatures_from_bytes",
    "union_clusters",
    "unpack_signatures",
]

_H, _R = 32, 4
_P = (1 << 31) - 1
_WORD = re.compile(r"[a-z0-9']+")
SIGNATURE_SIZE = _H
BANDS, BAND_ROWS = _H // _R, _R
SIGNATURE_BYTES = 4 * _H  # each m_k < p < 2^31: one little-endian uint32 per hash function
_SIG_DTYPE = np.dtype("<u4")


def _coefficients() -> tuple[np.ndarray, np.ndarray]:
    """``a_k`` in [1, p), ``b_k`` in [0, p): fixed (seeded), so signatures computed anywhere agree."""
    rng = np.random.default_rng(20240611)
    a = rng.integers(1, _P, _H, dtype=np.uint64)
    b = rng.integers(0, _P, _H, dtype=np.uint64)
    return a, b


_A, _B = _coefficients()


@dataclass(slots=True)
class Duplicates:
    """Per rating: ``group`` (near-duplicate cluster id, -1 none), ``accounts`` (distinct accounts in the
    cluster on this item) and ``evidence`` in [0, 1]."""

    group: np.ndarray
    accounts: np.ndarray
    evidence: FloatArray
    lift: FloatArray | None = None


def _signature(text: str | None, min_words: int) -> np.ndarray | None:
    """``m_k = min_x (a_k x + b_k) mod p`` over the CRC-32 hashes ``x`` of the word 3-shingles; None for
    no text or fewer than ``min_words`` words."""
    if not text:
        return None
    words = _WORD.findall(text.lower())
    if len(words) < min_words:
        return None
    sh = {" ".join(words[k:k + 3]) for k in range(len(words) - 2)}
    x = np.fromiter((zlib.crc32(s.encode()) for s in sh), dtype=np.uint64, count=len(sh))
    # (a x + b) mod p with a, b, x < p = 2^31 - 1: the product stays below 2^62 (no overflow)
    hv = (_A[:, None] * (x[None, :] % np.uint64(_P)) + _B[:, None]) % np.uint64(_P)
    return np.asarray(hv.min(axis=1), dtype=np.uint64)


def minhash_signatures(texts: Sequence[str | None], min_words: int) -> TextSignatures:
    """MinHash signatures of a batch of texts (pure: depends on each text alone).

    ``rows`` are the positions (increasing) of the texts with at least ``min_words`` words, ``values``
    their signatures, shape ``(len(rows), H)``, uint64 in ``[0, p)``.
    """
    rows, sigs = [], []
    for j, t in enumerate(texts):
        sig = _signature(t, min_words)
        if sig is not None:
            rows.append(j)
            sigs.append(sig)
    if not rows:
        return TextSignatures(np.zeros(0, dtype=np.int64), np.zeros((0, _H), dtype=np.uint64), min_words)
    return TextSignatures(np.asarray(rows, dtype=np.int64), np.vstack(sigs), min_words)


def pack_signatures(texts: Sequence[str | None], min_words: int) -> list[bytes | None]:
    """One value per text: its signature as :data:`SIGNATURE_BYTES` bytes (``H`` little-endian uint32),
    or None when it has none. The compact per-review form a Spark job ships instead of the text."""
    sigs = minhash_signatures(texts, min_words)
    out: list[bytes | None] = [None] * len(texts)
    packed = sigs.values.astype(_SIG_DTYPE)
    for j, row in zip(sigs.rows.tolist(), packed, strict=True):
        out[j] = row.tobytes()
    return out


def unpack_signatures(packed: Sequence[bytes | None], min_words: int) -> TextSignatures:
    """Inverse of :func:`pack_signatures` over a column in rating order (None / NaN = no signature)."""
    valid = np.array([isinstance(v, (bytes, bytearray, memoryview)) for v in packed], dtype=bool)
    blob = b"".join(bytes(v) for v in packed if isinstance(v, (bytes, bytearray, memoryview)))
    return signatures_from_bytes(valid, blob, min_words)


def signatures_from_bytes(valid: npt.NDArray[np.bool_], data: bytes | bytearray | memoryview, min_words: int
                          ) -> TextSignatures:
    """Signatures from a has-signature flag per rating and the packed signatures of the flagged ones, back
    to back in rating order (:data:`SIGNATURE_BYTES` each). ``values`` are uint32 (4 bytes per hash: the
    compact form a driver keeps; the detector's arithmetic is the same as on uint64)."""
    valid = np.asarray(valid, dtype=bool)
    m = int(valid.sum())
    values = np.frombuffer(data, dtype=_SIG_DTYPE)
    if values.size != m * _H:
        raise ValueError(f"packed signatures must have {SIGNATURE_BYTES} bytes each: {values.size * 4} bytes "
                         f"for {m} flagged ratings")
    return TextSignatures(np.flatnonzero(valid).astype(np.int64), values.reshape(m, _H).astype(np.uint32),
                          min_words)


def near_duplicates(inp: IntegrityInputs, *, threshold: float = DEFAULTS.duplicate_threshold,
                    min_accounts: int = DEFAULTS.duplicate_min_accounts, min_words: int = DEFAULTS.duplicate_min_words,
                    min_lift: float = DEFAULTS.duplicate_min_lift) -> Duplicates:
    """Near-duplicate clusters of texts and the evidence per rating (see the module docstring).

    Reads ``inp.signatures`` when given (computed with the same ``min_words``), else the signatures of
    ``inp.texts``; neither: no evidence.
    """
    if inp.clusters is not None:
        c = inp.clusters
        if (c.min_words, c.threshold) != (min_words, threshold):
            raise ValueError(f"clusters were formed with min_words={c.min_words}, threshold={c.threshold}; the "
                             f"detector uses {min_words}, {threshold}")
        return duplicates_from_clusters(c, inp.item_idx, inp.user_idx, inp.n_items, min_accounts=min_accounts,
                                        min_lift=min_lift)
    sigs = inp.signatures
    if sigs is None and inp.texts is not None:
        sigs = minhash_signatures(inp.texts, min_words)
    if sigs is None:
        n = inp.n_ratings
        return Duplicates(np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n))
    if sigs.min_words != min_words:
        raise ValueError(f"signatures were computed with min_words={sigs.min_words}, the detector uses {min_words}")
    return duplicates_from_signatures(sigs, inp.item_idx, inp.user_idx, inp.n_items, threshold=threshold,
                                      min_accounts=min_accounts, min_lift=min_lift)


def candidate_pairs(sig: np.ndarray, threshold: float) -> IntArray:
    """Confirmed candidate pairs ``(p, q)`` of signature rows, in the order the clusters are joined.

    Per band (in order), rows sharing all ``R`` values of the band form a bucket; buckets are taken in
    lexicographic order of those values, and within one each row is paired with the next by position.
    A pair is confirmed when ``mean_k [m_k = m'_k] >= threshold``.
    """
    pairs: list[tuple[int, int]] = []
    for band in range(_H // _R):
        keys = sig[:, band * _R:(band + 1) * _R]
        _, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.ravel()
        order = np.argsort(inv, kind="stable")
        same = np.flatnonzero(inv[order][1:] == inv[order][:-1])
        for k in same:
            p, q = int(order[k]), int(order[k + 1])
            if float(np.mean(sig[p] == sig[q])) >= threshold:
                pairs.append((p, q))
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def union_clusters(m: int, pairs: IntArray) -> IntArray:
    """Union-find root of each of ``m`` rows after joining ``pairs`` in order (root of ``q``'s tree under
    root of ``p``'s), with path halving: the cluster ids of :func:`near_duplicates`."""
    parent = np.arange(m)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    for p, q in pairs.tolist():
        rp, rq = find(p), find(q)
        if rp != rq:
            parent[rq] = rp
    return np.array([find(k) for k in range(m)], dtype=np.int64)


def duplicates_from_signatures(sigs: TextSignatures, item_idx: IntArray, user_idx: IntArray, n_items: int, *,
                               threshold: float = DEFAULTS.duplicate_threshold,
                               min_accounts: int = DEFAULTS.duplicate_min_accounts,
                               min_lift: float = DEFAULTS.duplicate_min_lift) -> Duplicates:
    """Clusters, accounts, lift and evidence per rating from the signatures alone (no text).

    ``item_idx``, ``user_idx``: one entry per rating; ``sigs.rows`` index them.
    """
    roots = union_clusters(sigs.rows.size, candidate_pairs(sigs.values, threshold)) if sigs.rows.size >= 2 \
        else np.zeros(0, dtype=np.int64)
    return duplicates_from_clusters(TextClusters(sigs.rows, roots, sigs.min_words, threshold), item_idx, user_idx,
                                    n_items, min_accounts=min_accounts, min_lift=min_lift)


def duplicates_from_clusters(clusters: TextClusters, item_idx: IntArray, user_idx: IntArray, n_items: int, *,
                             min_accounts: int = 3, min_lift: float = 20.0) -> Duplicates:
    """Accounts, lift and evidence per rating from the clusters (see the module docstring)."""
    n = int(item_idx.shape[0])
    group = np.full(n, -1, dtype=np.int64)
    accounts = np.zeros(n, dtype=np.int64)
    evidence = np.zeros(n)
    rows, roots = clusters.rows, clusters.roots
    if rows.size < 2:
        return Duplicates(group, accounts, evidence)
    group[rows] = roots
    # distinct accounts per (cluster, item)
    g, it, us = roots, item_idx[rows], user_idx[rows]
    pairs = np.unique(np.c_[g, it, us], axis=0)
    gi, cnt = np.unique(pairs[:, :2], axis=0, return_counts=True)
    lookup = {(int(x), int(y)): int(c) for (x, y), c in zip(gi, cnt, strict=True)}
    acc = np.array([lookup[(int(x), int(y))] for x, y in zip(g, it, strict=True)])
    # concentration beyond chance: (c / n_i) / (f / N)
    key = pd.MultiIndex.from_arrays([g, it])
    c = pd.Series(1, index=key).groupby(level=[0, 1]).size().reindex(key).to_numpy(float)
    f = pd.Series(g).map(pd.Series(g).value_counts()).to_numpy(float)
    n_i = np.bincount(it, minlength=n_items).astype(float)[it]
    lift = (c / n_i) / (f / rows.size)
    accounts[rows] = acc
    evidence[rows] = ((acc >= min_accounts) & (lift >= min_lift)).astype(np.float64)
    lifts = np.full(n, np.nan)
    lifts[rows] = lift
    return Duplicates(group, accounts, evidence, lifts)
