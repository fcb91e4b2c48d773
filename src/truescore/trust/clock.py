"""The clock of a trust computation: ``at`` as epoch seconds, a datetime or ISO 8601 text."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from truescore.domain import to_epoch

__all__ = ["clock_of", "parse_at"]


def parse_at(text: str) -> float:
    """``at`` from user input: epoch seconds (``1300000000``, ``1.3e9``) or ISO 8601
    (``2011-03-13``, ``2011-03-13T07:06:40Z``, ``...+01:00``; a time without zone is UTC).

    Raises
    ------
    ValueError
        Naming the value, when it is neither.
    """
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number):
            raise ValueError(f"at must be a finite epoch time, got {text!r}")
        return number
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"at must be epoch seconds or an ISO 8601 time (e.g. 2011-03-13T07:06:40Z), got {text!r}") \
            from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return to_epoch(when)


def clock_of(at: datetime | float | str | None) -> float:
    """Epoch seconds of ``at``; now when None."""
    if at is None:
        return time.time()
    if isinstance(at, datetime):
        return to_epoch(at)
    if isinstance(at, str):
        return parse_at(at)
    value = float(at)
    if not math.isfinite(value):
        raise ValueError(f"at must be a finite epoch time, got {at!r}")
    return value
