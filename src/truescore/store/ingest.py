"""Import events from CSV, JSON Lines, Parquet or a table of another database, with validation.

Every row is validated before anything is written, by the one rule-set of :mod:`truescore.domain`
(docs/rules.md): ids NFC-normalised, bounded, free of control/zero-width/bidi characters and of ``/`` (and
not ``.`` or ``..``: ids are URL path segments); ratings inside their scale, one of the platform's (setting
``allowed_scales``); timestamps ISO 8601 or epoch seconds (``epoch_unit="ms"`` only when the caller says
so) between 1970 and 2200; trust levels in [0, 1] and no trust in oneself; known enum values; bounded text
sizes; references (a vote's review, a verdict's review or account) that exist in the store; a verdict names
exactly one of ``review_id`` and ``user_id``. Limits that are settings come from the
``settings`` the caller passes (default: the process settings). A CSV row whose number of fields differs
from the header's is refused, naming the row. Ids are text: a JSON Lines or Parquet column of integer
ids with a null in it is read without pandas' float upcast, and a whole number read as an id is its
integer text (``31``, never ``31.0``), so ``31`` in one file and ``31`` in another are the same user.

Reviews then pass the event rules that need the store (:func:`truescore.store.write_rules.plan_reviews`),
over the whole file in its order, exactly as :meth:`Store.add_reviews <truescore.store.Store.add_reviews>`
and the HTTP API apply them: a review id already stored (or earlier in the file) with other content is
refused (the same content again is a no-op); ``supersedes`` may name only the author's own review of the
same item; a review later than its author's current review of the item replaces it (``supersedes`` is set
to it). A row a rule refuses is a bad row like any other, named with its row number and field.

Two modes:

- default, all-or-nothing: if any row is bad, nothing is written and :class:`ImportValidationError`
  names the row number, the field and the reason of each problem;
- ``skip_bad=True``: the good rows are written; the bad ones are listed in the report and, given
  ``rejects_path``, written to a rejects CSV with their row numbers, fields and reasons.

Valid rows are then written in ONE transaction (in insert statements of ``batch_size`` rows), so an
import that fails or is killed part-way leaves nothing visible, and a finished one all its rows; every
write is idempotent by id, so running an import again after a failure writes it whole, without
duplicates. Row numbers are 1-based record numbers (for a CSV with a header, record ``n`` is on line
``n + 1``). A UTF-8 byte order mark at the start of a CSV, TSV or JSON Lines file is skipped, and a CSV
field of any length is read (the csv module's 131,072-character limit is lifted) and judged by its rule.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from truescore.config import Settings
from truescore.domain import (
    DEFAULT_MAX_RATING,
    DEFAULT_MIN_RATING,
    DEFAULT_TOPIC,
    MAX_DISPLAY_NAME_CHARS,
    MAX_PHOTOS,
    MAX_SEVERITY,
    MAX_TITLE_CHARS,
    FlagReason,
    RowsRefused,
    RuleError,
    UserRole,
    VerdictLabel,
    clean_flag_reason,
    clean_role,
    clean_verdict,
    epoch_seconds,
    id_problem,
    rating_problems,
    self_trust_problem,
    text_problem,
    topic_problem,
)
from truescore.store.protocols import EventTables
from truescore.store.write_rules import ReviewPlan, plan_reviews

__all__ = [
    "KINDS",
    "ImportReport",
    "ImportValidationError",
    "RowError",
    "StoredProblem",
    "check_stored",
    "import_file",
    "import_frame",
    "import_table",
    "read_records",
    "write_rows",
]

KINDS = ("reviews", "votes", "trust", "flags", "users", "items", "verdicts")

_TRUE = {"true", "t", "yes", "y", "1", "helpful", "helpful_vote"}
_FALSE = {"false", "f", "no", "n", "0", "unhelpful", "unhelpful_vote"}

ProgressFn = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem: 1-based record number, field name and reason."""

    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, field {self.field}: {self.reason}"


class ImportValidationError(RuleError):
    """Rows failed validation or a write rule; nothing was written. ``errors`` lists every problem found;
    the first is also this error's ``row``, ``field`` and ``reason`` (a :class:`~truescore.domain.RuleError`)."""

    def __init__(self, source: str, errors: list[RowError], n_rows: int) -> None:
        first = errors[0] if errors else RowError(0, "record", "invalid")
        RuleError.__init__(self, first.field, first.reason, first.row)
        self.source = source
        self.errors = errors
        self.n_rows = n_rows
        shown = "; ".join(str(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        bad_rows = len({e.row for e in errors})
        self.args = (
            f"{source}: {bad_rows} of {n_rows} rows are invalid, nothing was imported: {shown}{more}. "
            "Fix them, or use --skip-bad to import the good rows and write the bad ones to a rejects file.",
        )

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(slots=True)
class ImportReport:
    """What an import did."""

    source: str
    kind: str
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rows_inserted: int = 0
    batches: int = 0
    seconds: float = 0.0
    rejects_path: str | None = None
    errors: list[RowError] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else float("nan")


# ---------------------------------------------------------------------------------------------- reading
def _detect_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in ((".csv", "csv"), (".csv.gz", "csv"), (".tsv", "tsv"), (".jsonl", "jsonl"),
                        (".jsonl.gz", "jsonl"), (".json", "jsonl"), (".json.gz", "jsonl"), (".ndjson", "jsonl"),
                        (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(suffix):
            return fmt
    raise ValueError(f"{path}: unknown file type; use .csv, .tsv, .jsonl/.json (JSON Lines) or .parquet")


def read_records(path: str | Path, chunk_rows: int = 50_000) -> Iterator[pd.DataFrame]:
    """Yield the file's records as DataFrames of strings/objects, ``chunk_rows`` at a time."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    fmt = _detect_format(p)
    if fmt in ("csv", "tsv"):
        yield from _read_delimited(p, "\t" if fmt == "tsv" else ",", chunk_rows)
    elif fmt == "jsonl":
        opener: Any = gzip.open if p.name.lower().endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8-sig") as fh:  # a UTF-8 byte order mark at the start is skipped
            batch: list[dict[str, Any]] = []
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    rec = {"__parse_error__": f"line {lineno} is not valid JSON: {exc.msg}"}
                if not isinstance(rec, dict):
                    rec = {"__parse_error__": f"line {lineno} is not a JSON object"}
                batch.append(rec)
                if len(batch) >= chunk_rows:
                    yield _json_frame(batch)
                    batch = []
            if batch:
                yield _json_frame(batch)
    else:
        import pyarrow.parquet as pq

        for rb in pq.ParquetFile(p).iter_batches(batch_size=chunk_rows):
            # integers with nulls as Python ints (not floats: an id 31 must not become 31.0)
            yield rb.to_pandas(integer_object_nulls=True)


def _json_frame(batch: list[dict[str, Any]]) -> pd.DataFrame:
    """JSON Lines records as a frame of the values JSON gave (object columns): no float upcast of an integer
    column with a null (id 31 stays 31), no boolean column turned into numbers."""
    return pd.DataFrame(batch, dtype=object)


#: Python's csv module refuses a field over 131,072 characters (its default limit) with an error that names
#: neither the record nor the field. The importer lifts that limit (process-wide, and only ever raises it), so
#: a long field is read whole and judged by its own rule: a review text over ``max_text_bytes`` is refused
#: with its row and field like any other bad value, an over-long id by the id rule.
CSV_FIELD_LIMIT = 2**31 - 1


def _lift_csv_field_limit() -> None:
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def _read_delimited(path: Path, sep: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """CSV/TSV records as frames of strings (empty field = missing). A record whose number of fields
    differs from the header's becomes a parse error naming it, never a shifted row (pandas would take an
    extra leading field as the index and fill a short row with missing values). A UTF-8 byte order mark
    at the start is skipped; a record the csv module cannot parse stops the import, naming it and its line."""
    _lift_csv_field_limit()
    opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        record = 0

        def records() -> Iterator[list[str]]:
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise RuleError("record", f"line {reader.line_num} of {path} cannot be read as "
                                    f"{'TSV' if sep == chr(9) else 'CSV'}: {exc}; nothing was imported",
                                    record + 1) from None
                yield row

        rows = records()
        header = next((row for row in rows if row), None)
        if header is None:
            return
        width = len(header)
        columns = [*header, "__parse_error__"]
        batch: list[list[Any]] = []
        for row in rows:
            if not row:
                continue
            record += 1
            if len(row) == width:
                batch.append([v if v != "" else None for v in row] + [None])
            else:
                fixed = (row + [None] * width)[:width]
                batch.append([*fixed, f"has {len(row)} fields but the header has {width} "
                              f"(line {reader.line_num}); the columns would shift"])
            if len(batch) >= chunk_rows:
                yield _frame(batch, columns)
                batch = []
        if batch or record == 0:
            yield _frame(batch, columns)


def _frame(batch: list[list[Any]], columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(batch, columns=columns, dtype=object)
    if df["__parse_error__"].isna().all():
        df = df.drop(columns="__parse_error__")
    return df


# ---------------------------------------------------------------------------------------------- validation
def _id_text(value: Any) -> str:
    """The text of an id value: strings as they are; a number as its integer text when it is whole (``31``
    and ``31.0``, from a float column with nulls, are both ``"31"``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _shown(value: Any) -> Any:
    """A value as a message shows it: a numpy scalar as its Python value (``inf``, not ``np.float64(inf)``), so
    a frame's float column and the library's objects are refused in the same words."""
    return value.item() if isinstance(value, np.generic) else value


def _present(s: pd.Series) -> np.ndarray:
    if s.dtype == object:
        return s.map(lambda v: v is not None and not (isinstance(v, float) and math.isnan(v))
                     and str(v).strip() != "").to_numpy(bool)
    return s.notna().to_numpy(bool)


class _Validator:
    """Validate one chunk column by column; collect errors per row and build clean columns."""

    def __init__(self, df: pd.DataFrame, first_row: int, now: float, max_id: int, max_text: int,
                 epoch_unit: str = "s", nan_is_missing: bool = True,
                 allowed_scales: Sequence[tuple[float, float]] | None = None) -> None:
        self.df = df.reset_index(drop=True)
        #: the platform's rating scales (setting allowed_scales); None allows every bounded scale
        self.allowed_scales = allowed_scales
        #: a float NaN in a number column is a missing value (files, frames) or a NaN (library objects)
        self.nan_is_missing = nan_is_missing
        #: which rows gave a value, per timestamp column (a created_at filled in by the import is not compared)
        self.given: dict[str, np.ndarray] = {}
        self.n = len(self.df)
        self.rows = np.arange(first_row, first_row + self.n)
        self.bad = np.zeros(self.n, dtype=bool)
        self.errors: list[RowError] = []
        self.out: dict[str, Any] = {}
        self.now = now
        self.max_id = max_id
        self.max_text = max_text
        self.epoch_unit = epoch_unit
        if "__parse_error__" in self.df:
            mask = _present(self.df["__parse_error__"])
            self._fail(mask, "record", self.df["__parse_error__"].astype(str).to_numpy())

    def _fail(self, mask: np.ndarray, name: str, reason: str | np.ndarray | Callable[[int], str]) -> None:
        for k in np.flatnonzero(mask):
            if callable(reason):
                msg = reason(int(k))
            elif isinstance(reason, np.ndarray):
                msg = str(reason[k])
            else:
                msg = reason
            self.errors.append(RowError(int(self.rows[k]), name, msg))
        self.bad |= mask

    def col(self, name: str) -> pd.Series:
        if name in self.df:
            return self.df[name]
        return pd.Series([None] * self.n, dtype=object)

    def ident(self, name: str, required: bool = True) -> None:
        s = self.col(name)
        present = _present(s)
        if required:
            self._fail(~present, name, "missing (an id is required)")
        self._clean_each(name, s, present, None, lambda v: id_problem(_id_text(v), self.max_id))

    def _clean_each(self, name: str, s: pd.Series, present: np.ndarray, default: str | None,
                    rule: Callable[[Any], tuple[str | None, str | None]]) -> None:
        """Apply a domain ``rule`` (value -> (clean value, reason or None)) to every present value of column
        ``name``; refused values fail their row with the rule's reason, absent ones get ``default``."""
        vals = np.full(self.n, default, dtype=object)
        bad = np.zeros(self.n, dtype=bool)
        reasons: dict[int, str] = {}
        for k, (v, p) in enumerate(zip(s.tolist(), present, strict=True)):
            if not p:
                continue
            clean, reason = rule(v)
            if reason is None:
                vals[k] = clean
            else:
                bad[k] = True
                reasons[k] = reason
        self._fail(bad, name, lambda k: reasons[k])
        self.out[name] = vals

    def text(self, name: str, max_chars: int | None = None) -> None:
        s = self.col(name)
        present = _present(s)
        vals = np.array([str(v) if p else None for v, p in zip(s.tolist(), present, strict=True)], dtype=object)
        limit = {"max_chars": max_chars} if max_chars is not None else {"max_bytes": self.max_text}
        reasons = {k: r for k, v in enumerate(vals) if v is not None and (r := text_problem(v, **limit)) is not None}
        bad = np.zeros(self.n, dtype=bool)
        bad[list(reasons)] = True
        self._fail(bad, name, lambda k: reasons[k])
        self.out[name] = vals

    def number(self, name: str, default: float | None, required: bool = False,
               lo: float | None = None, hi: float | None = None, integer: bool = False) -> np.ndarray:
        s = self.col(name)
        present = _present(s)
        if not self.nan_is_missing:  # a NaN is a value that is not a finite number, not a missing one
            present = present | np.array([isinstance(v, float) and math.isnan(v) for v in s.tolist()], dtype=bool)
        if required:
            self._fail(~present, name, "missing (a number is required)")
        if s.dtype.kind in "iuf":  # a numeric column (the API's, most files'): no per-value checks
            num = s.to_numpy(dtype=np.float64, na_value=np.nan)
            is_bool = np.zeros(self.n, dtype=bool)
        elif not present.any():  # a column nobody filled in (an optional field)
            num = np.full(self.n, np.nan)
            is_bool = np.zeros(self.n, dtype=bool)
        else:
            raw = s.astype(object).where(present, None)
            is_bool = np.array([isinstance(v, bool | np.bool_) for v in raw], dtype=bool) if s.dtype == object \
                else np.zeros(self.n, dtype=bool)
            if s.dtype == bool:
                is_bool[:] = True
            num = pd.to_numeric(raw.where(~is_bool, None), errors="coerce").to_numpy(float)
        self._fail(present & is_bool, name, lambda k: f"{_shown(s.iloc[k])!r} is a boolean, not a number")
        unparsable = present & ~is_bool & ~np.isfinite(num)
        self._fail(unparsable, name, lambda k: f"{_shown(s.iloc[k])!r} is not a finite number")
        if integer:
            frac = present & np.isfinite(num) & (num != np.round(num))
            self._fail(frac, name, lambda k: f"{_shown(s.iloc[k])!r} is not a whole number")
        vals = np.where(present & np.isfinite(num), num, np.nan if default is None else default)
        ok = np.isfinite(vals)
        if lo is not None:
            self._fail(ok & (vals < lo), name, lambda k: f"{vals[k]:g} is below the minimum {lo:g}")
        if hi is not None:
            self._fail(ok & (vals > hi), name, lambda k: f"{vals[k]:g} is above the maximum {hi:g}")
        self.out[name] = vals
        return vals

    def timestamp(self, name: str, required: bool = False) -> None:
        s = self.col(name)
        present = _present(s)
        if required:
            self._fail(~present, name, "missing (a timestamp is required)")
        self.given[name] = present
        vals, reasons = epoch_seconds(s.to_numpy(), self.epoch_unit)
        bad = np.array([r is not None for r in reasons], dtype=bool)
        self._fail(bad, name, lambda k: str(reasons[k]))
        lost = present & ~bad & ~np.isfinite(vals)  # never store a NaN time: a value the rule could not read
        self._fail(lost, name, lambda k: f"{_shown(s.iloc[k])!r} is not a timestamp (ISO 8601 or epoch seconds)")
        if name == "created_at":
            vals = np.where(~present, self.now, vals)
        self.out[name] = vals

    def boolean(self, name: str, required: bool = False) -> None:
        s = self.col(name)
        present = _present(s)
        if required:
            self._fail(~present, name, "missing (true or false is required)")
        vals = np.full(self.n, None, dtype=object)
        bad = np.zeros(self.n, dtype=bool)
        for k in np.flatnonzero(present):
            v = s.iloc[k]
            if isinstance(v, bool | np.bool_):
                vals[k] = bool(v)
                continue
            key = str(v).strip().lower()
            if key in _TRUE:
                vals[k] = True
            elif key in _FALSE:
                vals[k] = False
            else:
                bad[k] = True
        self._fail(bad, name, lambda k: f"{_shown(s.iloc[k])!r} is not a boolean (true/false, yes/no, 1/0)")
        self.out[name] = vals

    def enum(self, name: str, allowed: list[str], default: str | None, upper: bool) -> None:
        s = self.col(name)
        present = _present(s)
        clean: Callable[[str, str], Any] = clean_flag_reason if upper else clean_role
        if name == "verdict":
            clean = clean_verdict
        vals = np.full(self.n, default, dtype=object)
        bad = np.zeros(self.n, dtype=bool)
        for k, (v, p) in enumerate(zip(s.tolist(), present, strict=True)):
            if not p:
                bad[k] = default is None
                continue
            try:
                vals[k] = clean(str(v), name).value
            except RuleError:
                bad[k] = True
        one_of = ", ".join(allowed)
        self._fail(bad, name, lambda k: f"missing (one of {one_of} is required)" if name == "verdict" and not present[k]
                   else f"{_shown(s.iloc[k])!r} is not one of {one_of}")
        self.out[name] = vals

    def not_self(self, source: str, target: str) -> None:
        """Refuse the rows whose ``target`` id is their ``source`` id (a trust statement in oneself), on field
        ``target``: :func:`~truescore.domain.self_trust_problem`."""
        reasons = {k: r for k, (a, b) in enumerate(zip(self.out[source], self.out[target], strict=True))
                   if a is not None and b is not None and (r := self_trust_problem(a, b)) is not None}
        bad = np.zeros(self.n, dtype=bool)
        bad[list(reasons)] = True
        self._fail(bad, target, lambda k: reasons[k])

    def topic(self, name: str, default: str | None) -> None:
        s = self.col(name)
        self._clean_each(name, s, _present(s), default, lambda v: topic_problem(str(v)))


def _validate(kind: str, v: _Validator) -> None:
    if kind == "reviews":
        v.ident("id")
        v.ident("item_id")
        v.ident("user_id")
        lo = v.number("min_rating", DEFAULT_MIN_RATING)
        hi = v.number("max_rating", DEFAULT_MAX_RATING)
        r = v.number("rating", None, required=True)
        parsed = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(r)  # unparsable numbers are reported already
        for k, fld, reason in rating_problems(r, lo, hi, v.allowed_scales):
            if parsed[k]:
                v._fail(_row_mask(v.n, k), fld, reason)
        v.text("title", MAX_TITLE_CHARS)
        v.text("text")
        v.timestamp("created_at")
        for b in ("is_recommended", "is_incentivized", "verified_purchase"):
            v.boolean(b)
        v.number("photo_count", 0, lo=0, hi=MAX_PHOTOS, integer=True)
        v.ident("supersedes", required=False)
        v.topic("topic", None)
        v.text("item_title", MAX_TITLE_CHARS)
    elif kind == "votes":
        v.ident("review_id")
        v.ident("voter_id")
        v.boolean("helpful", required=True)
        v.timestamp("created_at")
    elif kind == "trust":
        v.ident("truster_id")
        v.ident("trustee_id")
        v.not_self("truster_id", "trustee_id")
        v.topic("domain", DEFAULT_TOPIC)
        v.number("level", None, required=True, lo=0.0, hi=1.0)
        v.timestamp("created_at")
        v.timestamp("valid_until")
    elif kind == "flags":
        v.ident("review_id")
        v.ident("flagger_id")
        v.enum("reason", [r.value for r in FlagReason], None, upper=True)
        v.number("severity", 1.0, lo=0.0, hi=MAX_SEVERITY)
        v.timestamp("created_at")
    elif kind == "users":
        v.ident("id")
        v.timestamp("created_at")
        v.text("display_name", MAX_DISPLAY_NAME_CHARS)
        v.enum("role", [r.value for r in UserRole], UserRole.PERSON.value, upper=False)
    elif kind == "items":
        v.ident("id")
        v.topic("topic", DEFAULT_TOPIC)
        v.text("title", MAX_TITLE_CHARS)
        v.timestamp("created_at")
    elif kind == "verdicts":
        _validate_verdicts(v)
    else:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")


def _validate_verdicts(v: _Validator) -> None:
    """A verdict names exactly one of ``review_id`` (a review) and ``user_id`` (an account); ``verdict`` is
    fake or genuine (any case); ``moderator_id`` is optional (stored as "": the platform's verdict). The
    stored key is (target, target_id, moderator_id), target "review" or "user"."""
    v.ident("review_id", required=False)
    v.ident("user_id", required=False)
    has_r = _present(v.col("review_id"))
    has_u = _present(v.col("user_id"))
    v._fail(has_r & has_u, "user_id", "give exactly one of review_id and user_id (a verdict is about one review "
            "or one account), not both")
    v._fail(~has_r & ~has_u, "review_id", "missing: give exactly one of review_id (a verdict on a review) and "
            "user_id (a verdict on an account)")
    v.enum("verdict", [x.value for x in VerdictLabel], None, upper=False)
    v.ident("moderator_id", required=False)
    v.timestamp("created_at")
    rid, uid = v.out["review_id"], v.out["user_id"]
    v.out["target"] = np.array(["review" if r is not None else "user" for r in rid], dtype=object)
    v.out["target_id"] = np.array([r if r is not None else u for r, u in zip(rid, uid, strict=True)], dtype=object)
    v.out["moderator_id"] = np.array(["" if m is None else m for m in v.out["moderator_id"]], dtype=object)


def _row_mask(n: int, k: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[k] = True
    return mask


_COLUMNS = {
    "reviews": ["id", "item_id", "user_id", "rating", "min_rating", "max_rating", "title", "text", "created_at",
                "is_recommended", "is_incentivized", "verified_purchase", "photo_count", "supersedes"],
    "votes": ["review_id", "voter_id", "helpful", "created_at"],
    "trust": ["truster_id", "trustee_id", "domain", "level", "created_at", "valid_until"],
    "flags": ["review_id", "flagger_id", "reason", "severity", "created_at"],
    "users": ["id", "created_at", "display_name", "role"],
    "items": ["id", "topic", "title", "created_at"],
    "verdicts": ["target", "target_id", "moderator_id", "verdict", "created_at"],
}


def _columns(kind: str, v: _Validator, keep: np.ndarray) -> dict[str, list[Any]]:
    """The valid rows as Python column lists (NaN -> None), ready for :meth:`Store.insert_columns`."""
    out: dict[str, list[Any]] = {}
    for c in _COLUMNS[kind]:
        arr = v.out[c][keep]
        if arr.dtype.kind == "f":
            values = arr.tolist()
            out[c] = [None if x != x else x for x in values] if np.isnan(arr).any() else values
        else:
            out[c] = arr.tolist()
    if kind == "reviews":
        out["photo_count"] = [int(x or 0) for x in out["photo_count"]]
    return out


# ---------------------------------------------------------------------------------------------- driver
def _apply_map(df: pd.DataFrame, mapping: dict[str, str] | None) -> pd.DataFrame:
    if not mapping:
        return df
    missing = [src for src in mapping if src not in df.columns]
    if missing:
        raise ValueError(f"--map names column(s) not in the input: {', '.join(missing)}; "
                         f"input columns: {', '.join(map(str, df.columns))}")
    return df.rename(columns=mapping)


def parse_mapping(pairs: list[str] | None) -> dict[str, str]:
    """Parse ``column=field`` pairs (``--map`` options) into a rename mapping."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--map {pair!r}: expected column=field")
        src, dst = (s.strip() for s in pair.split("=", 1))
        if not src or not dst:
            raise ValueError(f"--map {pair!r}: expected column=field")
        out[src] = dst
    return out


def _check_references(store: EventTables, kind: str, v: _Validator) -> None:
    """Votes, flags and verdicts must point at a review (a verdict: or an account) already in the store."""
    if kind == "verdicts":
        for col, table, what in (("review_id", "reviews", "review"), ("user_id", "users", "user")):
            ids = v.out[col]
            wanted = sorted({x for x in ids[~v.bad] if x is not None})
            unknown = set(wanted) - store.existing_ids(table, wanted) if wanted else set()
            if unknown:
                mask = ~v.bad & np.array([x in unknown for x in ids], dtype=bool)
                reasons = {int(k): f"{what} {ids[k]!r} is not in the store: a verdict must name a stored {what}"
                           for k in np.flatnonzero(mask)}
                v._fail(mask, col, reasons.__getitem__)
        return
    if kind not in ("votes", "flags"):
        return
    wanted = sorted({rid for rid in v.out["review_id"][~v.bad] if rid is not None})
    unknown = set(wanted) - store.existing_ids("reviews", wanted) if wanted else set()
    if unknown:
        mask = ~v.bad & np.array([rid in unknown for rid in v.out["review_id"]], dtype=bool)
        v._fail(mask, "review_id", lambda k: f"review {v.out['review_id'][k]!r} is not in the store")


class _Chained(Sequence[Any]):
    """One column of the valid rows of every chunk, read in place: ``parts`` are ``(values, indices)``."""

    def __init__(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.parts = parts
        self.starts = np.cumsum([0] + [len(idx) for _, idx in parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    @overload
    def __getitem__(self, k: int) -> Any: ...

    @overload
    def __getitem__(self, k: slice) -> list[Any]: ...

    def __getitem__(self, k: int | slice) -> Any:
        if isinstance(k, slice):
            return list(self)[k]
        if not 0 <= k < len(self):
            raise IndexError(k)
        part = int(np.searchsorted(self.starts, k, side="right")) - 1
        values, idx = self.parts[part]
        value = values[idx[k - self.starts[part]]]
        return value.item() if isinstance(value, np.generic) else value

    def __iter__(self) -> Iterator[Any]:
        for values, idx in self.parts:
            yield from values[idx].tolist()


def _review_rules(store: EventTables, chunks: list[_Validator]) -> list[RuleError]:
    """Apply :func:`~truescore.store.write_rules.plan_reviews` to the valid rows of every chunk, in record
    order: the rows it refuses become bad rows (with their row number and field), and the ``supersedes``
    it sets is written. Returns its errors, in the rules' order."""
    parts = [(v, np.flatnonzero(~v.bad)) for v in chunks]
    cols = {c: _Chained([(v.out[c], idx) for v, idx in parts]) for c in _COLUMNS["reviews"]}
    given = _Chained([(v.given["created_at"], idx) for v, idx in parts])
    numbers = _Chained([(v.rows, idx) for v, idx in parts])
    plan = plan_reviews(store, cols, given, admin=True, row_numbers=numbers)
    offset = 0
    for v, idx in parts:
        if len(idx):
            sup = np.empty(len(idx), dtype=object)
            sup[:] = plan.supersedes[offset : offset + len(idx)]
            v.out["supersedes"][idx] = sup
        offset += len(idx)
    for e in plan.errors:
        for v in chunks:
            k = int(e.row or 0) - int(v.rows[0]) if v.n else -1
            if 0 <= k < v.n:
                v._fail(_row_mask(v.n, k), e.field, e.reason)
                break
    return plan.errors


@dataclass(slots=True)
class _Prepared:
    """The validated chunks of one write and what the rules found."""

    #: each chunk with the mask of its rows to write
    chunks: list[tuple[_Validator, np.ndarray]]
    #: every problem (validation and rules), sorted by row and field
    errors: list[RowError]
    #: the problems found by the validation alone, and by the review rules (in the rules' order)
    validation_errors: list[RowError]
    rule_errors: list[RuleError]
    rows_read: int


def _prepare(store: EventTables, frames: Iterator[pd.DataFrame], kind: str, *, mapping: dict[str, str] | None,
             settings: Settings, epoch_unit: str, keep_raw: bool, review_plan: ReviewPlan | None,
             nan_is_missing: bool = True, on_chunk: Callable[[int], None] | None = None) -> _Prepared:
    """Validate every record of ``frames``, then (reviews) apply the review rules; nothing is written."""
    now = time.time()
    chunks: list[_Validator] = []
    first = 1
    for raw in frames:
        df = _apply_map(raw, mapping)
        v = _Validator(df, first, now, settings.max_id_length, settings.max_text_bytes, epoch_unit,
                       nan_is_missing=nan_is_missing, allowed_scales=settings.allowed_scales)
        _validate(kind, v)
        _check_references(store, kind, v)
        if not keep_raw:
            v.df = v.df[v.bad].assign(_row=v.rows[v.bad])  # keep only what a rejects file needs
        chunks.append(v)
        first += v.n
        if on_chunk is not None:
            on_chunk(first - 1)
    validation = sorted((e for v in chunks for e in v.errors), key=lambda e: (e.row, e.field))
    rule_errors: list[RuleError] = []
    if kind == "reviews":
        if review_plan is None:
            rule_errors = _review_rules(store, chunks)
        elif review_plan.n_rows != first - 1 or review_plan.errors:
            raise ValueError(f"the review plan is for {review_plan.n_rows} rows ({len(review_plan.errors)} refused), "
                             f"not for these {first - 1}: plan the rows that are written, and write none it refuses")
    if keep_raw:
        for v in chunks:
            v.df = v.df[v.bad].assign(_row=v.rows[v.bad])
    errors = sorted((e for v in chunks for e in v.errors), key=lambda e: (e.row, e.field))
    return _Prepared([(v, ~v.bad) for v in chunks], errors, validation, rule_errors, first - 1)


def import_frames(
    store: EventTables,
    frames: Iterator[pd.DataFrame],
    kind: str,
    *,
    source: str = "<frame>",
    mapping: dict[str, str] | None = None,
    skip_bad: bool = False,
    rejects_path: str | Path | None = None,
    batch_size: int | None = None,
    progress: ProgressFn | None = None,
    total_rows: int | None = None,
    settings: Settings | None = None,
    epoch_unit: str = "s",
    review_plan: ReviewPlan | None = None,
    before_commit: Callable[[Connection, ImportReport], None] | None = None,
) -> ImportReport:
    """Validate every record of ``frames``, apply the review rules, then write the valid rows in ONE
    transaction (see the module docstring).

    ``settings`` gives the limits (``max_id_length``, ``max_text_bytes``, ``allowed_scales``,
    ``import_batch_size``); default the process settings. ``batch_size`` is the number of rows per insert
    statement (default ``import_batch_size``): every batch of one import is written in the same transaction.
    ``epoch_unit`` is the unit of numeric timestamps: ``"s"`` (default) or ``"ms"``.
    ``review_plan`` is for a caller that applied :func:`~truescore.store.write_rules.plan_reviews` to
    exactly these rows itself, with no row refused, and set their ``supersedes`` from it (the HTTP API
    does, before it charges the key's quota): the rules are then not applied a second time.
    ``before_commit(conn, report)`` runs inside the import's transaction after the rows are written (the
    command line records the import's audit row with it): what it writes commits with the rows, or not at all.
    """
    from truescore.config import get_settings

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    settings = settings if settings is not None else get_settings()
    epoch_seconds([], epoch_unit)  # refuses an unknown unit up front
    batch_size = batch_size or settings.import_batch_size
    started = time.perf_counter()
    report = ImportReport(source=source, kind=kind)

    def read(n: int) -> None:
        report.rows_read = n
        if progress:
            progress(n // 2, total_rows)

    prepared = _prepare(store, frames, kind, mapping=mapping, settings=settings, epoch_unit=epoch_unit,
                        keep_raw=skip_bad and rejects_path is not None and kind == "reviews",
                        review_plan=review_plan, on_chunk=read)
    chunks, errors = prepared.chunks, prepared.errors
    report.rows_read = prepared.rows_read
    report.errors = errors
    bad_rows = {e.row for e in errors}
    report.rows_rejected = len(bad_rows)
    report.rows_valid = report.rows_read - report.rows_rejected
    if errors and not skip_bad:
        raise ImportValidationError(source, errors, report.rows_read)
    if errors and skip_bad and rejects_path is not None:
        report.rejects_path = str(rejects_path)
        _write_rejects(report.rejects_path, chunks, errors)
    done = 0
    with store.transaction() as conn:  # one transaction: an import that fails or is killed leaves nothing
        for v, keep in chunks:
            cols = _columns(kind, v, keep)
            n_rows = int(keep.sum())
            if kind == "reviews":
                _add_topics(store, v, keep, conn)
            for start in range(0, n_rows, batch_size):
                batch = {c: values[start : start + batch_size] for c, values in cols.items()}
                report.rows_inserted += store.insert_columns(kind, batch, conn=conn)
                report.batches += 1
                done += min(batch_size, n_rows - start)
                if progress:
                    progress(report.rows_read // 2 + done * report.rows_read // max(2 * report.rows_valid, 1),
                             total_rows)
        report.seconds = time.perf_counter() - started
        if before_commit is not None:
            before_commit(conn, report)
    report.seconds = time.perf_counter() - started
    return report


def write_rows(store: EventTables, kind: str, rows: Sequence[Mapping[str, Any]], *, conn: Connection | None = None,
               settings: Settings | None = None) -> int:
    """The library's write of events given as row dicts (:meth:`Store.add_reviews
    <truescore.store.Store.add_reviews>`): the importer's validation and the review rules, then ONE
    transaction (``conn``'s, when given).

    Parameters
    ----------
    store : Store
    kind : str
        One of :data:`KINDS`.
    rows : sequence of mapping
        One dict per event, fields as in a file of ``kind`` (times as epoch seconds or ``datetime``); a float
        NaN is a value that is not a finite number, not a missing one.
    conn : sqlalchemy.Connection, optional
        Write on this connection (the look-ups of the rules read committed rows).
    settings : Settings, optional
        The limits (``max_id_length``, ``max_text_bytes``); default the process settings.

    Returns
    -------
    int
        Rows inserted (an identical re-post is not inserted again).

    Raises
    ------
    RowsRefused
        Rows break the validation rules (each named with its row, field and reason: the text the HTTP API
        answers with its 422); nothing is written.
    ConflictError, RuleError
        No row breaks the validation but one breaks an event rule: the first problem the rules found (an id
        stored with other content; a ``supersedes`` naming another user's review or another item's).
    """
    from truescore.config import get_settings

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not rows:
        return 0
    settings = settings if settings is not None else get_settings()
    frame = pd.DataFrame(list(rows), dtype=object)
    prepared = _prepare(store, iter([frame]), kind, mapping=None, settings=settings, epoch_unit="s", keep_raw=False,
                        review_plan=None, nan_is_missing=False)
    if prepared.validation_errors:
        rules = {(e.row, e.field): e for e in prepared.rule_errors}
        found = [rules.get((e.row, e.field)) or RuleError(e.field, e.reason, e.row) for e in prepared.errors]
        raise RowsRefused(kind, prepared.rows_read, found)
    if prepared.rule_errors:
        raise prepared.rule_errors[0]
    inserted = 0
    with nullcontext(conn) if conn is not None else store.transaction() as c:
        for v, keep in prepared.chunks:
            if kind == "reviews":
                _add_topics(store, v, keep, c)
            inserted += store.insert_columns(kind, _columns(kind, v, keep), conn=c)
    return inserted


@dataclass(frozen=True, slots=True)
class StoredProblem:
    """A stored event that the import rules of today refuse: its table, its key and the problem."""

    table: str
    key: Any
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.table} {self.key!r}, field {self.field}: {self.reason}"


_ID_COLUMNS = ("id", "item_id", "user_id", "review_id", "voter_id", "flagger_id", "truster_id", "trustee_id")
#: the tables :func:`check_stored` reads (verdicts are stored in another layout than they are imported in)
CHECKED_KINDS = ("users", "items", "reviews", "votes", "trust", "flags")


def check_stored(store: Any, kinds: Sequence[str] = CHECKED_KINDS, *, settings: Settings | None = None,
                 limit: int | None = None) -> list[StoredProblem]:
    """Stored events that the importer's validation (the one rule-set of every door) refuses today: rows
    written before a rule existed (a private rating scale outside ``allowed_scales``, an id with ``/``, a
    trust level of 50) or by a path that skipped it. Read-only; each problem names the row by its key.

    Parameters
    ----------
    store : Store
    kinds : sequence of str
        Tables to check (default :data:`CHECKED_KINDS`).
    settings : Settings, optional
        The limits and scales; default the process settings.
    limit : int, optional
        Stop after this many problems.
    """
    from truescore.config import get_settings
    from truescore.domain import EVENT_KEYS

    settings = settings if settings is not None else get_settings()
    problems: list[StoredProblem] = []
    for kind in kinds:
        if kind not in CHECKED_KINDS:
            raise ValueError(f"cannot check {kind!r}: choose among {', '.join(CHECKED_KINDS)}")
        frame = store.read_table(kind)
        if not len(frame):
            continue
        v = _Validator(frame, 1, time.time(), settings.max_id_length, settings.max_text_bytes, "s",
                       nan_is_missing=True, allowed_scales=settings.allowed_scales)
        _validate(kind, v)
        keys = EVENT_KEYS.get(kind, ("id",))

        found = [(e.row - 1, e.field, e.reason) for e in v.errors]
        # an id the rules accept only in another form (" u33" is stored as "u33" today): no write can name it
        for name in _ID_COLUMNS:
            if name in frame.columns and name in v.out:
                stored_col, clean_col = frame[name].to_numpy(dtype=object), list(v.out[name])
                for k in np.flatnonzero(~v.bad).tolist():
                    stored, clean = stored_col[k], clean_col[k]
                    if isinstance(stored, str) and isinstance(clean, str) and stored != clean:
                        found.append((k, name, f"stored as {stored!r}; today's rules store it as {clean!r}, so no "
                                               "write can name this row"))
        for k, name, reason in sorted(found, key=lambda t: (t[0], t[1])):
            row = frame.iloc[k]
            key = row[keys[0]] if len(keys) == 1 else tuple(row[c] for c in keys)
            problems.append(StoredProblem(kind, key, name, reason))
            if limit is not None and len(problems) >= limit:
                return problems
    return problems


def _add_topics(store: EventTables, v: _Validator, keep: np.ndarray, conn: Connection) -> None:
    """A reviews file may carry the item's topic and title: create those items before the reviews."""
    topics, titles = v.out["topic"], v.out["item_title"]
    has = keep & np.array([t is not None for t in topics], dtype=bool)
    if not has.any():
        return
    seen: dict[str, dict[str, Any]] = {}
    for k in np.flatnonzero(has):
        iid = v.out["item_id"][k]
        if iid not in seen:
            seen[iid] = {"id": iid, "topic": topics[k], "title": titles[k], "created_at": float(v.out["created_at"][k])}
    store.insert_rows("items", list(seen.values()), conn=conn)


def default_rejects_path(source: str) -> Path:
    """Where the CLI writes rejected rows when --rejects is not given: ``<file name>.rejects.csv``."""
    base = Path(source.split("::")[-1]).name or "import"
    return Path(f"{base}.rejects.csv")


def _write_rejects(path: str, chunks: list[tuple[_Validator, np.ndarray]], errors: list[RowError]) -> None:
    by_row: dict[int, list[RowError]] = {}
    for e in errors:
        by_row.setdefault(e.row, []).append(e)
    bad = pd.concat([v.df for v, _ in chunks if len(v.df)])
    rows = bad.pop("_row").to_numpy()
    bad.insert(0, "_row", rows)
    bad.insert(1, "_field", ["; ".join(e.field for e in by_row[int(r)]) for r in rows])
    bad.insert(2, "_reason", ["; ".join(e.reason for e in by_row[int(r)]) for r in rows])
    bad.to_csv(path, index=False)


def import_file(
    store: EventTables,
    path: str | Path,
    kind: str,
    **kwargs: Any,
) -> ImportReport:
    """Import a CSV / TSV / JSON Lines / Parquet file of ``kind`` events; see :func:`import_frames`."""
    p = Path(path)
    total = _count_records(p)
    return import_frames(store, read_records(p), kind, source=str(p), total_rows=total, **kwargs)


def import_frame(store: EventTables, df: pd.DataFrame, kind: str, **kwargs: Any) -> ImportReport:
    """Import an in-memory DataFrame of ``kind`` events; see :func:`import_frames`."""
    return import_frames(store, iter([df]), kind, total_rows=len(df), **kwargs)


def import_table(store: EventTables, url: str, table: str, kind: str, **kwargs: Any) -> ImportReport:
    """Import ``table`` of another SQLite or PostgreSQL database (seed 000: "loading item ratings from a
    local SQLite file or database connection")."""
    from sqlalchemy import MetaData, Table, create_engine, select
    from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        engine = create_engine(url)
        tbl = Table(table, MetaData(), autoload_with=engine)
    except NoSuchTableError:
        raise ValueError(f"{url}: no table named {table!r}") from None
    except SQLAlchemyError as exc:
        raise ValueError(f"cannot read {url}: {exc.__class__.__name__}: {exc}") from None

    def frames() -> Iterator[pd.DataFrame]:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(select(tbl))
            cols = list(result.keys())
            while True:
                rows = result.fetchmany(50_000)
                if not rows:
                    break
                yield pd.DataFrame(rows, columns=cols).astype(object)

    try:
        return import_frames(store, frames(), kind, source=f"{url}::{table}", **kwargs)
    finally:
        engine.dispose()


def _count_records(path: Path) -> int | None:
    """Cheap record count for the progress bar (lines minus header for text formats)."""
    try:
        if path.stat().st_size > 2_000_000_000:
            return None
        fmt = _detect_format(path)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        opener: Any = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as fh:
            n = sum(1 for _ in fh)
        return n - 1 if fmt in ("csv", "tsv") else n
    except OSError:
        return None
