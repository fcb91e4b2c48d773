"""What a shopper sees about an item's integrity, from the stored suspicion and rings (pure: the report job
:func:`truescore.jobs.report.item_integrity` reads them from the store).

For item ``i`` with ``n`` current reviews, ``f`` of them flagged (stored ``suspicion >= flag_threshold``):

- ``attack_detected``: a stored ring targets the item, or at least ``max(3, 5% of n)`` reviews are flagged;
- ``share_flagged = f / n`` (the share of reviews whose weight the fusion removes or caps);
- ``evidence_grade`` of the shown rating, from the ``n - f`` unflagged reviews and the flagged share:
  ``A`` (>= 30 unflagged and < 5% flagged), ``B`` (>= 10 and < 20%), ``C`` (>= 3 and < 50%), else ``D``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ItemIntegrity", "evidence_grade", "summarise_item"]


@dataclass(slots=True)
class ItemIntegrity:
    """The integrity panel of one item."""

    item_id: str
    n_reviews: int
    n_scored: int
    n_flagged: int
    share_flagged: float
    attack_detected: bool
    evidence_grade: str
    rings: list[dict[str, Any]] = field(default_factory=list)
    top_reasons: list[str] = field(default_factory=list)
    #: the integrity run the panel reads (None: never scored), and whether events were written since
    model_version: str | None = None
    stale: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evidence_grade(n_unflagged: int, share_flagged: float) -> str:
    """A-D grade of how well the shown rating is supported (see the module docstring)."""
    if n_unflagged >= 30 and share_flagged < 0.05:
        return "A"
    if n_unflagged >= 10 and share_flagged < 0.20:
        return "B"
    if n_unflagged >= 3 and share_flagged < 0.50:
        return "C"
    return "D"


def summarise_item(item_id: str, rows: list[dict[str, Any]], rings: list[dict[str, Any]], threshold: float
                   ) -> ItemIntegrity:
    """The integrity panel of ``item_id`` from its current reviews with their stored suspicion (``rows``:
    ``suspicion``, ``suspicion_reasons``; None when not scored) and the stored rings."""
    scored = [r for r in rows if r["suspicion"] is not None]
    flagged = [r for r in scored if r["suspicion"] >= threshold]
    n, f = len(rows), len(flagged)
    share = f / n if n else 0.0
    keys = ("ring_id", "direction", "n_members", "n_targets", "window_start", "window_end", "strength")
    panel_rings = [{k: ring[k] for k in keys} | {"description": ring["evidence"].get("description", "")}
                   for ring in rings if item_id in ring["targets"]]
    reasons = Counter(part for r in flagged for part in (r["suspicion_reasons"] or "").split("; ") if part)
    return ItemIntegrity(item_id=item_id, n_reviews=n, n_scored=len(scored), n_flagged=f, share_flagged=share,
                         attack_detected=bool(panel_rings) or f >= max(3, 0.05 * n),
                         evidence_grade=evidence_grade(n - f, share), rings=panel_rings,
                         top_reasons=[r for r, _ in reasons.most_common(3)])
