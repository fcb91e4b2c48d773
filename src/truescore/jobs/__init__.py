"""The application layer: each job one function over a :class:`~truescore.store.Store`.

A job reads its inputs from the store, calls the pure engines (arrays and frames in, typed results out)
and writes the results back, each with its model version and a record of its run (``model_runs``), so
that a job which reads another's results can tell whether they are missing or stale
(:mod:`.results`). The doors (the CLI, the HTTP API, the Spark commands, the demo) call these
functions; the engines (reliability, trust, text, integrity, ranking) never import the store or a job.

=======================  ==========================================================================
job                      what it reads and writes
=======================  ==========================================================================
:func:`run_fit`          current ratings -> ``item_quality``, ``user_reliability`` (``truescore fit``)
:func:`score_text`       reviews with text -> ``review_scores`` text columns (``truescore score``)
:func:`run_integrity`    reviews, accounts, the fit -> suspicion, fusion evidence, ``rings``
:func:`rank_store`       events + the stored fit, evidence and text scores -> ``product_rankings``
:func:`build_report`     stored suspicion and rings -> the transparency report (HTML)
:func:`item_integrity`   stored suspicion and rings of one item -> its integrity panel
:func:`erase_user`       removes a user, then refits what was stored
:func:`rater_from_store` current trust, reviews, votes, flags -> a trust engine (``truescore rate``)
=======================  ==========================================================================
"""

from truescore.jobs.erase import EraseReport, erase_user
from truescore.jobs.fit import FitReport, fit_summary, run_fit, stored_fit, write_result
from truescore.jobs.rank import rank_store, stored_integrity
from truescore.jobs.report import build_report, item_integrity, store_report_tables
from truescore.jobs.results import RunRecord, freshness, require_fresh
from truescore.jobs.score import IntegrityReport, run_integrity, score_text
from truescore.jobs.trust import rater_from_store

__all__ = [
    "EraseReport",
    "FitReport",
    "IntegrityReport",
    "RunRecord",
    "build_report",
    "erase_user",
    "fit_summary",
    "freshness",
    "item_integrity",
    "rank_store",
    "rater_from_store",
    "require_fresh",
    "run_fit",
    "run_integrity",
    "score_text",
    "store_report_tables",
    "stored_fit",
    "stored_integrity",
    "write_result",
]
