"""The engine version of the reliability fit, and the rows ``truescore fit`` prints from a result (the fit
over a store is the job :func:`truescore.jobs.run_fit`)."""

from __future__ import annotations

from typing import Any

from truescore.config import LOWER_BOUND_Z
from truescore.reliability._types import ReliabilityResult

__all__ = ["ENGINE_VERSION", "ITEM_COLUMNS", "RATER_COLUMNS", "item_rows", "rater_rows"]

#: Bumped when the model or its defaults change in a way that changes the estimates.
ENGINE_VERSION = 1

ITEM_COLUMNS = ["item", "quality", "sd", "90% lower", "ratings", "effective weight"]
RATER_COLUMNS = ["rater", "reliability", "90% interval", "noise sd (scale)", "bias", "ratings"]


def item_rows(result: ReliabilityResult, k: int = 10, *, z: float = LOWER_BOUND_Z) -> list[list[Any]]:
    """Top ``k`` items by the lower bound ``quality - z * sd`` of their quality (default the 90% bound), on
    their own scales."""
    rows = []
    for rec in result.top_items(k, z=z):
        lower = rec.quality - z * rec.quality_sd
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
