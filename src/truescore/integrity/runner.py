"""Store -> integrity engine -> derived tables (``truescore score``).

:func:`run_integrity` reads every current review (with its text when there is one), the accounts'
creation times and the reliability fit (fitting it first when a rater has no row, so every account gets
a ``user_reliability`` row to carry its suspicion), runs :func:`~truescore.integrity.integrity_scores`
and writes ``review_scores.suspicion`` for every review, ``user_reliability.suspicion`` for every
account, and the ``rings`` table. It never loads the text models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from truescore.integrity._common import IntegrityInputs, TextClusters, TextSignatures
from truescore.integrity.suspicion import IntegrityResult, integrity_scores

__all__ = [
    "MODEL_VERSION",
    "IntegrityReport",
    "integrity_from_frame",
    "ring_records",
    "run_integrity",
    "store_has_text",
    "summary_rows",
]


MODEL_VERSION = "integrity-1"


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What :func:`run_integrity` did."""

    result: IntegrityResult
    snapshot: Any
    reviews_written: int
    accounts_written: int
    rings_written: int
    seconds: dict[str, float]


def integrity_from_frame(reviews: pd.DataFrame, *, users: pd.DataFrame | None = None,
                         reliability_lo: pd.Series | None = None, settings: Any = None,
                         signatures: TextSignatures | None = None, clusters: TextClusters | None = None
                         ) -> tuple[IntegrityResult, Any]:
    """Integrity scores from a review frame (``Store.review_frame`` columns; ``text`` optional).

    ``users`` (``id, created_at``) gives account creation times; ``reliability_lo`` (indexed by user id)
    the reliability engine's lower bounds. Instead of ``text``, ``signatures`` may give the texts' MinHash
    signatures computed elsewhere (rows = positions in this frame; ``min_words`` = the settings'
    ``duplicate_min_words``), or ``clusters`` the near-duplicate clusters formed from them elsewhere (also
    with the settings' ``duplicate_threshold``): the near-duplicate detector reads only those, so the
    results are the same and no text need be held here. Returns the result and the snapshot it indexes.
    """
    from truescore.config import get_settings
    from truescore.store.store import snapshot_from_frame

    cfg = settings or get_settings()
    if len(reviews) == 0:
        raise ValueError("no reviews to score")
    snap = snapshot_from_frame(reviews)
    ids = pd.Index(snap.user_ids)
    created = None
    if users is not None and len(users):
        created = pd.Series(users["created_at"].to_numpy(float), index=users["id"].to_numpy(object))
        created = created[~created.index.duplicated()].reindex(ids).to_numpy(float)
    lo = None
    if reliability_lo is not None and len(reliability_lo):
        lo = reliability_lo[~reliability_lo.index.duplicated()].reindex(ids).to_numpy(float)
    if (signatures is not None or clusters is not None) and "text" in reviews.columns:
        raise ValueError("give the review texts or their signatures (clusters), not both")
    inp = IntegrityInputs.from_snapshot(snap, texts=_texts(reviews), signatures=signatures, clusters=clusters,
                                        user_created_at=created, reliability_lo=lo)
    return integrity_scores(inp, cfg.integrity), snap


def _texts(reviews: pd.DataFrame) -> list[str | None] | None:
    """The texts, None when there is no non-blank one (then the detector has nothing to read)."""
    if "text" not in reviews.columns:
        return None
    raw = reviews["text"].tolist()
    if not any(isinstance(t, str) and t.strip() for t in raw):
        return None
    return [t if isinstance(t, str) else None for t in raw]


def ring_records(result: IntegrityResult, snap: Any) -> list[dict[str, Any]]:
    """Rows of the ``rings`` table (external ids)."""
    rows = []
    for r in result.rings.rings:
        rows.append({
            "ring_id": f"ring-{r.ring_id + 1}", "direction": r.direction, "n_members": int(r.members.size),
            "n_targets": int(r.targets.size), "members": [str(x) for x in snap.user_ids[r.members]],
            "targets": [str(x) for x in snap.item_ids[r.targets]], "window_start": r.window_start,
            "window_end": r.window_end, "strength": r.strength, "evidence": r.evidence(),
        })
    return rows


def run_integrity(store: Any, *, settings: Any = None) -> IntegrityReport:
    """Score every review and account of ``store`` and write the suspicion columns and the rings."""
    from truescore.reliability.report import run_fit
    from truescore.store import integrity_io

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    reviews = integrity_io.review_columns(store, with_text=store_has_text(store))
    if len(reviews) == 0:
        raise ValueError("the store has no reviews to score")
    users = integrity_io.table_columns(store, "users", ["id", "created_at"])
    rel = integrity_io.table_columns(store, "user_reliability", ["user_id", "reliability_lo"])
    fitted = set(rel["user_id"].tolist()) if len(rel) else set()
    seconds["read"] = time.perf_counter() - t0
    if not set(pd.unique(reviews["user_id"])) <= fitted:
        t = time.perf_counter()
        run_fit(store)
        rel = integrity_io.table_columns(store, "user_reliability", ["user_id", "reliability_lo"])
        seconds["reliability fit"] = time.perf_counter() - t
    lo = pd.Series(rel["reliability_lo"].to_numpy(float), index=rel["user_id"].to_numpy(object))
    t = time.perf_counter()
    result, snap = integrity_from_frame(reviews, users=users, reliability_lo=lo, settings=settings)
    seconds["detectors"] = time.perf_counter() - t
    t = time.perf_counter()
    rev_reasons = result.review_reasons()
    acc_reasons = result.account_reasons()
    seconds["reasons"] = time.perf_counter() - t
    t = time.perf_counter()
    n_rev = integrity_io.write_review_suspicion(store, snap.review_ids, result.review_suspicion, rev_reasons,
                                                MODEL_VERSION)
    n_acc = integrity_io.write_account_suspicion(store, snap.user_ids, result.account_suspicion, acc_reasons)
    n_rings = integrity_io.replace_rings(store, ring_records(result, snap), MODEL_VERSION)
    seconds["write"] = time.perf_counter() - t
    return IntegrityReport(result=result, snapshot=snap, reviews_written=n_rev, accounts_written=n_acc,
                           rings_written=n_rings, seconds=seconds)


def store_has_text(store: Any) -> bool:
    """Whether any current review has a non-blank text."""
    from sqlalchemy import func, select

    from truescore.store import schema

    r = schema.reviews
    with store.engine.connect() as conn:
        return conn.execute(select(r.c.id).where(func.length(func.trim(r.c.text)) > 0).limit(1)).first() is not None


def summary_rows(report: IntegrityReport) -> list[list[Any]]:
    """Rows for the CLI: what was scored and flagged."""
    res = report.result
    return [
        ["reviews scored", report.reviews_written],
        [f"reviews flagged (suspicion >= {res.flag_threshold:.2f})", int(res.flagged_reviews.sum())],
        ["accounts scored", report.accounts_written],
        ["accounts flagged", int(res.flagged_accounts.sum())],
        ["rings", report.rings_written],
        ["reviews in rings", int((res.rings.review_ring >= 0).sum())],
        ["items with a change point", int(np.count_nonzero(res.changes.z))],
    ]
