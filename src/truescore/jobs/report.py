"""The report jobs: the transparency report and an item's integrity panel, from what ``truescore score``
stored (the same suspicion and rings the ranking's fusion reads), saying when it is missing or stale."""

from __future__ import annotations

from truescore.config import Settings
from truescore.integrity.report import ReportTables, render_report, report_tables
from truescore.integrity.summary import ItemIntegrity, summarise_item
from truescore.jobs._config import job_settings
from truescore.jobs.results import freshness
from truescore.jobs.score import INTEGRITY_JOB
from truescore.store import Store
from truescore.store.integrity_io import item_review_suspicion, read_rings, suspicion_frame

__all__ = ["build_report", "item_integrity", "store_report_tables"]


def store_report_tables(store: Store, settings: Settings | None = None) -> ReportTables:
    """The transparency report's figures over the store's current reviews and stored suspicion."""
    thr = job_settings(settings).integrity.flag_threshold
    run, _ = freshness(store, INTEGRITY_JOB)
    moderation = run.details.get("moderation") if run is not None else None
    return report_tables(store.review_frame(with_text=False), suspicion_frame(store), read_rings(store), thr,
                         moderation=moderation)


def build_report(store: Store, settings: Settings | None = None, *, title: str = "Transparency report") -> str:
    """The transparency report of ``store`` as one self-contained HTML document (run ``truescore score`` first)."""
    return render_report(store_report_tables(store, settings), title=title)


def item_integrity(store: Store, item_id: str, settings: Settings | None = None) -> ItemIntegrity:
    """The integrity panel of ``item_id``, with the integrity run it reads and whether it is stale."""
    thr = job_settings(settings).integrity.flag_threshold
    panel = summarise_item(item_id, item_review_suspicion(store, item_id), read_rings(store), thr)
    run, behind = freshness(store, INTEGRITY_JOB)
    if run is None:
        panel.note = "no suspicion is stored yet: run `truescore score`"
    else:
        panel.model_version = run.model_version
        if behind:
            panel.stale = True
            panel.note = (f"computed before {behind:,} later write{'s' if behind != 1 else ''} of events: "
                          "run `truescore score` to update")
        elif panel.n_scored < panel.n_reviews:
            panel.stale = True
            panel.note = f"{panel.n_reviews - panel.n_scored:,} reviews are not scored yet: run `truescore score`"
    return panel
