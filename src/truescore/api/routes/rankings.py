"""The product ranking (fused quality lower bound, love score)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from truescore.api.deps import StateDep, read_access
from truescore.api.errors import ERROR_RESPONSES
from truescore.api.params import TopicQuery
from truescore.api.schemas import RankingsPublic
from truescore.domain import topic_within
from truescore.ranking.pipeline import normalised_bound

router = APIRouter(prefix="/rankings", tags=["rankings"], dependencies=[Depends(read_access)],
                   responses=ERROR_RESPONSES)


def _within(topic: str, parent: str | None) -> bool:
    return topic_within(topic, parent)


def _rank_key(row: dict[str, Any]) -> float:
    """The row's lower bound on the normalised scale (the ranking's own order; items keep their scales)."""
    scale = (row.get("details") or {}).get("scale") or [0.0, 1.0]
    return normalised_bound(row["lower_bound"], float(scale[0]), float(scale[1]))


@router.get("", response_model=RankingsPublic)
def rankings(state: StateDep, topic: TopicQuery = None,
             limit: Annotated[int, Query(ge=1, le=1_000_000, description="How many (capped at api.max_page).")] = 20,
             ) -> Any:
    """Products of a topic (and its subtopics), best first by the fused quality's lower credible bound on the
    normalised scale (items on different rating scales compare by where they stand on their own scale; as
    written by the ranking engine; empty until POST /fit has run)."""
    rows = [r for r in state.summaries().rankings if _within(r["topic"], topic)]
    rows.sort(key=lambda r: (-_rank_key(r), r["item_id"]))
    return {"data": rows[: min(limit, state.settings.api.max_page)], "count": len(rows)}
