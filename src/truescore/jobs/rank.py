"""The rank job: fuse what the other jobs stored into one score per product, and store the ranking.

:func:`rank_store` reads the store's current events and the results the other jobs wrote: the
reliability fit (``truescore fit``, any backend: :func:`~truescore.jobs.fit.stored_fit`), the integrity
evidence and groups (``truescore score``: the same evidence the integrity panel shows) and the text
scores. It never recomputes them silently: a missing or stale fit or integrity result is a
:class:`~truescore.errors.MissingResultError` / :class:`~truescore.errors.StaleResultError` naming the
command to run, unless ``refit=True``, which runs the fit and the integrity job first (and stores them).
Text scores are optional: reviews without one use the configured prior, and the result says how many.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from truescore.config import Settings
from truescore.domain import RatingSnapshot, snapshot_from_frame
from truescore.errors import MissingResultError, StaleResultError
from truescore.jobs._config import job_settings
from truescore.jobs.fit import run_fit, stored_fit
from truescore.jobs.results import freshness, require_fresh
from truescore.jobs.score import INTEGRITY_JOB, TEXT_JOB, run_integrity
from truescore.ranking.pipeline import MODEL_VERSION, FusionEvidence, RankingResult, rank_frames
from truescore.reliability import ReliabilityResult
from truescore.store import Store

__all__ = ["RANK_JOB", "rank_store", "stored_integrity"]

#: the job's name in the store's ``model_runs`` table
RANK_JOB = "rank"


def stored_integrity(store: Store, snapshot: RatingSnapshot) -> FusionEvidence:
    """The integrity evidence and groups ``truescore score`` stored, per rating of ``snapshot``.

    Raises
    ------
    MissingResultError
        The integrity job never ran, or a review of ``snapshot`` has no stored suspicion.
    StaleResultError
        Events were written after the integrity job read them.
    """
    run = require_fresh(store, INTEGRITY_JOB, "integrity evidence", "truescore score")
    rows = {r["review_id"]: r for r in store.read_derived("review_scores")}
    evidence = np.zeros(snapshot.n_ratings)
    keys: list[str | None] = []
    for k, rid in enumerate(snapshot.review_ids):
        row = rows.get(rid)
        if row is None or row.get("suspicion") is None:
            raise MissingResultError(f"review {rid!r} has no stored suspicion ({run.model_version}): run "
                                     "`truescore score`, or rank with --refit")
        evidence[k] = float(row.get("integrity_evidence") or 0.0)
        keys.append(row.get("integrity_group"))
    codes, uniques = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=True)
    names: dict[str, str] = run.details.get("groups", {})
    labels = {g: names.get(str(name), "detected group") for g, name in enumerate(uniques)}
    return FusionEvidence(evidence=evidence, group=codes.astype(np.int64), labels=labels)


def _covers(reliability: ReliabilityResult, snapshot: RatingSnapshot) -> bool:
    """Is ``reliability`` a fit of exactly ``snapshot``'s raters and items (in its order)?"""
    return (reliability.n_users == snapshot.n_users and reliability.n_items == snapshot.n_items
            and bool(np.array_equal(reliability.user_ids, snapshot.user_ids))
            and bool(np.array_equal(reliability.item_ids, snapshot.item_ids)))


def rank_store(
    store: Store,
    *,
    observer: str | None = None,
    at: float | None = None,
    settings: Settings | None = None,
    reliability: ReliabilityResult | None = None,
    refit: bool = False,
    write: bool = False,
) -> RankingResult:
    """Fuse, score and rank the store's items from the stored results (see the module docstring).

    Parameters
    ----------
    observer : str, optional
        Whose trust weighs the reviewers; default the public view (the baseline observer).
    at : float, optional
        The clock (epoch seconds); default now.
    settings : Settings, optional
        Default: the process-wide settings (:func:`~truescore.jobs._config.job_settings`).
    reliability : ReliabilityResult, optional
        A fit of the store's current ratings to use instead of the stored one.
    refit : bool, default False
        Run the fit and the integrity job first when their stored results are missing or stale.
    write : bool, default False
        Save the public ranking to ``product_rankings`` (model version ``fusion-1``).

    Raises
    ------
    MissingResultError, StaleResultError
        A stored input is missing or stale and ``refit`` is False.
    """
    cfg = job_settings(settings)
    if write and observer not in (None, cfg.trust.baseline_observer_id):
        raise ValueError("only the public (baseline observer) ranking is stored")
    seq = store.change_seq()
    frames = {
        "reviews": store.review_frame(with_text=False), "votes": store.vote_frame(), "flags": store.flag_frame(),
        "trust": store.trust_frame(at=at), "items": store.item_frame(), "users": store.user_frame(),
    }
    if frames["reviews"].empty:
        raise ValueError("no reviews to rank")
    snapshot = snapshot_from_frame(frames["reviews"])
    sources: dict[str, str] = {}
    if reliability is not None and not _covers(reliability, snapshot):
        if not refit:  # events were written between the fit and now (another request, another process)
            raise StaleResultError("the given reliability fit does not match the store's current ratings: "
                                   "fit again, or rank with refit")
        reliability = None
    if reliability is None:
        try:
            reliability = stored_fit(store, snapshot)
            sources["fit"] = f"{reliability.extras['model_version']}, stored"
        except (MissingResultError, StaleResultError):
            if not refit:
                raise
            fitted = run_fit(store, settings=cfg)
            reliability = fitted.result
            sources["fit"] = f"{fitted.model_version}, refitted"
    else:
        sources["fit"] = f"{reliability.backend}, given"
    try:
        integrity = stored_integrity(store, snapshot)
        sources["integrity"] = "stored"
    except (MissingResultError, StaleResultError):
        if not refit:
            raise
        run_integrity(store, settings=cfg)
        integrity = stored_integrity(store, snapshot)
        sources["integrity"] = "recomputed"
    scores = store.read_derived("review_scores")
    text = pd.DataFrame(scores) if scores else None
    scored = 0 if text is None else int(text["fake_probability"].notna().sum())
    text_run, behind = freshness(store, TEXT_JOB)
    if text_run is None:
        sources["text"] = "none stored: unscored reviews use the prior"
    else:
        stale = f", {behind:,} event writes since" if behind else ""
        sources["text"] = f"{text_run.model_version}, stored ({scored:,} of {snapshot.n_ratings:,} reviews{stale})"
    result = rank_frames(frames, observer=observer, at=at, settings=cfg, reliability=reliability, scores=text,
                         integrity=integrity)
    result.sources = sources
    if write:
        store.write_derived("product_rankings", result.records(), MODEL_VERSION)
        store.record_run(RANK_JOB, MODEL_VERSION, seq=seq, details={"items": len(result.products)})
    return result
