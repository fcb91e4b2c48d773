"""Path and query parameters shared by the routes, with the bounds the OpenAPI document states."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from truescore.api.schemas import TOPIC_REGEX

__all__ = ["ItemId", "JobId", "Limit", "ObserverQuery", "Offset", "ReviewId", "SearchQuery", "TopicQuery", "UserId"]

#: ids: 1..4096 characters without NUL (no database stores one); '/' must be percent-encoded
_ID = {"min_length": 1, "max_length": 4096, "pattern": r"^[^\x00]+$"}

ItemId = Annotated[str, Path(description="Item id.", **_ID)]
UserId = Annotated[str, Path(description="User id.", **_ID)]
ReviewId = Annotated[str, Path(description="Review id.", **_ID)]
JobId = Annotated[str, Path(description="Job id (from POST /fit or POST /score).", **_ID)]
TopicQuery = Annotated[
    str | None,
    Query(max_length=512, pattern=TOPIC_REGEX,
          description="Dotted topic, e.g. reviews.public.technology.laptops (subtopics included)."),
]
ObserverQuery = Annotated[
    str | None,
    Query(description="User whose trust graph weighs the reviews; default: the baseline observer (operator root).",
          **_ID),
]
Limit = Annotated[int, Query(ge=1, le=1_000_000, description="Page size (capped at api.max_page).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")]
SearchQuery = Annotated[
    str | None, Query(max_length=200, pattern=r"^[^\x00]*$", description="Substring of the id or title.")
]
