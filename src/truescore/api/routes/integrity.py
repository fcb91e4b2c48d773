"""Integrity: the detected rings and each item's integrity panel (issue 11)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field

from truescore import jobs
from truescore.api.deps import StateDep, read_access
from truescore.api.errors import ERROR_RESPONSES
from truescore.api.params import ItemId, Limit, Offset
from truescore.store.integrity_io import read_rings

router = APIRouter(tags=["integrity"], dependencies=[Depends(read_access)], responses=ERROR_RESPONSES)


class RingPublic(BaseModel):
    """A ring: accounts that pushed the same items the same way, against their other raters."""

    ring_id: str
    direction: str
    n_members: int
    n_targets: int
    members: list[str]
    targets: list[str]
    window_start: float | None = None
    window_end: float | None = None
    strength: float
    evidence: dict[str, Any]
    model_version: str
    fitted_at: float


class RingsPublic(BaseModel):
    data: list[RingPublic]
    count: int


class ItemIntegrityPublic(BaseModel):
    """Attack detected or not, share of reviews flagged (weight removed or capped), evidence grade A-D."""

    item_id: str
    n_reviews: int
    n_scored: int
    n_flagged: int
    share_flagged: float
    attack_detected: bool
    evidence_grade: str
    rings: list[dict[str, Any]]
    top_reasons: list[str]
    model_version: str | None = Field(None, description="The integrity run the panel reads (None: never scored).")
    stale: bool = Field(False, description="Events were written (or reviews added) since that run.")
    note: str = Field("", description="What is missing or stale, and the command that updates it.")


@router.get("/rings", response_model=RingsPublic)
def list_rings(state: StateDep, limit: Limit = 100, offset: Offset = 0) -> Any:
    """Detected rings, largest first (written by `truescore score`)."""
    rings = read_rings(state.store)
    limit = min(limit, state.settings.api.max_page)
    return {"data": rings[offset : offset + limit], "count": len(rings)}


@router.get("/items/{item_id}/integrity", response_model=ItemIntegrityPublic)
def item_integrity(state: StateDep, item_id: ItemId) -> Any:
    """The item's integrity panel: attack detected, share of reviews flagged, evidence grade, rings; from the
    suspicion `truescore score` stored (the evidence the ranking's fusion reads), saying when it is stale."""
    if state.store.get_item(item_id) is None:
        raise HTTPException(status_code=404, detail=f"item {item_id!r} not found")
    return jobs.item_integrity(state.store, item_id, state.settings).to_dict()
