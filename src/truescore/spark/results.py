"""Loading what a Spark run wrote into the store's derived tables (``truescore import-results DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["RESULT_TABLES", "import_results", "read_results"]

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


def import_results(store: Any, folder: str | Path) -> dict[str, int]:
    """Load a Spark run's output folder into ``store`` in one transaction (model version and time kept).

    Returns the number of rows per table. ``rings.parquet`` (``truescore spark score``) replaces the whole
    ``rings`` table, as ``truescore score`` does; the suspicion columns of ``review_scores`` and
    ``user_reliability`` are loaded with their rows.
    """
    return store.import_derived(read_results(folder))
