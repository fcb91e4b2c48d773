"""Fit from a store, write the derived tables, and the rows the CLI prints (``truescore fit``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from truescore.config import ReliabilitySettings, Settings
from truescore.reliability._types import ReliabilityResult, write_result

__all__ = ["ENGINE_VERSION", "FitReport", "item_rows", "rater_rows", "run_fit", "summary"]

#: Bumped when the model or its defaults change in a way that changes the estimates.
ENGINE_VERSION = 1

ITEM_COLUMNS = ["item", "quality", "sd", "90% lower", "ratings", "effective weight"]
RATER_COLUMNS = ["rater", "reliability", "90% interval", "noise sd (scale)", "bias", "ratings"]


@dataclass(frozen=True, slots=True)
class FitReport:
    """What :func:`run_fit` did."""

    result: ReliabilityResult
    model_version: str
    items_written: int
    users_written: int


def run_fit(store: Any, *, backend: str | None = None, topic: str | None = None,
            settings: ReliabilitySettings | Settings | None = None, model_version: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> FitReport:
    """Fit ``store.snapshot(topic)`` and write ``item_quality`` / ``user_reliability``.

    The model version is ``"<backend>-<ENGINE_VERSION>"`` (e.g. ``"vb-1"``) unless given.
    ``progress(done, total)`` receives epochs of the torch backend.
    """
    from truescore.reliability import _section, fit
    from truescore.reliability.torch_nll import TorchOptions, fit_torch

    section = _section(settings)
    chosen = backend or section.backend
    snapshot = store.snapshot(topic)
    if chosen == "torch" and progress is not None:
        result = fit_torch(snapshot, TorchOptions.from_settings(section), progress=progress)
    else:
        result = fit(snapshot, section, backend=chosen)
    version = model_version or f"{chosen}-{ENGINE_VERSION}"
    n_items, n_users = write_result(store, result, version) if snapshot.n_ratings else (0, 0)
    return FitReport(result=result, model_version=version, items_written=n_items, users_written=n_users)


def summary(report: FitReport) -> str:
    """One line: model version, sizes, iterations, time, rows written."""
    res = report.result
    unit = "epochs" if res.backend == "torch" else "sweeps"
    return (f"{report.model_version}: {res.n_items:,} items, {res.n_users:,} raters, "
            f"{int(res.item_n_ratings.sum()):,} ratings; {res.n_iter} {unit}, converged={res.converged}, "
            f"{res.fit_seconds:.2f} s; wrote {report.items_written:,} item and {report.users_written:,} rater rows")


def item_rows(result: ReliabilityResult, k: int = 10) -> list[list[Any]]:
    """Top ``k`` items by the 90% lower bound of their quality, on their own scales."""
    rows = []
    for rec in result.top_items(k):
        lower = rec.quality - 1.2816 * rec.quality_sd
        rows.append([rec.item_id, round(rec.quality, 3), round(rec.quality_sd, 3), round(lower, 3), rec.n_ratings,
                     round(rec.effective_weight, 1)])
    return rows


def rater_rows(result: ReliabilityResult, k: int = 10) -> list[list[Any]]:
    """The ``k`` least reliable raters; noise sd = 1/sqrt(E[alpha]) as a fraction of the rating scale."""
    rows = []
    for rec in result.least_reliable(k):
        rows.append([rec.user_id, round(rec.reliability, 2), f"{rec.reliability_lo:.2f} .. {rec.reliability_hi:.2f}",
                     round(rec.reliability**-0.5, 3), round(rec.bias, 3), rec.n_ratings])
    return rows
