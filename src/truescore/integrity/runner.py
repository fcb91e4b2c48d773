"""From a review frame to the integrity engine's result, and from the result to table rows.

:func:`integrity_from_frame` builds the engine's inputs from a frame with the store's review columns
(``text`` optional, or the texts' signatures computed elsewhere) and runs
:func:`~truescore.integrity.integrity_scores`; :func:`ring_records` gives the rows of the ``rings``
table and :func:`summary_rows` the lines the CLI prints. Pure: the score job
(:func:`truescore.jobs.score.run_integrity`) reads the store and writes the results; ``truescore spark
score`` calls the same functions on its driver.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from truescore.config import Settings
from truescore.domain import RatingSnapshot, snapshot_from_frame
from truescore.integrity._common import IntegrityInputs, TextClusters, TextSignatures
from truescore.integrity.suspicion import IntegrityResult, integrity_scores

__all__ = ["MODEL_VERSION", "integrity_from_frame", "ring_records", "summary_rows"]


MODEL_VERSION = "integrity-1"


def integrity_from_frame(reviews: pd.DataFrame, *, users: pd.DataFrame | None = None,
                         reliability_lo: pd.Series | None = None, settings: Settings | None = None,
                         signatures: TextSignatures | None = None, clusters: TextClusters | None = None
                         ) -> tuple[IntegrityResult, RatingSnapshot]:
    """Integrity scores from a review frame (``Store.review_frame`` columns; ``text`` optional).

    ``users`` (``id, created_at``) gives account creation times; ``reliability_lo`` (indexed by user id)
    the reliability engine's lower bounds. Instead of ``text``, ``signatures`` may give the texts' MinHash
    signatures computed elsewhere (rows = positions in this frame; ``min_words`` = the settings'
    ``duplicate_min_words``), or ``clusters`` the near-duplicate clusters formed from them elsewhere (also
    with the settings' ``duplicate_threshold``): the near-duplicate detector reads only those, so the
    results are the same and no text need be held here. ``settings`` gives the integrity and ranking
    sections (default: their documented defaults). Returns the result and the snapshot it indexes.
    """
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
    if settings is None:
        return integrity_scores(inp), snap
    return integrity_scores(inp, settings.integrity, settings.ranking), snap


def _texts(reviews: pd.DataFrame) -> list[str | None] | None:
    """The texts, None when there is no non-blank one (then the detector has nothing to read)."""
    if "text" not in reviews.columns:
        return None
    raw = reviews["text"].tolist()
    if not any(isinstance(t, str) and t.strip() for t in raw):
        return None
    return [t if isinstance(t, str) else None for t in raw]


def ring_records(result: IntegrityResult, snap: RatingSnapshot) -> list[dict[str, Any]]:
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


def summary_rows(res: IntegrityResult, *, reviews_written: int, accounts_written: int, rings_written: int
                 ) -> list[list[Any]]:
    """Rows for the CLI: what was scored and flagged."""
    return [
        ["reviews scored", reviews_written],
        [f"reviews flagged (suspicion >= {res.flag_threshold:.2f})", int(res.flagged_reviews.sum())],
        ["accounts scored", accounts_written],
        ["accounts flagged", int(res.flagged_accounts.sum())],
        ["rings", rings_written],
        ["reviews in rings", int((res.rings.review_ring >= 0).sum())],
        ["items with a change point", int(np.count_nonzero(res.changes.z))],
    ]
