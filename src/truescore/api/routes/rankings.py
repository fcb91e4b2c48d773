"""The product ranking (fused quality lower bound, love score)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from truescore.api.deps import StateDep, read_access
from truescore.api.errors import ERROR_RESPONSES
from truescore.api.params import TopicQuery
from truescore.api.schemas import RankingsPublic

router = APIRouter(prefix="/rankings", tags=["rankings"], dependencies=[Depends(read_access)],
                   responses=ERROR_RESPONSES)


def _within(topic: str, parent: str | None) -> bool:
    return parent is None or topic == parent or topic.startswith(parent + ".")


@router.get("", response_model=RankingsPublic)
def rankings(state: StateDep, topic: TopicQuery = None,
             limit: Annotated[int, Query(ge=1, le=1_000_000, description="How many (capped at api.max_page).")] = 20,
             ) -> Any:
    """Products of a topic (and its subtopics), best first by the fused quality's lower credible bound
    (as written by the ranking engine; empty until POST /fit has run)."""
    rows = [r for r in state.summaries().rankings if _within(r["topic"], topic)]
    rows.sort(key=lambda r: (-(r["lower_bound"] if r["lower_bound"] is not None else float("-inf")), r["item_id"]))
    return {"data": rows[: min(limit, state.settings.api.max_page)], "count": len(rows)}
