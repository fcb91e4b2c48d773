"""Plain-text views of a :class:`~truescore.trust.results.WeightedRatingResult` (for the CLI and logs).

No printing and no terminal library here: the functions return strings and rows; ``truescore rate``
puts them in a rich table.
"""

from __future__ import annotations

from truescore.trust.results import WeightedRatingResult

__all__ = ["RATING_COLUMNS", "rating_rows", "rating_summary"]

#: Column headers of :func:`rating_rows`.
RATING_COLUMNS = ["reviewer", "rating", "T", "H", "A", "R", "F", "weight", "via", "trust path"]


def _num(value: float | None, places: int = 2) -> str:
    return "-" if value is None else f"{value:.{places}f}"


def rating_summary(result: WeightedRatingResult) -> list[str]:
    """Lines summarising the result: the rating and its confidence, the baseline and the comparison."""
    scale = f"{result.scale_min:g}..{result.scale_max:g}"
    lines = []
    if result.for_you is not None:
        lines.append(f"{result.product} for {result.observer} ({result.topic}, scale {scale}): "
                     f"for you {result.for_you:.2f} ± {result.for_you_sd or 0.0:.2f}")
        lines.append(f"  {result.for_you_explanation}")
        lines.append(f"  seed 003 trust-weighted rating: {result.display}")
    else:
        lines.append(f"{result.product} for {result.observer} ({result.topic}, scale {scale}): {result.display}")
    if result.agreement:
        lines.append(f"  {result.agreement} (polarization {result.polarization:.2f})")
    lines.append(
        f"  confidence {result.confidence_pct:.0f}%, total weight {result.total_weight:.3f}, "
        f"{result.contributing_reviews} of {result.total_reviews_considered} reviews contribute; "
        f"unweighted mean {_num(result.unweighted_mean)}"
    )
    delta = ""
    if result.personalization_delta is not None:
        delta = f", personalization delta {result.personalization_delta:+.2f}"
    lines.append(
        f"  anonymous baseline {_num(result.anonymous_baseline_rating)} "
        f"(weight {result.anonymous_baseline_total_weight:.3f}){delta}"
    )
    return lines


def rating_rows(result: WeightedRatingResult, limit: int | None = None) -> list[list[str]]:
    """One row per contribution (largest weight first), columns :data:`RATING_COLUMNS`."""
    rows = []
    for c in result.contributions[:limit]:
        if c.path is not None:
            path = " -> ".join(c.path)
        else:
            path = "(verified purchase)" if c.trust_source == "verified_purchase" else ""
        if c.trust_domain and c.trust_domain != result.topic:
            path += f"  [{c.trust_domain}]"
        rows.append(
            [
                c.reviewer,
                _num(c.rating),
                _num(c.T),
                _num(c.H),
                _num(c.A),
                _num(c.R),
                _num(c.F),
                _num(c.weight, 3),
                c.top_intermediary_quid or "direct",
                path,
            ]
        )
    return rows
