"""Background jobs started by ``POST /fit`` and ``POST /score``: one worker thread per server process.

A job is a row of the store's ``jobs`` table (``queued`` -> ``running`` -> ``done`` | ``failed``, with a
message), so its status survives the request and can be read with ``GET /jobs/{id}`` from any process.
``POST /jobs/{id}/cancel`` (or ``truescore jobs cancel``) makes it ``cancelled``: a queued job never
starts, a running one stops at its next step boundary (a fit: after the reliability fit, before the
ranking is computed and written; a scoring: after the text scores, before the integrity engine), and
its status stays ``cancelled``. At start-up, jobs left ``queued`` or ``running`` by a server process of
this host that is gone become ``interrupted`` (:func:`truescore.store.service.interrupt_orphaned_jobs`).
Each kind calls the application layer's jobs (:mod:`truescore.jobs`); an unknown kind is refused with
409 (Conflict) before a job is created, and a scoring whose text models cannot be loaded fails saying why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from truescore.api.state import ApiState
from truescore.errors import TruescoreError
from truescore.jobs import fit_summary, rank_store, run_fit, run_integrity, score_text
from truescore.store import service

__all__ = ["JOB_KINDS", "EngineUnavailable", "JobCancelled", "JobRunner", "job_available"]

log = logging.getLogger("truescore.api.jobs")


class EngineUnavailable(TruescoreError, RuntimeError):
    """The engine a job needs cannot run here (its models cannot be loaded)."""


class JobCancelled(TruescoreError, RuntimeError):
    """The job was cancelled; raised at a step boundary by the job's ``checkpoint``."""


Checkpoint = Callable[[], None]


def _fit(state: ApiState, checkpoint: Checkpoint) -> str:
    """Reliability engine (seed 000) on the whole store, then the fused ranking (issue 6) from that fit, with
    the integrity evidence recomputed when events changed since `truescore score`; writes item_quality,
    user_reliability and product_rankings."""
    report = run_fit(state.store, settings=state.settings)
    checkpoint()
    ranking = rank_store(state.store, settings=state.settings, reliability=report.result, refit=True, write=True)
    return f"{fit_summary(report)}; ranked {len(ranking.products)} products"


def _score(state: ApiState, checkpoint: Checkpoint) -> str:
    """Text engine (seed 004): score every review and write review_scores; then the integrity engine."""
    try:
        scored = score_text(state.store, settings=state.settings)
    except (ImportError, OSError) as exc:
        raise EngineUnavailable(f"the text engine's models cannot be loaded: {exc}") from None
    checkpoint()
    integrity = run_integrity(state.store, settings=state.settings)
    return (f"scored {int(scored):,} reviews; suspicion of {integrity.reviews_written:,} reviews and "
            f"{integrity.accounts_written:,} accounts, {integrity.rings_written} rings")


#: kind -> the job's function
JOB_KINDS: dict[str, Callable[[ApiState, Checkpoint], str]] = {"fit": _fit, "score": _score}


def job_available(kind: str) -> str | None:
    """None if ``kind`` is a job this server runs, else why not."""
    return None if kind in JOB_KINDS else f"unknown job kind {kind!r}; kinds: {', '.join(JOB_KINDS)}"


class JobRunner:
    """Runs jobs one at a time in a worker thread; at most one queued or running job per kind."""

    def __init__(self, state: ApiState) -> None:
        self.state = state
        from truescore.store import service

        try:
            n = service.interrupt_orphaned_jobs(state.store)
            if n:
                log.warning("%d job(s) of a stopped server marked interrupted", n)
        except Exception:  # the store may be down at start-up; /health says so
            log.exception("could not check for interrupted jobs")
        self._pool: ThreadPoolExecutor | None = None
        self._active: dict[str, str] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str) -> tuple[dict[str, Any], bool]:
        """Start a job of ``kind``; returns (job row, created). An active job of the kind is returned
        instead of starting another one."""
        reason = job_available(kind)
        if reason is not None:
            raise EngineUnavailable(reason)
        with self._lock:
            active = self._active.get(kind)
            if active is not None:
                row = service.get_job(self.state.store, active)
                if row is not None and row["status"] in ("queued", "running"):
                    return row, False
            job_id = service.create_job(self.state.store, kind)
            self._active[kind] = job_id
            if self._pool is None:  # first job, or the first since a shutdown (the app can be restarted)
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="truescore-job")
            self._pool.submit(self._run, job_id, kind)
        row = service.get_job(self.state.store, job_id)
        assert row is not None
        return row, True

    def _run(self, job_id: str, kind: str) -> None:
        from truescore.store import service

        store = self.state.store
        try:
            if not service.update_job(store, job_id, "running"):  # cancelled while queued
                log.info("job %s (%s) was cancelled before it started", job_id, kind)
                return
            def checkpoint() -> None:
                row = service.get_job(store, job_id)
                if row is not None and row["status"] == "cancelled":
                    raise JobCancelled(job_id)

            message = JOB_KINDS[kind](self.state, checkpoint)
            if kind == "fit":
                self.state.refit_online()
            if not service.update_job(store, job_id, "done", message):
                log.info("job %s (%s) finished after it was cancelled: %s", job_id, kind, message)
            log.info("job %s (%s) done: %s", job_id, kind, message)
        except JobCancelled:
            log.info("job %s (%s) stopped at a step boundary: it was cancelled", job_id, kind)
        except Exception as exc:  # a failed job is reported through its status, never raised into the server
            log.exception("job %s (%s) failed", job_id, kind)
            service.update_job(store, job_id, "failed", f"{exc.__class__.__name__}: {exc}")
        finally:
            self.state.derived_changed()
            with self._lock:
                if self._active.get(kind) == job_id:
                    del self._active[kind]

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs; jobs still queued are marked failed. A running job finishes in the background,
        or before this returns with ``wait=True``."""
        with self._lock:
            pool, self._pool = self._pool, None
            active, self._active = dict(self._active), {}
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)
        for job_id in active.values():
            row = service.get_job(self.state.store, job_id)
            if row is not None and row["status"] == "queued":
                service.update_job(self.state.store, job_id, "failed", "the server shut down before the job started")
