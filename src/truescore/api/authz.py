"""Who may write what: the authorisation rules of the write API, in one place (docs/security.md).

A request is made by a :class:`~truescore.store.service.Principal`: a key, its user ``U`` and its scopes.

- ``write``: events authored by ``U`` only: reviews with ``user_id = U``, votes with ``voter_id = U``,
  trust statements with ``truster_id = U``, flags with ``flagger_id = U``;
- ``moderate``: what ``write`` allows, plus trust statements in the moderation domain (who is a
  moderator; flags count for an observer only through such trust), writing as a user whose role is
  ``moderator``, and verdicts (``POST /verdicts``) with ``moderator_id = U`` (a ``write`` key gets 403);
- ``admin``: writes on behalf of any user (platform back-fills), changing an item's title or topic,
  keys, audit, erasure of any user, fit / score jobs and their cancellation.

Identities that carry the platform's own judgement, the baseline observer (``trust.baseline_observer_id``)
and users whose role is ``operator``, can be written as only with ``admin``; ``moderator`` users need
``moderate`` or ``admin``. Every refusal is a 403 whose detail names the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import HTTPException

from truescore.config import Settings
from truescore.domain import topic_within
from truescore.store.service import Principal

__all__ = ["AUTHOR_FIELD", "Forbidden", "authorize_events", "require_scope"]

#: the field naming the author of each kind of event
AUTHOR_FIELD = {"reviews": "user_id", "votes": "voter_id", "trust": "truster_id", "flags": "flagger_id",
                "verdicts": "moderator_id"}


class Forbidden(HTTPException):
    """403 naming the rule that refused the request."""

    def __init__(self, rule: str) -> None:
        super().__init__(status_code=403, detail=f"forbidden: {rule}")


def require_scope(principal: Principal, scope: str, action: str) -> None:
    """403 unless ``principal`` holds ``scope`` (``admin`` holds every scope)."""
    if scope in principal.scopes or principal.is_admin:
        return
    raise Forbidden(f"{action} needs a key with the '{scope}' scope; this key ({principal.key_id}) has "
                    f"{', '.join(sorted(principal.scopes))}")


def authorize_events(principal: Principal, kind: str, rows: Sequence[dict[str, Any]], settings: Settings,
                     role_of: Callable[[Sequence[str]], dict[str, str]]) -> None:
    """Refuse (403) a batch of ``kind`` events that ``principal`` may not write; see the module docstring.

    ``role_of(ids)`` returns the stored role of each known user id. Rows are 1-based in messages.
    """
    if principal.is_admin:
        return
    if kind == "verdicts" and "moderate" not in principal.scopes:
        raise Forbidden("writing verdicts needs a key with the 'moderate' or 'admin' scope")
    if not ({"write", "moderate"} & principal.scopes):
        raise Forbidden(f"writing {kind} needs a key with the 'write' scope")
    field = AUTHOR_FIELD[kind]
    for n, row in enumerate(rows, start=1):
        author = row.get(field)
        if author != principal.user_id:
            raise Forbidden(f"row {n}: a key of user {principal.user_id!r} writes only events authored by that user "
                            f"({field} is {author!r}); writing as another user needs the 'admin' scope")
    user = principal.user_id
    assert user is not None  # a key without a user is always admin
    if user == settings.trust.baseline_observer_id:
        raise Forbidden(f"user {user!r} is the baseline observer: only 'admin' keys write as it")
    role = role_of([user]).get(user)
    if role == "operator":
        raise Forbidden(f"user {user!r} is an operator: only 'admin' keys write as it")
    if role == "moderator" and "moderate" not in principal.scopes:
        raise Forbidden(f"user {user!r} is a moderator: writing as it needs the 'moderate' scope")
    if kind == "trust" and "moderate" not in principal.scopes:
        domain = settings.trust.moderation_domain
        for n, row in enumerate(rows, start=1):
            d = str(row.get("domain") or "")
            if topic_within(d, domain):
                raise Forbidden(f"row {n}: trust in the moderation domain {d!r} (who counts as a moderator) needs "
                                "the 'moderate' scope")
