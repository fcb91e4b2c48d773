"""Response bodies of the service endpoints added by issue 10: erasure, audit and job lists."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from truescore.api.schemas import JobPublic

__all__ = ["AuditPublic", "AuditRowPublic", "ErasurePublic", "JobsPublic"]


class ErasurePublic(BaseModel):
    """What an erasure or a review deletion removed (counts only)."""

    user_id: str
    reviews: int = Field(description="Reviews deleted (with every earlier version).")
    votes: int = Field(description="Votes deleted (by the user, and on the deleted reviews).")
    trust: int = Field(description="Trust statements deleted (from and to the user).")
    flags: int = Field(description="Flags deleted (by the user, and on the deleted reviews).")
    verdicts: int = Field(0, description="Moderators' verdicts deleted (on the user, on the deleted reviews, and "
                                         "those the user gave as a moderator).")
    derived: int = Field(description="Derived rows deleted (text scores, the user's reliability).")
    user_row: int = Field(description="1 if the user row was deleted.")
    keys_revoked: int = Field(0, description="The user's API keys deleted (an erasure: they can write no more).")
    items_touched: int = Field(description="Items whose ratings changed (recomputed by the queued fit).")


class AuditRowPublic(BaseModel):
    id: int
    at: float = Field(description="When the write arrived, epoch seconds.")
    key_id: str | None = Field(description="The API key that made it (None: the command line).")
    user_id: str | None = Field(description="The key's user (None: a platform key or an erasure).")
    action: str = Field(description="write | delete | erase | key")
    kind: str
    n: int = Field(description="How many events.")
    refs: list[Any] = Field(description="Keys of the events (ids; never content); emptied by an erasure.")


class AuditPublic(BaseModel):
    data: list[AuditRowPublic]


class JobsPublic(BaseModel):
    data: list[JobPublic]
