"""The write path shared by ``POST /reviews``, ``/votes``, ``/trust`` and ``/flags``.

A body (one event or a list) is checked against its schema by FastAPI, then handed to the store's
importer (:func:`truescore.store.ingest.import_frame`), which validates every row exactly as a file
import does and writes all rows in one transaction or none; its row errors become a 422. The rows
just written are then applied to the process's cached engine state, under one lock with the store
write, so the next read sees them. The answer is sent only after the transaction committed, so a
write answered 2xx is durable even if the server is killed right after.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pandas as pd
from fastapi import HTTPException
from pydantic import BaseModel

from truescore.api.errors import BadRows
from truescore.api.schemas import RowErrorPublic, WriteResult
from truescore.api.state import ApiState
from truescore.store.ingest import ImportValidationError, import_frame

__all__ = ["write_events"]


def write_events(state: ApiState, kind: str, body: BaseModel | Sequence[BaseModel]) -> WriteResult:
    """Validate and store ``body`` (events of ``kind``), update the cached state; see the module docstring."""
    events = [body] if isinstance(body, BaseModel) else list(body)
    limit = state.settings.api.max_batch
    if len(events) > limit:
        raise HTTPException(status_code=413, detail=f"batch of {len(events)} {kind} exceeds the limit of {limit} "
                                                    "events per request (api.max_batch)")
    if not events:
        return WriteResult(kind=kind, received=0, inserted=0)  # type: ignore[arg-type]
    now = time.time()
    rows: list[dict[str, Any]] = []
    for event in events:
        row = event.model_dump(mode="json")
        if row.get("created_at") is None:
            row["created_at"] = now
        rows.append(row)
    frame = pd.DataFrame(rows)
    with state.write_lock:
        new_rows: list[dict[str, Any]] = []
        if kind == "reviews":  # which reviews are new ratings (a stored id is skipped by the store)
            stored = state.store.existing_ids("reviews", [r["id"] for r in rows])
            seen: set[str] = set()
            for r in rows:
                if r["id"] not in stored and r["id"] not in seen and r.get("supersedes") is None:
                    new_rows.append(r)
                seen.add(r["id"])
        try:
            report = import_frame(state.store, frame, kind, source=f"POST /{kind}", settings=state.settings)
        except ImportValidationError as exc:
            errors = [RowErrorPublic(row=e.row, field=e.field, reason=e.reason) for e in exc.errors]
            bad = len({e.row for e in exc.errors})
            shown = "; ".join(str(e) for e in exc.errors[:5])
            more = f" (and {len(exc.errors) - 5} more)" if len(exc.errors) > 5 else ""
            raise BadRows(errors, f"{bad} of {len(rows)} {kind} are invalid, nothing was written: {shown}{more}") \
                from None
        state.apply(kind, rows, report.rows_inserted, new_rows)
    return WriteResult(kind=kind, received=len(rows), inserted=report.rows_inserted)  # type: ignore[arg-type]
