"""The per-review weights of one (observer, item) request and the index look-ups behind A, H and F.

:class:`ReviewWeights` holds every factor of seed 003 for the considered review rows (see
:mod:`truescore.trust.factors` for the math). The functions here gather, with vectorised numpy over
the :class:`~truescore.trust.index.ReviewIndex` offsets, exactly the rows a factor needs; they know
nothing about trust search or caching (the :class:`~truescore.trust.rater.Rater` supplies the trust
of voters and flaggers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from truescore.trust.index import ReviewIndex, gather

__all__ = ["BOOTSTRAP", "NO_PATH", "SELF", "ReviewWeights", "activity_counts", "flags_on", "votes_on"]

SECONDS_PER_DAY = 86400.0
NO_PATH = -1  #: ``which``: no trust path
SELF = -2  #: ``which``: the target is the observer
BOOTSTRAP = -3  #: ``which``: T raised by the verified-purchase bootstrap

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(slots=True)
class ReviewWeights:
    """Everything one observer's computation produced for the considered review rows."""

    rows: IntArray
    users: IntArray
    T: FloatArray
    which: IntArray
    H: FloatArray
    A: FloatArray
    R: FloatArray
    F: FloatArray
    w: FloatArray
    contrib: npt.NDArray[np.bool_]
    age_days: FloatArray
    boot_from: tuple[int, int] | None = None  # (retailer node, chain index) for bootstrapped rows
    extras: dict[str, Any] = field(default_factory=dict)


def activity_counts(index: ReviewIndex, reviewers: IntArray, topic: str, clock: float, window_days: float
                    ) -> IntArray:
    """Reviews of each reviewer in ``topic`` (and its subtopics) created in ``(clock - window, clock]``."""
    pos, owner = gather(index.user_indptr, reviewers)
    their = index.user_rows[pos]
    created = index.r_created[their]
    recent = index.topic_mask(topic)[index.r_topic[their]] & (created <= clock)
    recent &= created > clock - window_days * SECONDS_PER_DAY
    return np.bincount(owner[recent], minlength=reviewers.shape[0])


def votes_on(index: ReviewIndex, reviewers: IntArray, topic: str, clock: float
             ) -> tuple[IntArray, IntArray, npt.NDArray[np.bool_]]:
    """Votes (created at or before ``clock``) on the reviewers' reviews in ``topic``, a reviewer's votes
    on their own reviews left out: ``(voter node ids, index of the reviewer in reviewers, helpful)``."""
    pos, owner = gather(index.user_indptr, reviewers)
    their = index.user_rows[pos]
    in_topic = index.topic_mask(topic)[index.r_topic[their]] & (index.r_created[their] <= clock)
    vpos, vlocal = gather(index.vote_indptr, their[in_topic])
    vowner = owner[in_topic][vlocal]
    voters = index.v_voter[vpos].astype(np.int64)
    ok = (index.v_created[vpos] <= clock) & (voters != reviewers[vowner])
    return voters[ok], vowner[ok], index.v_helpful[vpos][ok]


def flags_on(index: ReviewIndex, rows: IntArray, clock: float) -> tuple[IntArray, IntArray, FloatArray]:
    """Flags (created at or before ``clock``) on review ``rows``: ``(flagger ids, index in rows, severity)``."""
    fpos, fowner = gather(index.flag_indptr, rows)
    live = index.f_created[fpos] <= clock
    fpos, fowner = fpos[live], fowner[live]
    return index.f_flagger[fpos].astype(np.int64), fowner, index.f_severity[fpos]
