"""Domain types shared by the store, the engines and the interfaces.

Events are append-only and identified by caller-chosen string ids. Times are timezone-aware UTC
``datetime`` objects in the domain and UTC seconds since the epoch (float) in arrays and in the store.

Ratings keep their own scale ``[min_rating, max_rating]``; engines work on the normalised value

    z = (rating - min_rating) / (max_rating - min_rating)  in [0, 1],

so a 4 on 1..5 and a 7.75 on 1..10 are the same opinion, and a result is shown on a scale again with
``denormalise``.

This module also holds the one rule-set every entry point applies to what it writes (ids, topics,
timestamps, rating scales, texts, enum values; docs/rules.md): :func:`clean_id`, :func:`clean_topic`,
:func:`clean_timestamp` / :func:`epoch_seconds`, :func:`check_rating` / :func:`rating_problems`,
:func:`clean_text`, :func:`clean_flag_reason`, :func:`clean_role`. Limits that are settings are arguments.
The decisions of the event rules that need no store are here too (which review is current, whom a review
may supersede, when a re-posted event conflicts with the stored one): :func:`later_review`,
:func:`supersede_problem`, :func:`repost_problem`; the store layer (:mod:`truescore.store.write_rules`)
looks the stored events up and applies them, for every door (library, importer, API).
"""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.errors import TruescoreError

__all__ = [
    "DEFAULT_MAX_RATING",
    "DEFAULT_MIN_RATING",
    "DEFAULT_TOPIC",
    "EPOCH_UNITS",
    "EVENT_CONTENT",
    "EVENT_KEYS",
    "MAX_DISPLAY_NAME_CHARS",
    "MAX_EPOCH",
    "MAX_PHOTOS",
    "MAX_RATING_MAGNITUDE",
    "MAX_SEVERITY",
    "MAX_TITLE_CHARS",
    "MAX_TOPIC_CHARS",
    "MIN_EPOCH",
    "TOPIC_REGEX",
    "ConflictError",
    "Flag",
    "FlagReason",
    "ForbiddenChange",
    "Item",
    "RatingSnapshot",
    "Review",
    "RowsRefused",
    "RuleError",
    "TrustEdge",
    "TrustEdgeArrays",
    "User",
    "UserRole",
    "Verdict",
    "VerdictLabel",
    "Vote",
    "check_rating",
    "clean_flag_reason",
    "clean_id",
    "clean_role",
    "clean_text",
    "clean_timestamp",
    "clean_topic",
    "clean_verdict",
    "current_review_mask",
    "denormalise",
    "epoch_seconds",
    "event_key",
    "from_epoch",
    "id_problem",
    "item_change_problem",
    "item_scales",
    "later_review",
    "normalise",
    "rating_problems",
    "refusal_message",
    "repost_problem",
    "same_value",
    "scale_text",
    "self_trust_problem",
    "snapshot_from_frame",
    "supersede_problem",
    "text_problem",
    "to_epoch",
    "topic_problem",
    "topic_within",
]

#: topic given to an item first seen through one of its reviews
DEFAULT_TOPIC = "reviews.public"
DEFAULT_MIN_RATING = 1.0
DEFAULT_MAX_RATING = 5.0


class UserRole(enum.StrEnum):
    PERSON = "person"
    OPERATOR = "operator"
    RETAILER = "retailer"
    MODERATOR = "moderator"


class FlagReason(enum.StrEnum):
    SPAM = "SPAM"
    FAKE = "FAKE"
    INAPPROPRIATE = "INAPPROPRIATE"
    OFF_TOPIC = "OFF_TOPIC"
    OTHER = "OTHER"


class VerdictLabel(enum.StrEnum):
    """A moderator's decision about a review or an account (issue 21 item 3)."""

    FAKE = "fake"
    GENUINE = "genuine"


def to_epoch(when: datetime) -> float:
    """UTC seconds since the epoch; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=UTC)


def normalise(rating: float, min_rating: float, max_rating: float) -> float:
    """Map a rating on ``[min_rating, max_rating]`` to ``[0, 1]``."""
    return (rating - min_rating) / (max_rating - min_rating)


def denormalise(z: float, min_rating: float, max_rating: float) -> float:
    """Map a normalised value back onto ``[min_rating, max_rating]``."""
    return min_rating + z * (max_rating - min_rating)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    created_at: datetime = field(default_factory=_now)
    display_name: str | None = None
    role: UserRole = UserRole.PERSON


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    topic: str
    title: str | None = None
    created_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class Review:
    id: str
    item_id: str
    user_id: str
    rating: float
    created_at: datetime = field(default_factory=_now)
    min_rating: float = DEFAULT_MIN_RATING
    max_rating: float = DEFAULT_MAX_RATING
    title: str | None = None
    text: str | None = None
    is_recommended: bool | None = None
    is_incentivized: bool | None = None
    verified_purchase: bool | None = None
    photo_count: int = 0
    supersedes: str | None = None

    @property
    def normalised(self) -> float:
        return normalise(self.rating, self.min_rating, self.max_rating)


@dataclass(frozen=True, slots=True)
class Vote:
    review_id: str
    voter_id: str
    helpful: bool
    created_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class TrustEdge:
    truster_id: str
    trustee_id: str
    domain: str
    level: float
    created_at: datetime = field(default_factory=_now)
    valid_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Flag:
    review_id: str
    flagger_id: str
    reason: FlagReason
    severity: float = 1.0
    created_at: datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A moderator's verdict on one review (``review_id``) or one account (``user_id``): exactly one of the
    two. A later verdict on the same review or account by the same moderator replaces the earlier one;
    ``moderator_id`` None is the platform's own verdict."""

    verdict: VerdictLabel
    review_id: str | None = None
    user_id: str | None = None
    moderator_id: str | None = None
    created_at: datetime = field(default_factory=_now)


IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.object_]


@dataclass(slots=True)
class RatingSnapshot:
    """Compact arrays of every review, as the engines consume them.

    Attributes
    ----------
    user_ids, item_ids : object arrays
        Inner index -> external id, for users and items.
    review_ids : object array
        External id of each rating row.
    user_idx, item_idx : int arrays, one entry per rating
        Inner indices of the rater and the rated item.
    rating : float array
        Normalised rating in [0, 1].
    created_at : float array
        UTC seconds since the epoch.
    item_min, item_max : float arrays, one entry per item
        The item's display scale (the most common scale among its reviews).
    item_topic : object array, one entry per item
    """

    user_ids: StrArray
    item_ids: StrArray
    review_ids: StrArray
    user_idx: IntArray
    item_idx: IntArray
    rating: FloatArray
    created_at: FloatArray
    item_min: FloatArray
    item_max: FloatArray
    item_topic: StrArray

    @property
    def n_ratings(self) -> int:
        return int(self.rating.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @classmethod
    def from_arrays(
        cls,
        user_idx: npt.ArrayLike,
        item_idx: npt.ArrayLike,
        rating: npt.ArrayLike,
        *,
        n_users: int | None = None,
        n_items: int | None = None,
        created_at: npt.ArrayLike | None = None,
        min_rating: float = 0.0,
        max_rating: float = 1.0,
    ) -> RatingSnapshot:
        """Build a snapshot from integer-indexed arrays (ids are the indices as strings).

        ``rating`` is on ``[min_rating, max_rating]`` and is normalised here.
        """
        u = np.asarray(user_idx, dtype=np.int64)
        i = np.asarray(item_idx, dtype=np.int64)
        r = (np.asarray(rating, dtype=np.float64) - min_rating) / (max_rating - min_rating)
        nu = int(n_users if n_users is not None else (u.max() + 1 if u.size else 0))
        ni = int(n_items if n_items is not None else (i.max() + 1 if i.size else 0))
        t = np.zeros(r.shape[0]) if created_at is None else np.asarray(created_at, dtype=np.float64)
        return cls(
            user_ids=np.array([str(k) for k in range(nu)], dtype=object),
            item_ids=np.array([str(k) for k in range(ni)], dtype=object),
            review_ids=np.array([str(k) for k in range(r.shape[0])], dtype=object),
            user_idx=u,
            item_idx=i,
            rating=r,
            created_at=t,
            item_min=np.full(ni, float(min_rating)),
            item_max=np.full(ni, float(max_rating)),
            item_topic=np.array([DEFAULT_TOPIC] * ni, dtype=object),
        )


def item_scales(item_idx: npt.ArrayLike, min_rating: npt.ArrayLike, max_rating: npt.ArrayLike, n_items: int
                ) -> tuple[FloatArray, FloatArray]:
    """Each item's display scale: the most common ``(min_rating, max_rating)`` among its ratings (ties: the
    one that sorts first). Items without ratings get ``[0, 1]``.

    Examples
    --------
    >>> lo, hi = item_scales([0, 0, 0, 1], [1, 1, 0, 1], [5, 5, 10, 10], 2)
    >>> lo.tolist(), hi.tolist()
    ([1.0, 1.0], [5.0, 10.0])
    """
    item_min = np.zeros(n_items)
    item_max = np.ones(n_items)
    idx = np.asarray(item_idx, dtype=np.int64)
    if idx.size:
        scales = pd.DataFrame({"i": idx, "lo": np.asarray(min_rating, float), "hi": np.asarray(max_rating, float)})
        modal = scales.groupby(["i", "lo", "hi"]).size().reset_index(name="n")
        modal = modal.sort_values(["i", "n"], ascending=[True, False], kind="stable").drop_duplicates("i")
        item_min[modal["i"].to_numpy()] = modal["lo"].to_numpy()
        item_max[modal["i"].to_numpy()] = modal["hi"].to_numpy()
    return item_min, item_max


def snapshot_from_frame(df: pd.DataFrame) -> RatingSnapshot:
    """Build a :class:`RatingSnapshot` from a frame with columns id, user_id, item_id, rating, min_rating,
    max_rating, created_at and (optionally) topic.

    Each rating is normalised by its own scale, ``z = (rating - min_rating) / (max_rating - min_rating)``;
    an item's display scale is the most common scale among its reviews (:func:`item_scales`), its topic
    the first row's (``DEFAULT_TOPIC`` when the frame has none). The frame holds current reviews only."""
    user_idx, user_ids = pd.factorize(df["user_id"], sort=False)
    item_idx, item_ids = pd.factorize(df["item_id"], sort=False)
    lo = df["min_rating"].to_numpy(float)
    hi = df["max_rating"].to_numpy(float)
    rating = (df["rating"].to_numpy(float) - lo) / (hi - lo)
    n_items = len(item_ids)
    item_min, item_max = item_scales(item_idx, lo, hi, n_items)
    topics = np.full(n_items, DEFAULT_TOPIC, dtype=object)
    if len(df) and "topic" in df:
        first = pd.DataFrame({"i": item_idx, "t": df["topic"].to_numpy(object)}).drop_duplicates("i")
        topics[first["i"].to_numpy()] = first["t"].to_numpy(object)
    return RatingSnapshot(
        user_ids=np.asarray(user_ids, dtype=object),
        item_ids=np.asarray(item_ids, dtype=object),
        review_ids=df["id"].to_numpy(object),
        user_idx=user_idx.astype(np.int64),
        item_idx=item_idx.astype(np.int64),
        rating=rating,
        created_at=df["created_at"].to_numpy(float),
        item_min=item_min,
        item_max=item_max,
        item_topic=topics,
    )


@dataclass(slots=True)
class TrustEdgeArrays:
    """Current trust edges (latest statement per truster, trustee, domain; unexpired) as arrays."""

    truster: StrArray
    trustee: StrArray
    domain: StrArray
    level: FloatArray
    created_at: FloatArray


# ================================================================================================ the rule-set
# Every rule about an id, a topic, a timestamp, a rating scale, a text or an enum value, written once and
# used by every entry point: the importer (store/ingest.py), the API schemas (api/schemas.py), the trust
# engine (trust/topics.py) and the CLI. Limits that are settings (``max_id_length``, ``max_text_bytes``)
# are parameters of these functions: the caller passes the value of the settings object it was given.
# docs/rules.md lists every rule with its range and its setting.

#: Earliest accepted time: 1970-01-01T00:00:00Z (epoch 0).
MIN_EPOCH = 0.0
#: Latest accepted time: 2200-01-01T00:00:00Z.
MAX_EPOCH = 7_258_118_400.0
#: Units an importer may declare for numeric timestamps (seconds unless told; never guessed).
EPOCH_UNITS: dict[str, float] = {"s": 1.0, "ms": 1000.0}
#: Bound on |min_rating| and |max_rating|: a scale inside [-1e6, 1e6] keeps every normalised rating finite.
MAX_RATING_MAGNITUDE = 1e6
MAX_TITLE_CHARS = 1024
MAX_TOPIC_CHARS = 512
MAX_DISPLAY_NAME_CHARS = 256
MAX_SEVERITY = 10.0
MAX_PHOTOS = 10_000
#: A topic: dotted lower-case segments of letters, digits, '_' and '-' (``reviews.public.technology.laptops``).
TOPIC_REGEX = r"^[a-z0-9][a-z0-9_\-]*(\.[a-z0-9][a-z0-9_\-]*)*$"
_TOPIC = re.compile(TOPIC_REGEX)
#: Unicode categories refused in ids: controls (Cc), format characters (Cf: zero-width space/joiners,
#: bidi embeddings/overrides/isolates, BOM, soft hyphen), surrogates (Cs), private use (Co), line and
#: paragraph separators (Zl, Zp).
_FORBIDDEN_IN_IDS = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_RANGE_TEXT = "1970-01-01..2200-01-01"
#: Ids a URL path cannot carry: browsers and the URL standard remove '.' and '..' segments (even as %2E).
_DOT_SEGMENTS = frozenset({".", ".."})


class RuleError(TruescoreError, ValueError):
    """A value breaks a write rule; the message names the row (when known), the field and the rule.

    Parameters
    ----------
    field : str
        The field whose value breaks the rule.
    reason : str
        The rule broken, in words.
    row : int, optional
        1-based number of the row (record, batch element) in its write; ``None`` for a single value.

    Notes
    -----
    ``str(error)`` is ``"row 2, field rating: 7 is outside the scale 1..5"`` with a row and
    ``"rating: 7 is outside the scale 1..5"`` without: the text the API answers and the importer lists.
    """

    def __init__(self, field: str, reason: str, row: int | None = None) -> None:
        super().__init__(f"{field}: {reason}" if row is None else f"row {row}, field {field}: {reason}")
        self.field = field
        self.reason = reason
        self.row = row


class ConflictError(RuleError):
    """An event id already stored (or earlier in the same write) with other content: events are immutable.

    The HTTP API answers it 409 (``conflict: row n: <reason>``).
    """


class ForbiddenChange(RuleError):
    """A change only an administrator may make (an existing item's title or topic); the API answers 403.

    The library and the importer write as an administrator would and never raise it.
    """


def refusal_message(kind: str, n_rows: int, errors: Sequence[RuleError]) -> str:
    """The one-line summary of a refused write: ``"1 of 3 reviews are invalid, nothing was written: row 2,
    field rating: 7 is outside the scale 1..5"`` (the first five problems, then how many more)."""
    shown = "; ".join(str(e) for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    bad = len({e.row for e in errors})
    what = "trust statements" if kind == "trust" else kind
    return f"{bad} of {n_rows} {what} are invalid, nothing was written: {shown}{more}"


class RowsRefused(RuleError):
    """Rows of one write break rules; nothing was written.

    Parameters
    ----------
    kind : str
        The kind of event written (``"reviews"``).
    n_rows : int
        Rows in the write.
    errors : sequence of RuleError
        Every problem found, each with its row, field and reason; the first is also this error's
        ``row``, ``field`` and ``reason``.

    Notes
    -----
    ``str(error)`` is :func:`refusal_message`, the detail the HTTP API answers with its 422.
    """

    def __init__(self, kind: str, n_rows: int, errors: Sequence[RuleError]) -> None:
        if not errors:
            raise ValueError("RowsRefused needs at least one error")
        super().__init__(errors[0].field, errors[0].reason, errors[0].row)
        self.args = (refusal_message(kind, n_rows, errors),)
        self.kind = kind
        self.n_rows = n_rows
        self.errors = list(errors)

    def __str__(self) -> str:
        return str(self.args[0])


def _char_name(ch: str) -> str:
    return f"U+{ord(ch):04X} ({unicodedata.name(ch, unicodedata.category(ch))})"


def id_problem(value: str, max_length: int | None) -> tuple[str | None, str | None]:
    """``(clean id, None)`` or ``(None, reason)`` for one id; see :func:`clean_id` (``max_length=None``:
    the length is checked later, by a caller that has the settings)."""
    if not isinstance(value, str):
        return None, f"must be a string, got {type(value).__name__}"
    if not value.isprintable():  # printable text has none of the refused categories: skip the scan
        for ch in value:
            if unicodedata.category(ch) in _FORBIDDEN_IN_IDS:
                return None, (f"contains {_char_name(ch)}: control, zero-width and bidi characters are not "
                              "allowed in ids")
    clean = (value if value.isascii() or unicodedata.is_normalized("NFC", value)
             else unicodedata.normalize("NFC", value)).strip()
    if not clean:
        return None, "is empty (an id is required)"
    if "/" in clean:
        return None, ("contains '/': an id is one segment of a URL path (/items/{id}) and '/' separates segments, "
                      "so the API could store it but never reach it")
    if clean in _DOT_SEGMENTS:
        return None, (f"{clean!r} is a dot segment: browsers and the URL standard drop '.' and '..' from a path "
                      "(even written %2E), so the web page could never reach it")
    if max_length is not None and len(clean) > max_length:
        return None, f"is longer than {max_length} characters (setting max_id_length)"
    return clean, None


def clean_id(value: str, *, max_length: int, field: str = "id") -> str:
    """An id, NFC-normalised and stripped of surrounding white space.

    Rule: a non-empty string of at most ``max_length`` characters (setting ``max_id_length``) with no
    control, format (zero-width, bidi), surrogate, private-use or line/paragraph-separator character, so
    ``"u30\u200b"`` is refused rather than becoming a second ``u30``; canonically equivalent spellings
    (``"é"`` as one code point or as ``e`` + combining accent) are the same id. An id is a segment of the
    API's URL paths (``/items/{id}``), so it contains no ``/`` (the server decodes ``%2F`` before routing) and
    is not ``.`` or ``..`` (browsers drop those segments, even as ``%2E``): those a URL path cannot carry
    back. Every other character (``?``, ``#``, ``%``, a backslash, spaces) is reachable percent-encoded
    (``/items/a%3Fb``).

    Raises
    ------
    RuleError
        Naming ``field`` and the rule broken.
    """
    clean, reason = id_problem(value, max_length)
    if reason is not None:
        raise RuleError(field, reason)
    return clean  # type: ignore[return-value]


def text_problem(value: str, *, max_bytes: int | None = None, max_chars: int | None = None) -> str | None:
    """The reason ``value`` is not an acceptable text, or None; see :func:`clean_text`."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if "\x00" in value:
        return "contains a NUL character"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode (unpaired surrogate)"
    if max_chars is not None and len(value) > max_chars:
        return f"is longer than {max_chars} characters"
    if max_bytes is not None and size > max_bytes:
        return f"is larger than {max_bytes} bytes (setting max_text_bytes)"
    return None


def clean_text(value: str, *, field: str, max_bytes: int | None = None, max_chars: int | None = None) -> str:
    """A free text (title, review text, display name): no NUL, valid Unicode, within its size.

    Review texts are bounded in UTF-8 bytes by ``max_bytes`` (setting ``max_text_bytes``); titles and
    names in characters by ``max_chars`` (:data:`MAX_TITLE_CHARS`, :data:`MAX_DISPLAY_NAME_CHARS`).
    """
    reason = text_problem(value, max_bytes=max_bytes, max_chars=max_chars)
    if reason is not None:
        raise RuleError(field, reason)
    return value


def self_trust_problem(truster_id: str, trustee_id: str) -> str | None:
    """Why a trust statement of ``truster_id`` in ``trustee_id`` is refused (None: it is not).

    Rule: a trust statement is about another user; one with ``truster_id == trustee_id`` is refused.
    """
    if truster_id == trustee_id:
        return f"is the truster ({truster_id!r}): a user cannot state trust in themselves (rule: no self-trust)"
    return None


def topic_problem(value: str) -> tuple[str | None, str | None]:
    """``(clean topic, None)`` or ``(None, reason)``; see :func:`clean_topic`."""
    if not isinstance(value, str):
        return None, f"must be a string, got {type(value).__name__}"
    clean = value.strip()
    if len(clean) > MAX_TOPIC_CHARS:
        return None, f"is longer than {MAX_TOPIC_CHARS} characters"
    if not _TOPIC.match(clean):
        return None, (f"{value!r} is not a dotted topic like 'reviews.public.books' (lower-case letters, digits, "
                      "'_' and '-' in non-empty segments)")
    return clean, None


def clean_topic(value: str, field: str = "topic") -> str:
    """A topic (item topic, trust domain): dotted, lower-case, at most :data:`MAX_TOPIC_CHARS` characters."""
    clean, reason = topic_problem(value)
    if reason is not None:
        raise RuleError(field, reason)
    return clean  # type: ignore[return-value]


def topic_within(topic: str, parent: str | None) -> bool:
    """The one topic-containment rule: ``topic`` is ``parent`` or one of its subtopics (``parent`` followed by
    a dot); ``parent=None`` contains every topic. The store's SQL form is ``store.store._topic_clause``
    (tests/test_rules_once.py checks that they agree).

    Examples
    --------
    >>> topic_within("reviews.public.home.lamps", "reviews.public.home")
    True
    >>> topic_within("reviews.publicity", "reviews.public")
    False
    """
    return parent is None or topic == parent or topic.startswith(parent + ".")


def clean_flag_reason(value: str | FlagReason, field: str = "reason") -> FlagReason:
    """A flag reason, in any case: SPAM, FAKE, INAPPROPRIATE, OFF_TOPIC or OTHER."""
    if isinstance(value, FlagReason):
        return value
    key = value.strip().upper() if isinstance(value, str) else None
    if key not in FlagReason.__members__:
        raise RuleError(field, f"{value!r} is not one of {', '.join(r.value for r in FlagReason)}")
    return FlagReason(key)


def clean_verdict(value: str | VerdictLabel, field: str = "verdict") -> VerdictLabel:
    """A verdict, in any case: fake or genuine."""
    if isinstance(value, VerdictLabel):
        return value
    key = value.strip().lower() if isinstance(value, str) else None
    if key not in {v.value for v in VerdictLabel}:
        raise RuleError(field, f"{value!r} is not one of {', '.join(v.value for v in VerdictLabel)}")
    return VerdictLabel(key)


def clean_role(value: str | UserRole, field: str = "role") -> UserRole:
    """A user role, in any case: person, operator, retailer or moderator."""
    if isinstance(value, UserRole):
        return value
    key = value.strip().lower() if isinstance(value, str) else None
    if key not in {r.value for r in UserRole}:
        raise RuleError(field, f"{value!r} is not one of {', '.join(r.value for r in UserRole)}")
    return UserRole(key)


# ------------------------------------------------------------------------------------------ timestamps
def _parse_iso(text: str) -> float | None:
    """Epoch seconds of an ISO 8601 date or date-time (naive = UTC), else None. The one ISO parser."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return to_epoch(when)


def _range_reason(raw: Any, seconds: float, unit: str) -> str | None:
    if MIN_EPOCH <= seconds <= MAX_EPOCH:
        return None
    reason = f"{raw!r} is outside the timestamp range {_RANGE_TEXT}"
    if isinstance(raw, datetime) or (isinstance(raw, str) and _parse_iso(raw) is not None):
        return reason
    reason += f" (read as epoch {'milliseconds' if unit == 'ms' else 'seconds'})"
    if unit == "s" and MIN_EPOCH <= seconds / 1000.0 <= MAX_EPOCH:
        reason += "; if the file holds epoch milliseconds, import it with --epoch-unit ms"
    return reason


def _one_timestamp(value: Any, unit: str) -> tuple[float | None, str | None]:
    """``(epoch seconds, None)``, ``(None, reason)`` or ``(None, None)`` if missing: the rule for one value."""
    unit_name = "milliseconds" if unit == "ms" else "seconds"
    if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str)
                                                                           and not value.strip()):
        return None, None
    if isinstance(value, bool | np.bool_):
        return None, f"{value!r} is a boolean, not a timestamp"
    if isinstance(value, np.datetime64):
        import pandas as pd

        value = pd.Timestamp(value)
    seconds: float | None = None
    if isinstance(value, int | float | np.integer | np.floating):
        seconds = float(value) / EPOCH_UNITS[unit] if math.isfinite(float(value)) else None
    elif isinstance(value, datetime):
        seconds = to_epoch(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            seconds = _parse_iso(value)
        else:
            seconds = number / EPOCH_UNITS[unit] if math.isfinite(number) else None
    if seconds is None:
        return None, f"{value!r} is not a timestamp (ISO 8601 or epoch {unit_name})"
    reason = _range_reason(value, seconds, unit)
    return (None, reason) if reason is not None else (seconds, None)


def epoch_seconds(values: Sequence[Any] | Any, unit: str = "s") -> tuple[FloatArray, list[str | None]]:
    """Timestamps as UTC epoch seconds, with a reason for each value that breaks the rule.

    Rule: a timestamp is an ISO 8601 date or date-time (naive means UTC), a ``datetime``, or a number of
    epoch ``unit`` (``"s"``, the default, or ``"ms"`` when the caller says so: numbers are never guessed
    to be milliseconds), and lies in :data:`MIN_EPOCH` .. :data:`MAX_EPOCH` (1970-01-01 .. 2200-01-01).
    Booleans are not timestamps. Missing values (None, NaN, empty strings) come back as NaN with no
    reason; whether they are allowed is the caller's rule.

    Returns
    -------
    seconds : float array
        NaN where missing or refused.
    reasons : list
        None, or why the value is refused.
    """
    if unit not in EPOCH_UNITS:
        raise ValueError(f"epoch unit {unit!r}: use one of {', '.join(EPOCH_UNITS)}")
    import pandas as pd

    factor = EPOCH_UNITS[unit]
    arr = values if isinstance(values, np.ndarray) else np.asarray(pd.Series(values, dtype=object).to_numpy())
    n = len(arr)
    reasons: list[str | None] = [None] * n
    if arr.dtype.kind == "M":  # a datetime column (Parquet, a database table): naive = UTC, NaT = missing
        arr = np.array([None if np.isnat(v) else pd.Timestamp(v) for v in arr], dtype=object)
    if arr.dtype.kind in "iuf":  # a numeric column: all numbers (NaN = missing)
        number = arr.astype(np.float64)
        kinds = np.where(np.isnan(number), 0, 1)
    else:  # objects: 0 missing, 1 number (or numeric string), 2 boolean, 3 other (ISO string, datetime)
        obj = arr.astype(object)
        missing = pd.isna(pd.Series(obj)).to_numpy() | np.array(
            [isinstance(v, str) and not v.strip() for v in obj], dtype=bool)
        is_bool = np.array([isinstance(v, bool | np.bool_) for v in obj], dtype=bool)
        is_time = np.array([isinstance(v, datetime | np.datetime64) for v in obj], dtype=bool)
        numeric_like = ~missing & ~is_bool & ~is_time
        number = np.full(n, np.nan)
        if numeric_like.any():
            number[numeric_like] = pd.to_numeric(pd.Series(obj[numeric_like]), errors="coerce").to_numpy(float)
        kinds = np.where(missing, 0, np.where(is_bool, 2, np.where(np.isfinite(number), 1, 3)))
    out = np.full(n, np.nan)
    nums = kinds == 1
    out[nums] = number[nums] / factor
    with np.errstate(invalid="ignore"):
        outside = nums & ~((out >= MIN_EPOCH) & (out <= MAX_EPOCH))  # also catches an overflow to inf
    for k in np.flatnonzero(outside):  # numbers out of range: the scalar rule says why
        raw = arr[k].item() if isinstance(arr[k], np.generic) else arr[k]
        reasons[k] = _one_timestamp(raw, unit)[1]
    out[outside] = np.nan
    iso: dict[str, float | None] = {}
    for k in np.flatnonzero(kinds >= 2):  # booleans, ISO strings, datetimes, anything else
        v = arr[k]
        if isinstance(v, str):  # not a number (to_numeric said so): ISO 8601 or nothing
            if v not in iso:
                iso[v] = _parse_iso(v)
            seconds = iso[v]
            if seconds is not None and MIN_EPOCH <= seconds <= MAX_EPOCH:
                out[k] = seconds
                continue
        reasons[k] = _one_timestamp(v, unit)[1]  # the scalar rule says why (or converts a datetime)
        if reasons[k] is None:
            out[k] = _one_timestamp(v, unit)[0]
    return out, reasons


def clean_timestamp(value: Any, *, field: str = "created_at", unit: str = "s") -> float:
    """One timestamp as epoch seconds; see :func:`epoch_seconds` for the rule. Raises :class:`RuleError`."""
    if unit not in EPOCH_UNITS:
        raise ValueError(f"epoch unit {unit!r}: use one of {', '.join(EPOCH_UNITS)}")
    seconds, reason = _one_timestamp(value, unit)
    if reason is not None:
        raise RuleError(field, reason)
    if seconds is None:
        raise RuleError(field, "missing (a timestamp is required)")
    return seconds


# ------------------------------------------------------------------------------------------ ratings
def _num(x: float) -> str:
    """A bound as people write it: ``1000000``, ``0.5`` (never ``1e+06``)."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else f"{x:g}"


def scale_text(scales: Sequence[tuple[float, float]]) -> str:
    """Scales as people write them: ``1..5, 0..10, -10..10``."""
    return ", ".join(f"{_num(lo)}..{_num(hi)}" for lo, hi in scales)


def rating_problems(rating: npt.ArrayLike, min_rating: npt.ArrayLike, max_rating: npt.ArrayLike,
                    allowed_scales: Sequence[tuple[float, float]] | None = None) -> list[tuple[int, str, str]]:
    """Rows whose rating or scale breaks the rule, as ``(index, field, reason)``.

    Rule: the scale is finite with ``|min_rating|, |max_rating| <= MAX_RATING_MAGNITUDE`` (1e6) and
    ``min_rating < max_rating``; the rating is finite and inside its scale. Together these bound the
    span to (0, 2e6], so the normalised rating ``(rating - min_rating) / (max_rating - min_rating)`` is a
    finite number in [0, 1] for every stored review.

    A scale is a property of the platform, not a free field of each review: given ``allowed_scales`` (the
    setting of that name: the ``(min_rating, max_rating)`` pairs the platform accepts), a review on any other
    scale is refused, on field ``max_rating`` when its ``min_rating`` starts an allowed scale and on
    ``min_rating`` otherwise. ``None`` (the engines' own checks) allows every bounded scale.
    """
    r = np.atleast_1d(np.asarray(rating, dtype=np.float64))
    lo = np.broadcast_to(np.asarray(min_rating, dtype=np.float64), r.shape)
    hi = np.broadcast_to(np.asarray(max_rating, dtype=np.float64), r.shape)
    out: list[tuple[int, str, str]] = []
    with np.errstate(invalid="ignore"):
        for name, bound in (("min_rating", lo), ("max_rating", hi)):
            bad = ~(np.abs(bound) <= MAX_RATING_MAGNITUDE)
            out += [(int(k), name, f"{bound[k]:g} is outside the allowed scale bounds -{MAX_RATING_MAGNITUDE:g}.."
                     f"{MAX_RATING_MAGNITUDE:g} (rule: rating scale)") for k in np.flatnonzero(bad)]
        scale_ok = (np.abs(lo) <= MAX_RATING_MAGNITUDE) & (np.abs(hi) <= MAX_RATING_MAGNITUDE)
        empty = scale_ok & ~(hi > lo)
        out += [(int(k), "max_rating", f"scale {lo[k]:g}..{hi[k]:g} is empty: max_rating must exceed min_rating "
                 "(rule: rating scale)") for k in np.flatnonzero(empty)]
        usable = scale_ok & ~empty
        if allowed_scales is not None:
            scales = np.asarray(allowed_scales, dtype=np.float64).reshape(-1, 2)
            # np.isclose(x, a, rtol=1e-12, atol=1e-12) for every allowed scale at once: |x - a| <= 1e-12 (1 + |a|)
            same_lo = np.abs(lo[:, None] - scales[None, :, 0]) <= 1e-12 * (1.0 + np.abs(scales[None, :, 0]))
            same_hi = np.abs(hi[:, None] - scales[None, :, 1]) <= 1e-12 * (1.0 + np.abs(scales[None, :, 1]))
            starts: np.ndarray = np.asarray(same_lo.any(axis=1), dtype=bool)
            known: np.ndarray = np.asarray((same_lo & same_hi).any(axis=1), dtype=bool)
            private = usable & ~known
            listed = scale_text(allowed_scales)
            out += [(int(k), "max_rating" if starts[k] else "min_rating",
                     f"scale {_num(lo[k])}..{_num(hi[k])} is not a rating scale of this platform; allowed scales: "
                     f"{listed} "
                     "(setting allowed_scales)") for k in np.flatnonzero(private)]
            usable = usable & known
        finite = np.isfinite(r)
        out += [(int(k), "rating", f"{float(r[k])!r} is not a finite number") for k in np.flatnonzero(~finite)]
        outside = usable & finite & ((r < lo) | (r > hi))
        out += [(int(k), "rating", f"{r[k]:g} is outside the scale {lo[k]:g}..{hi[k]:g}")
                for k in np.flatnonzero(outside)]
    return sorted(out)


def check_rating(rating: float, min_rating: float, max_rating: float,
                 allowed_scales: Sequence[tuple[float, float]] | None = None) -> None:
    """Raise :class:`RuleError` if one rating or its scale breaks the rule of :func:`rating_problems`."""
    problems = rating_problems([rating], [min_rating], [max_rating], allowed_scales)
    if problems:
        _, name, reason = problems[0]
        raise RuleError(name, reason)


# ------------------------------------------------------------------------------------------ event rules
# The decisions of the rules about events as a whole; the store layer (store/write_rules.py) looks up the
# stored events they compare with, and every door applies them through it.

#: The fields that make each kind of event's content: an event key posted again with another value in one
#: of them is a conflict (``created_at`` too, when the writer gave it; ``supersedes`` when given).
EVENT_CONTENT: dict[str, tuple[str, ...]] = {
    "reviews": ("item_id", "user_id", "rating", "min_rating", "max_rating", "title", "text", "is_recommended",
                "is_incentivized", "verified_purchase", "photo_count"),
    "votes": ("helpful",),
    "flags": ("reason", "severity"),
}
#: The fields that identify each kind of event (its primary key in the store).
EVENT_KEYS: dict[str, tuple[str, ...]] = {
    "reviews": ("id",), "votes": ("review_id", "voter_id"), "flags": ("review_id", "flagger_id"),
    "trust": ("truster_id", "trustee_id", "domain", "created_at"),
    # a verdict is about a review or an account (target "review" | "user"); one per moderator ("" = none given)
    "verdicts": ("target", "target_id", "moderator_id"),
}


def event_key(kind: str, row: Any) -> Any:
    """The key of an event (a mapping of its fields): its id, or a tuple for a composite key."""
    cols = EVENT_KEYS[kind]
    return row[cols[0]] if len(cols) == 1 else tuple(row[c] for c in cols)


def same_value(field: str, a: Any, b: Any) -> bool:
    """Is a re-posted value the stored one? Numbers to rounding (1e-12), flag reasons in any case, and a
    missing value (None) the same as an empty text."""
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)
    if field == "reason" and isinstance(a, str) and isinstance(b, str):
        return a.upper() == b.upper()
    if a is None or b is None:
        return a in (None, "") and b in (None, "")
    return bool(a == b)


def repost_problem(kind: str, new: Any, before: Any, *, compare_time: bool,
                   earlier_row: int | None = None) -> tuple[str, str] | None:
    """``(field, reason)`` if event ``new`` (a mapping) has the key of ``before`` (the stored event, or an
    earlier one of the same write: then ``earlier_row`` is its 1-based row number) but other content, else
    None (the same event again: a no-op).

    Rule: an event is immutable. Every field of :data:`EVENT_CONTENT` present in ``new`` must equal the
    stored value (:func:`same_value`), ``created_at`` too when ``compare_time`` (the writer gave the time
    rather than leaving it to the time of the write), and a review's ``supersedes`` when it names one. Two
    rows of one write with one key and other content conflict with each other: the reason names the
    earlier row (the error is on the later one), never "already stored".
    """
    fields = list(EVENT_CONTENT.get(kind, ()))
    if compare_time:
        fields.append("created_at")
    key = event_key(kind, new)
    what = kind[:-1]
    for f in fields:
        if f in new and not same_value(f, new[f], before.get(f)):
            if earlier_row is not None:
                return f, (f"{what} {key!r} conflicts with row {earlier_row} of the same write: the same key with "
                           f"another {f} ({before.get(f)!r} in row {earlier_row}, {new[f]!r} here); an event is "
                           "immutable: give each event its own id (a later review of the same item replaces the "
                           "earlier one)")
            return f, (f"{what} {key!r} is already stored with another {f} ({before.get(f)!r}, not {new[f]!r}); "
                       "an event is immutable: post a new id (a later review of the same item replaces the earlier "
                       "one)")
    if kind == "reviews" and new.get("supersedes") and new["supersedes"] != before.get("supersedes"):
        if earlier_row is not None:
            return "supersedes", (f"review {key!r} conflicts with row {earlier_row} of the same write: another "
                                  f"supersedes ({before.get('supersedes')!r} in row {earlier_row})")
        return "supersedes", f"review {key!r} is already stored with supersedes {before.get('supersedes')!r}"
    return None


def supersede_problem(target_id: str, user_id: str, item_id: str, target: Any | None) -> str | None:
    """Why a review by ``user_id`` of ``item_id`` may not supersede review ``target_id`` (None: it may).

    Rule: a review supersedes (hides) only its author's own review of the same item. ``target`` is the
    named review (a mapping with ``user_id`` and ``item_id``: stored, or earlier in the same write) or None
    if there is no such review.
    """
    if target is None:
        return f"review {target_id!r} does not exist"
    if target["user_id"] != user_id or target["item_id"] != item_id:
        return (f"review {target_id!r} is not by {user_id!r} on item {item_id!r}: a review may supersede only its "
                "author's own review of the same item")
    return None


def later_review(created_at: float, review_id: str, than_created_at: float, than_id: str) -> bool:
    """Does review ``(created_at, review_id)`` come after review ``(than_created_at, than_id)``?

    Rule: of a user's reviews of an item, the current one is the latest by ``created_at``, then by id; a
    later review replaces the current one (it is stored with ``supersedes`` naming it), an earlier one is
    history. The store's read side (``Store._live_reviews``) states the same order in SQL.
    """
    return (float(created_at), review_id) > (float(than_created_at), than_id)


def current_review_mask(review_ids: npt.ArrayLike, user_ids: npt.ArrayLike, item_ids: npt.ArrayLike,
                        created_at: npt.ArrayLike | None = None, supersedes: npt.ArrayLike | None = None
                        ) -> npt.NDArray[np.bool_]:
    """Which reviews are current: the array form of the rule :func:`later_review` states (the store's SQL
    form is ``Store._live_reviews``, Spark's ``truescore.spark.fit.live_reviews``; tests/test_rules_once.py
    checks that all of them agree on the same events).

    A review is current when no review names it in ``supersedes`` and it is the latest of its author's
    reviews of its item by ``(created_at, id)`` (without ``created_at``: by id).

    Examples
    --------
    >>> current_review_mask(["a", "b", "c"], ["u", "u", "v"], ["i", "i", "i"], [1.0, 2.0, 1.0]).tolist()
    [False, True, True]
    """
    ids = np.asarray(review_ids, dtype=object).astype(str)
    n = ids.shape[0]
    live = np.ones(n, dtype=bool)
    if supersedes is not None:
        named = {str(x) for x in np.asarray(supersedes, dtype=object) if isinstance(x, str) and x}
        if named:  # hashed (np.isin on object arrays compares element by element: minutes at 10^5)
            live = ~pd.Index(ids).isin(list(named))
    frame = pd.DataFrame({"u": np.asarray(user_ids, dtype=object).astype(str),
                          "i": np.asarray(item_ids, dtype=object).astype(str),
                          "t": np.zeros(n) if created_at is None else np.asarray(created_at, dtype=np.float64),
                          "id": ids, "k": np.arange(n)})[live]
    latest = frame.sort_values(["u", "i", "t", "id"], kind="stable").drop_duplicates(["u", "i"], keep="last")
    out = np.zeros(n, dtype=bool)
    out[latest["k"].to_numpy()] = True
    return out


def item_change_problem(item_id: str, new: Any, stored: Any) -> tuple[str, str] | None:
    """``(field, reason)`` if a review (a mapping with ``topic`` / ``item_title``) would change the title or
    topic of the stored item ``stored`` (a mapping with ``topic`` and ``title``), else None.

    Rule: an item's title and topic are set when it is created (by its first review, or as an item) and
    changed only by an administrator; a writer that is not one is refused (the API answers 403). The
    library and the importer write as an administrator and do not apply it.
    """
    for f, col in (("topic", "topic"), ("item_title", "title")):
        if new.get(f) and new[f] != stored[col]:
            return f, (f"item {item_id!r} exists: its {col} is set when it is created and changed only by an "
                       "'admin' key")
    return None
