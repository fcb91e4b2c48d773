"""Loading what a Spark run wrote into the store's derived tables (``truescore import-results DIR``)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from truescore.spark.integrity import INTEGRITY_RUN_FILE
from truescore.store import Store

__all__ = ["RESULT_TABLES", "import_results", "read_results", "record_runs"]

#: Derived tables a Spark run may write, as ``DIR/<table>.parquet`` (a file or a Spark output folder).
RESULT_TABLES = ("item_quality", "user_reliability", "review_scores", "product_rankings", "rings")


def read_results(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every ``<table>.parquet`` of :data:`RESULT_TABLES` found in ``folder``."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    frames = {}
    for name in RESULT_TABLES:
        path = root / f"{name}.parquet"
        if path.exists():
            frames[name] = pd.read_parquet(path)
    if not frames:
        raise FileNotFoundError(f"{folder}: none of {', '.join(t + '.parquet' for t in RESULT_TABLES)} found")
    return frames


def import_results(store: Store, folder: str | Path) -> dict[str, int]:
    """Load a Spark run's output folder into ``store`` in one transaction (model version and time kept).

    Returns the number of rows per table. ``rings.parquet`` (``truescore spark score``) replaces the whole
    ``rings`` table, as ``truescore score`` does; the suspicion columns of ``review_scores`` and
    ``user_reliability`` are loaded with their rows. The runs are recorded as the store's own jobs would
    record them (``fit.json`` of ``spark fit``: the fit with its hyperparameters; ``integrity.json`` of
    ``spark score``: the integrity evidence), as of the store's events now: the Parquet the run read must
    be an export of this store's current events, which ``truescore rank`` then takes as current.
    """
    frames = read_results(folder)
    counts = store.import_derived(frames)
    record_runs(store, folder, frames)
    return counts


def record_runs(store: Store, folder: str | Path, frames: dict[str, pd.DataFrame]) -> list[str]:
    """Record the runs whose results ``frames`` (read from ``folder``) hold; returns the jobs recorded."""
    root = Path(folder)
    seq = store.change_seq()
    done = []
    fit_file = root / "fit.json"
    if {"item_quality", "user_reliability"} <= set(frames) and fit_file.is_file():
        fit = json.loads(fit_file.read_text())
        store.record_run("fit", str(fit["model_version"]), seq=seq,
                         details={"backend": "vb", **fit["hyper"], "n_items": fit["n_items"],
                                  "n_users": fit["n_users"], "source": str(root)})
        done.append("fit")
    integrity_file = root / INTEGRITY_RUN_FILE
    scores = frames.get("review_scores")
    if scores is not None and "integrity_evidence" in scores.columns and integrity_file.is_file():
        run = json.loads(integrity_file.read_text())
        store.record_run("integrity", str(run["model_version"]), seq=seq,
                         details={"groups": run.get("groups", {}), "source": str(root)})
        done.append("integrity")
    return done
