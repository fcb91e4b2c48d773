"""The service tables of the store: API keys (a user with scopes), jobs, the audit trail, the store-wide
change sequence, rate counters, and erasure.

- **Keys.** A key is one identity: ``user_id`` and a set of scopes (``write``, ``moderate``, ``admin``).
  Only the SHA-256 of the secret is stored. Keys created before keys had users (``user_id`` and
  ``scopes`` NULL) are platform keys with the ``admin`` scope: they keep working as before.
- **Jobs.** ``queued -> running -> done | failed | cancelled | interrupted``; each row names the
  ``host:pid`` of the server that runs it, so a server starting up marks the jobs of dead processes on
  its host ``interrupted``.
- **Audit.** One row per accepted write or erasure: when it arrived, which key, which user, which kind,
  how many events and their keys (ids only, never content).
- **Change sequence.** ``changes.seq`` is incremented by every committed transaction that writes or
  deletes events (:meth:`truescore.store.Store.transaction`); a server compares it with the value its
  cached state was built at, so every process notices every other's writes.
- **Erasure.** :func:`erase_user` deletes a user's reviews, votes, trust statements, flags and verdicts with the
  rows derived from them, in one transaction, and leaves an audit row with counts only.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, text, update

from truescore.domain import RuleError, id_problem
from truescore.store import schema
from truescore.store.changes import bump_seq
from truescore.store.changes import current_seq as _current_seq
from truescore.store.migrate import migrate_service_tables
from truescore.store.store import Store

__all__ = [
    "SCOPES",
    "ErasureReport",
    "Principal",
    "add_counter",
    "bump_seq",
    "cancel_job",
    "create_job",
    "create_key",
    "current_seq",
    "delete_review",
    "erase_user",
    "get_job",
    "interrupt_orphaned_jobs",
    "list_audit",
    "list_jobs",
    "list_keys",
    "migrate",
    "record_audit",
    "revoke_key",
    "update_job",
    "verify_key",
]

#: the scopes a key can hold
SCOPES = ("write", "moderate", "admin")
#: job states that no longer change
FINAL_JOB_STATES = ("done", "failed", "cancelled", "interrupted")


# ---------------------------------------------------------------------------------------------- migration
def migrate(store: Store) -> None:
    """Bring a store created by an earlier version up to date (see :mod:`truescore.store.changes`)."""
    migrate_service_tables(store.engine)


# ---------------------------------------------------------------------------------------------- keys
@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is: the key, its user (None for a platform key) and its scopes."""

    key_id: str
    name: str
    user_id: str | None
    scopes: frozenset[str]
    rate_limit: int | None = None
    daily_quota: int | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(s.strip().lower() for s in scopes if s.strip()))
    bad = [s for s in out if s not in SCOPES]
    if bad:
        raise ValueError(f"unknown scope(s) {', '.join(bad)}; choose from {', '.join(SCOPES)}")
    if not out:
        raise ValueError(f"a key needs at least one scope of {', '.join(SCOPES)}")
    return out


def create_key(store: Store, name: str, *, user_id: str | None = None, scopes: Sequence[str] | None = None,
               rate_limit: int | None = None, daily_quota: int | None = None) -> tuple[str, str]:
    """Create a key for ``user_id`` with ``scopes``; returns ``(key_id, secret)``.

    Without a user the key is a platform key and must be ``admin`` (the default then). A user key
    defaults to the ``write`` scope. ``rate_limit`` (requests per rate window) and ``daily_quota``
    (events per UTC day) override the settings for this key; 0 means unlimited.
    """
    chosen = _check_scopes(scopes if scopes else (["write"] if user_id else ["admin"]))
    if user_id is None and "admin" not in chosen:
        raise ValueError("a key without --user acts for the platform and needs the admin scope; "
                         "give --user for a write or moderate key")
    if user_id is not None:  # the id rule of every event (NFC, no surrounding space): the key can then write
        clean, reason = id_problem(user_id, None)
        if reason is not None:
            raise RuleError("user", reason)
        user_id = clean
    for label, value in (("rate limit", rate_limit), ("daily quota", daily_quota)):
        if value is not None and value < 0:
            raise ValueError(f"the {label} must be >= 0 (0 = unlimited), got {value}")
    key_id = secrets.token_hex(6)
    secret = f"ts_{key_id}_{secrets.token_urlsafe(32)}"
    with store.engine.begin() as c:
        c.execute(schema.api_keys.insert().values(
            id=key_id, name=name, key_hash=_hash_secret(secret), created_at=time.time(), revoked=False,
            user_id=user_id, scopes=",".join(chosen), rate_limit=rate_limit, daily_quota=daily_quota))
        record_audit(c, key_id=None, user_id=user_id, action="key", kind="create", refs=[key_id, *chosen])
    return key_id, secret


def _principal(row: Any) -> Principal:
    scopes = frozenset(row.scopes.split(",")) if row.scopes else frozenset({"admin"})
    return Principal(str(row.id), str(row.name), row.user_id, scopes, row.rate_limit, row.daily_quota)


def verify_key(store: Store, secret: str) -> Principal | None:
    """The principal of the live key whose secret this is, else None."""
    k = schema.api_keys
    with store.engine.connect() as c:
        row = c.execute(select(k).where(k.c.key_hash == _hash_secret(secret))).first()
    return None if row is None or row.revoked else _principal(row)


def revoke_key(store: Store, key_id: str) -> bool:
    k = schema.api_keys
    with store.engine.begin() as c:
        done = bool(c.execute(k.update().where(k.c.id == key_id).values(revoked=True)).rowcount)
        if done:
            record_audit(c, key_id=None, user_id=None, action="key", kind="revoke", refs=[key_id])
        return done


def list_keys(store: Store) -> list[dict[str, Any]]:
    """Every key's id, name, user, scopes, limits, creation time and state (never the secret or its hash)."""
    k = schema.api_keys
    with store.engine.connect() as c:
        rows = c.execute(select(k).order_by(k.c.created_at)).all()
    out = []
    for row in rows:
        p = _principal(row)
        out.append({"id": p.key_id, "name": p.name, "user_id": p.user_id, "scopes": sorted(p.scopes),
                    "rate_limit": p.rate_limit, "daily_quota": p.daily_quota, "created_at": row.created_at,
                    "revoked": bool(row.revoked)})
    return out


# ---------------------------------------------------------------------------------------------- jobs
def process_owner() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def create_job(store: Store, kind: str, owner: str | None = None) -> str:
    job_id = secrets.token_hex(8)
    with store.engine.begin() as c:
        c.execute(schema.jobs.insert().values(id=job_id, kind=kind, status="queued", created_at=time.time(),
                                              owner=owner or process_owner()))
    return job_id


def update_job(store: Store, job_id: str, status: str, message: str | None = None) -> bool:
    """Move a job to ``status``; a job already in a final state stays there (returns False)."""
    j = schema.jobs
    values: dict[str, Any] = {"status": status, "message": message}
    if status in FINAL_JOB_STATES:
        values["finished_at"] = time.time()
    with store.engine.begin() as c:
        q = j.update().where(j.c.id == job_id, j.c.status.not_in(FINAL_JOB_STATES)).values(**values)
        return bool(c.execute(q).rowcount)


def get_job(store: Store, job_id: str) -> dict[str, Any] | None:
    j = schema.jobs
    with store.engine.connect() as c:
        row = c.execute(select(j).where(j.c.id == job_id)).mappings().first()
    return None if row is None else dict(row)


def list_jobs(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    j = schema.jobs
    with store.engine.connect() as c:
        return [dict(r) for r in c.execute(select(j).order_by(j.c.created_at.desc()).limit(limit)).mappings()]


def cancel_job(store: Store, job_id: str) -> dict[str, Any] | None:
    """Cancel a queued or running job (a running one stops at its next step boundary; its status is
    ``cancelled`` from now on). Returns the job row, None if there is no such job."""
    update_job(store, job_id, "cancelled", "cancelled on request")
    return get_job(store, job_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def interrupt_orphaned_jobs(store: Store) -> int:
    """Mark ``interrupted`` every queued or running job whose server process (on this host) is gone, or
    that names no owner; jobs of live processes and of other hosts are left alone. Returns how many."""
    j = schema.jobs
    host = socket.gethostname()
    with store.engine.begin() as c:
        rows = c.execute(select(j.c.id, j.c.owner).where(j.c.status.in_(("queued", "running")))).all()
        orphans = []
        for job_id, owner in rows:
            if not owner:
                orphans.append(job_id)
                continue
            owner_host, _, pid = owner.rpartition(":")
            if owner_host == host and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                orphans.append(job_id)
        if orphans:
            c.execute(j.update().where(j.c.id.in_(orphans)).values(
                status="interrupted", finished_at=time.time(),
                message="the server process running this job stopped before it finished"))
    return len(orphans)


# ---------------------------------------------------------------------------------------------- audit
def record_audit(conn: Connection, *, key_id: str | None, user_id: str | None, action: str, kind: str,
                 refs: Sequence[Any] = (), n: int | None = None, at: float | None = None) -> None:
    """Append one audit row on ``conn`` (inside the transaction of the write it records)."""
    conn.execute(schema.audit.insert().values(
        at=time.time() if at is None else at, key_id=key_id, user_id=user_id, action=action, kind=kind,
        n=len(refs) if n is None else n, refs=json.dumps(list(refs)) if refs else None))


def list_audit(store: Store, *, key_id: str | None = None, user_id: str | None = None, limit: int = 100,
               before: int | None = None) -> list[dict[str, Any]]:
    """Audit rows, newest first, optionally of one key or user; ``before`` pages by row id."""
    a = schema.audit
    q = select(a).order_by(a.c.id.desc()).limit(limit)
    if key_id is not None:
        q = q.where(a.c.key_id == key_id)
    if user_id is not None:
        q = q.where(a.c.user_id == user_id)
    if before is not None:
        q = q.where(a.c.id < before)
    with store.engine.connect() as c:
        out = []
        for row in c.execute(q).mappings():
            d = dict(row)
            d["refs"] = json.loads(d["refs"]) if d["refs"] else []
            out.append(d)
        return out


# ---------------------------------------------------------------------------------------------- change sequence
def current_seq(store: Store) -> int:
    """The store-wide change sequence now (:func:`truescore.store.changes.current_seq`)."""
    return _current_seq(store.engine)


# ---------------------------------------------------------------------------------------------- rate counters
def add_counter(store: Store, key_id: str, bucket: str, window: int, n: int = 1) -> int:
    """Add ``n`` to the counter of (key, bucket, window) and return its new value (one statement, so
    concurrent server processes add up correctly)."""
    dialect = store.dialect
    sql = text("INSERT INTO rate_counters (key_id, bucket, win, count) VALUES (:k, :b, :w, :n) "
               "ON CONFLICT (key_id, bucket, win) DO UPDATE SET count = rate_counters.count + excluded.count "
               "RETURNING count") if dialect in ("sqlite", "postgresql") else None
    assert sql is not None
    with store.engine.begin() as conn:
        value = int(conn.execute(sql, {"k": key_id, "b": bucket, "w": window, "n": n}).scalar_one())
        if secrets.randbelow(1000) == 0:  # now and then, forget windows older than two days
            rc = schema.rate_counters
            conn.execute(delete(rc).where(rc.c.win < window - 2 * 86_400, rc.c.bucket == bucket))
    return value


# ---------------------------------------------------------------------------------------------- erasure
@dataclass(slots=True)
class ErasureReport:
    """What an erasure removed (counts only) and which items it touched."""

    user_id: str
    reviews: int = 0
    votes: int = 0
    trust: int = 0
    flags: int = 0
    #: moderators' verdicts removed: on the user's reviews, on the user's account, and given by the user
    verdicts: int = 0
    derived: int = 0
    user_row: int = 0
    keys: int = 0
    items: list[str] = field(default_factory=list)
    #: ids of the reviews deleted (for the server's incremental update; not in :meth:`as_dict`)
    review_ids: list[str] = field(default_factory=list)
    #: the change sequence the deletion committed (None: not known)
    seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "reviews": self.reviews, "votes": self.votes, "trust": self.trust,
                "flags": self.flags, "verdicts": self.verdicts, "derived": self.derived, "user_row": self.user_row,
                "keys_revoked": self.keys, "items_touched": len(self.items)}


def _delete_reviews(conn: Connection, review_ids: list[str], report: ErasureReport) -> None:
    r, v, f, rs, vd = schema.reviews, schema.votes, schema.flags, schema.review_scores, schema.verdicts
    for start in range(0, len(review_ids), 900):
        chunk = review_ids[start : start + 900]
        report.votes += conn.execute(delete(v).where(v.c.review_id.in_(chunk))).rowcount
        report.flags += conn.execute(delete(f).where(f.c.review_id.in_(chunk))).rowcount
        report.verdicts += conn.execute(delete(vd).where(vd.c.target == "review", vd.c.target_id.in_(chunk))
                                        ).rowcount
        report.derived += conn.execute(delete(rs).where(rs.c.review_id.in_(chunk))).rowcount
        conn.execute(update(r).where(r.c.supersedes.in_(chunk)).values(supersedes=None))
        report.reviews += conn.execute(delete(r).where(r.c.id.in_(chunk))).rowcount
    report.review_ids.extend(review_ids)


#: what an erased id is replaced by where a record must stay (an audit row's event keys)
ERASED = "(erased)"


def _scrub(value: Any, ids: set[str]) -> Any:
    """``value`` (an audit row's event key: an id, or a list of ids) with every id of ``ids`` replaced."""
    if isinstance(value, list):
        return [_scrub(v, ids) for v in value]
    return ERASED if isinstance(value, str) and value in ids else value


def _like_json(column: Any, value: str) -> Any:
    """``column`` (JSON text) contains the JSON string ``value`` (LIKE with its wildcards escaped)."""
    quoted = json.dumps(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{quoted}%", escape="\\")


def _anonymise_audit(conn: Connection, user_id: str, review_ids: list[str]) -> None:
    """No audit row names the user any more: their own rows lose the user and the event keys; every other
    row's event keys (refs) lose the user's id and the ids of the user's reviews. Rows and counts stay."""
    a = schema.audit
    conn.execute(update(a).where(a.c.user_id == user_id).values(user_id=None, refs=None))
    ids = {user_id, *review_ids}
    needles = [user_id, *review_ids]
    seen: set[int] = set()
    for start in range(0, len(needles), 50):
        cond = or_(*(_like_json(a.c.refs, x) for x in needles[start : start + 50]))
        for row in conn.execute(select(a.c.id, a.c.refs).where(a.c.refs.is_not(None), cond)).all():
            if row.id in seen:
                continue
            seen.add(row.id)
            refs = json.loads(row.refs)
            cleaned = _scrub(refs, ids)
            if cleaned != refs:
                conn.execute(update(a).where(a.c.id == row.id).values(refs=json.dumps(cleaned)))


def _forget_in_rings(conn: Connection, user_id: str) -> None:
    """Drop the user from the members of every stored ring (the table is public on ``/rings``)."""
    g = schema.rings
    for row in conn.execute(select(g.c.ring_id, g.c.members)).all():
        members = json.loads(row.members)
        if user_id in members:
            kept = [m for m in members if m != user_id]
            conn.execute(update(g).where(g.c.ring_id == row.ring_id).values(members=json.dumps(kept),
                                                                            n_members=len(kept)))


def erase_user(store: Store, user_id: str, *, key_id: str | None = None) -> ErasureReport:
    """Delete everything ``user_id`` authored and every id of the user, in one transaction: reviews (with the
    votes, flags, verdicts and text scores on them), votes, trust statements from and to the user, flags, the
    verdicts on the user's account and those the user gave as a moderator, the user's
    reliability row, the user row, the user's API keys (revoked: deleted with their rate counters, so a key
    of the erased user can neither write nor re-create the user), the user among the members of a stored
    ring; the audit keeps its rows and counts with the user's id and review ids replaced by ``(erased)``.
    Derived item rows are recomputed by the next fit (the API queues one; ``truescore erase`` refits)."""
    r, v, t, f = schema.reviews, schema.votes, schema.trust, schema.flags
    k, rc = schema.api_keys, schema.rate_counters
    report = ErasureReport(user_id)
    with store.transaction() as conn:
        rows = conn.execute(select(r.c.id, r.c.item_id).where(r.c.user_id == user_id)).all()
        report.items = sorted({row.item_id for row in rows})
        review_ids = [row.id for row in rows]
        _delete_reviews(conn, review_ids, report)
        report.votes += conn.execute(delete(v).where(v.c.voter_id == user_id)).rowcount
        report.flags += conn.execute(delete(f).where(f.c.flagger_id == user_id)).rowcount
        vd = schema.verdicts
        report.verdicts += conn.execute(delete(vd).where(or_(and_(vd.c.target == "user", vd.c.target_id == user_id),
                                                             vd.c.moderator_id == user_id))).rowcount
        report.trust += conn.execute(delete(t).where(or_(t.c.truster_id == user_id, t.c.trustee_id == user_id))
                                     ).rowcount
        ur = schema.user_reliability
        report.derived += conn.execute(delete(ur).where(ur.c.user_id == user_id)).rowcount
        report.user_row = conn.execute(delete(schema.users).where(schema.users.c.id == user_id)).rowcount
        keys = list(conn.execute(select(k.c.id).where(k.c.user_id == user_id)).scalars())
        if keys:
            conn.execute(delete(rc).where(rc.c.key_id.in_(keys)))
            report.keys = conn.execute(delete(k).where(k.c.id.in_(keys))).rowcount
        _forget_in_rings(conn, user_id)
        _anonymise_audit(conn, user_id, review_ids)
        store.mark_changed(conn)
        n = report.reviews + report.votes + report.trust + report.flags + report.verdicts
        record_audit(conn, key_id=key_id if key_id not in keys else None, user_id=None, action="erase", kind="user",
                     n=n)
    report.seq = store.last_seq
    return report


def delete_review(store: Store, review_id: str, *, key_id: str | None = None) -> ErasureReport | None:
    """Delete a review together with its author's earlier reviews of the same item (the history it
    replaced), and the votes, flags, verdicts and text scores on them. None if there is no such review."""
    r = schema.reviews
    with store.transaction() as conn:
        row = conn.execute(select(r.c.user_id, r.c.item_id).where(r.c.id == review_id)).first()
        if row is None:
            return None
        report = ErasureReport(row.user_id, items=[row.item_id])
        ids = list(conn.execute(select(r.c.id).where(r.c.user_id == row.user_id, r.c.item_id == row.item_id)
                                ).scalars())
        _delete_reviews(conn, ids, report)
        store.mark_changed(conn)
        record_audit(conn, key_id=key_id, user_id=row.user_id, action="delete", kind="reviews", refs=[review_id],
                     n=report.reviews)
    report.seq = store.last_seq
    return report


def count_rows(store: Store, table: str) -> int:
    with store.engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(schema.metadata.tables[table])).scalar_one())
