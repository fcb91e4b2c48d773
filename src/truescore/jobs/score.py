"""The score jobs: the text engine and the integrity engine over a store (``truescore score``).

:func:`score_text` scores every review's text (quality, fake probability, sentiment) in batches and
writes ``review_scores``; :func:`run_integrity` runs the integrity engine over every current review
(with its text when there is one), the accounts' creation times and the stored reliability fit (fitting
it first when a rater has no row, so every account gets a ``user_reliability`` row to carry its
suspicion) and writes ``review_scores.suspicion`` with the evidence and group the fusion reads,
``user_reliability.suspicion`` and the ``rings`` table. Each records its run, so that the ranking reads
what was stored (:mod:`truescore.jobs.rank`). The integrity job never loads the text models.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from truescore.config import Settings
from truescore.domain import RatingSnapshot
from truescore.integrity import IntegrityResult
from truescore.integrity.moderation import ModerationOutcome, learn_from_verdicts, verdict_labels
from truescore.integrity.runner import MODEL_VERSION, integrity_from_frame, ring_records
from truescore.jobs._config import job_settings
from truescore.jobs.fit import run_fit
from truescore.ranking.pipeline import fusion_groups
from truescore.store import Store, integrity_io
from truescore.text.features import compute_features
from truescore.text.scorer import ReviewScorer, get_scorer
from truescore.text.star_calibration import calibrate_scores

__all__ = ["INTEGRITY_JOB", "TEXT_JOB", "IntegrityReport", "calibration_summary", "run_integrity", "score_text"]

#: the jobs' names in the store's ``model_runs`` table
TEXT_JOB = "text"
INTEGRITY_JOB = "integrity"


def score_text(
    store: Store,
    *,
    batch_size: int | None = None,
    progress: bool | Callable[[int, int], None] = False,
    settings: Settings | None = None,
    topic: str | None = None,
    scorer: ReviewScorer | None = None,
) -> int:
    """Score every review of ``store`` and write ``review_scores`` with the model version.

    Features are computed once over the whole store (so reviewer history, timing bursts and duplicates see
    every review); the encoder and heads then run in batches of ``batch_size`` (default
    ``settings.text.batch_size``). Then the sentiment's calibration is fitted per topic from the reviews'
    stars and applied to every review (``text.calibrate_sentiment``, :mod:`truescore.text.star_calibration`),
    and the scores are written with the model version ``<text version>+cal-<digest>`` (the text version alone
    when nothing was fitted); the fit is recorded in the run's details (``sentiment_calibration``).

    Parameters
    ----------
    progress : bool or callable, default=False
        True shows a rich progress bar; a callable receives ``(done, total)`` after each batch.

    Returns
    -------
    int
        Number of reviews scored.
    """
    cfg = job_settings(settings).text
    size = int(batch_size or cfg.batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    seq = store.change_seq()
    reviews = store.review_frame(topic) if topic is not None else store.review_frame()
    if len(reviews) == 0:
        return 0
    reviews = reviews.reset_index(drop=True)
    reviews["text"] = ["" if not isinstance(t, str) else t for t in reviews["text"].tolist()]
    votes = store.vote_frame()
    sc = scorer if scorer is not None else get_scorer(cfg)
    version = sc.model_version
    feats = compute_features(reviews, votes if len(votes) else None, global_duplicates=False)

    def run(tick: Callable[[int], None]) -> int:
        parts = []
        for start in range(0, len(reviews), size):
            part = reviews.iloc[start : start + size]
            parts.append(sc.score_frame(part, features=feats.iloc[start : start + size]))
            tick(len(part))
        scored = pd.concat(parts, ignore_index=True)
        calibration = calibrate_scores(reviews, scored, cfg)
        run_version = f"{version}+{calibration.version}" if calibration.fitted else version
        for start in range(0, len(scored), size):
            store.write_derived("review_scores", scored.iloc[start : start + size].to_dict("records"), run_version)
        if topic is None:
            details: dict[str, object] = {"reviews": len(scored)}
            if cfg.calibrate_sentiment:
                details["sentiment_calibration"] = calibration.as_dict()
            store.record_run(TEXT_JOB, run_version, seq=seq, details=details)
        return len(scored)

    if progress is True:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("scoring reviews"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
            task = bar.add_task("score", total=len(reviews))
            return run(lambda n: bar.advance(task, n))
    if callable(progress):
        total = len(reviews)
        state = {"done": 0}

        def tick(n: int) -> None:
            state["done"] += n
            progress(state["done"], total)

        return run(tick)
    return run(lambda n: None)


def calibration_summary(store: Store) -> str | None:
    """One line on the sentiment calibration the store's last text run fitted (None: no text run yet)."""
    run = store.last_run(TEXT_JOB)
    if run is None:
        return None
    cal = run["details"].get("sentiment_calibration")
    if cal is None:
        return f"sentiment calibration: off in the last text run ({run['model_version']})"
    fit = cal["store"]
    if fit["n_positive"] + fit["n_negative"] == 0:
        return f"sentiment calibration: the shipped head (too few star-labelled reviews; {run['model_version']})"
    return (f"sentiment calibration ({run['model_version']}): store a={fit['a']:.3f} b={fit['b']:.3f} from "
            f"{fit['n_positive']:,} positive and {fit['n_negative']:,} negative star labels; "
            f"{len(cal['topics'])} topic(s) with their own fit")


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What :func:`run_integrity` did."""

    result: IntegrityResult
    snapshot: RatingSnapshot
    reviews_written: int
    accounts_written: int
    rings_written: int
    seconds: dict[str, float]
    #: what the stored verdicts did (None: the store holds none, and nothing was learned)
    moderation: ModerationOutcome | None = None


def run_integrity(store: Store, *, settings: Settings | None = None) -> IntegrityReport:
    """Score every review and account of ``store`` and write the suspicion columns and the rings.

    With moderators' verdicts in the store, the suspicion of each level (reviews, accounts) with enough labels
    is the probability learned from them (:func:`truescore.integrity.moderation.learn_from_verdicts`,
    docs/integrity.md "Learning from moderation"), recorded under ``moderation`` in the run's details; without
    verdicts nothing of that runs and the scores are the unsupervised engine's, bit for bit."""
    cfg = job_settings(settings)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    seq = store.change_seq()
    reviews = integrity_io.review_columns(store, with_text=store.has_text())
    if len(reviews) == 0:
        raise ValueError("the store has no reviews to score")
    users = integrity_io.table_columns(store, "users", ["id", "created_at"])
    rel = integrity_io.table_columns(store, "user_reliability", ["user_id", "reliability_lo"])
    fitted = set(rel["user_id"].tolist()) if len(rel) else set()
    seconds["read"] = time.perf_counter() - t0
    if not set(pd.unique(reviews["user_id"])) <= fitted:
        t = time.perf_counter()
        run_fit(store, settings=cfg)
        rel = integrity_io.table_columns(store, "user_reliability", ["user_id", "reliability_lo"])
        seconds["reliability fit"] = time.perf_counter() - t
    lo = pd.Series(rel["reliability_lo"].to_numpy(float), index=rel["user_id"].to_numpy(object))
    t = time.perf_counter()
    result, snap = integrity_from_frame(reviews, users=users, reliability_lo=lo, settings=cfg)
    seconds["detectors"] = time.perf_counter() - t
    moderation: ModerationOutcome | None = None
    verdicts = store.verdict_frame() if store.has_rows("verdicts") else None
    if verdicts is not None and len(verdicts):
        # learning from moderation (docs/integrity.md): the suspicion becomes the calibrated probability of
        # being fake at each level with enough labels; without verdicts nothing here runs
        t = time.perf_counter()
        labels = verdict_labels(verdicts, snap.review_ids, snap.user_ids, result.inputs.user_idx)
        moderation = learn_from_verdicts(result, labels, cfg.moderation)
        if moderation.applied:
            result = dataclasses.replace(result, review_suspicion=moderation.review_suspicion,
                                         account_suspicion=moderation.account_suspicion)
        seconds["moderation"] = time.perf_counter() - t
    t = time.perf_counter()
    rev_reasons = result.review_reasons()
    acc_reasons = result.account_reasons()
    evidence, groups, groups_named = fusion_groups(result)
    seconds["reasons"] = time.perf_counter() - t
    t = time.perf_counter()
    n_rev = integrity_io.write_review_suspicion(store, snap.review_ids, result.review_suspicion, rev_reasons,
                                                MODEL_VERSION, evidence=evidence, groups=groups)
    n_acc = integrity_io.write_account_suspicion(store, snap.user_ids, result.account_suspicion, acc_reasons)
    n_rings = integrity_io.replace_rings(store, ring_records(result, snap), MODEL_VERSION)
    details: dict[str, object] = {"reviews": n_rev, "accounts": n_acc, "rings": n_rings, "groups": groups_named}
    if moderation is not None:
        details["moderation"] = moderation.details()
    store.record_run(INTEGRITY_JOB, MODEL_VERSION, seq=seq, details=details)
    seconds["write"] = time.perf_counter() - t
    return IntegrityReport(result=result, snapshot=snap, reviews_written=n_rev, accounts_written=n_acc,
                           rings_written=n_rings, seconds=seconds, moderation=moderation)
