"""Service state, topics and suggested observers."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

import truescore
from truescore.api.deps import StateDep, read_access
from truescore.api.errors import error_responses
from truescore.api.schemas import HealthPublic, ObserversPublic, TopicsPublic
from truescore.store import StoreError

router = APIRouter(tags=["service"], dependencies=[Depends(read_access)],
                   responses=error_responses(401, 403, 422, 429, 503))


def _has_module(name: str, attr: str | None = None) -> bool:
    import importlib

    try:
        module = importlib.import_module(name)
    except ImportError:
        return False
    return attr is None or hasattr(module, attr)


@router.get("/health", response_model=HealthPublic)
def health(state: StateDep) -> Any:
    """Liveness and what the store holds: row counts, database kind, which engines are present; 503 when the
    store is gone or was replaced under the server (its SQLite file deleted, the database dropped)."""
    problem = state.check_identity()
    if problem is not None:
        raise StoreError(problem)
    counts = state.store.counts()
    engines = {
        "trust": state.rater_ready,
        "reliability": counts.get("item_quality", 0) > 0,
        "text": _has_module("truescore.text.scorer", "ReviewScorer"),
        "ranking": counts.get("product_rankings", 0) > 0,
    }
    return HealthPublic(version=truescore.__version__, database=state.store.dialect, counts=counts, engines=engines,
                        cache_version=state.version, uptime_seconds=time.time() - state.started)


@router.get("/topics", response_model=TopicsPublic)
def topics(state: StateDep) -> Any:
    """Every item topic with its number of items."""
    return {"data": [{"topic": t, "n_items": n} for t, n in state.store.topics()]}


@router.get("/observers", response_model=ObserversPublic)
def observers(state: StateDep, limit: Annotated[int, Query(ge=1, le=1000)] = 20) -> Any:
    """Users to look through: the baseline observer, then the users stating trust in the most others."""
    baseline = state.settings.trust.baseline_observer_id
    ranked = [(uid, n) for uid, n in state.summaries().observers if uid != baseline]
    n_base = dict(state.summaries().observers).get(baseline, 0)
    chosen = [(baseline, n_base), *ranked[: limit - 1]]
    data = []
    for uid, n in chosen:
        user = state.store.get_user(uid)
        data.append({"id": uid, "display_name": user.display_name if user else None,
                     "role": str(user.role) if user else "operator", "n_trusted": n})
    return {"data": data, "baseline_observer": baseline}
