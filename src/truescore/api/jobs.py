"""Background jobs started by ``POST /fit`` and ``POST /score``: one worker thread per server process.

A job is a row of the store's ``jobs`` table (``queued`` -> ``running`` -> ``done`` | ``failed``, with a
message), so its status survives the request and can be read with ``GET /jobs/{id}`` from any process.
``POST /jobs/{id}/cancel`` (or ``truescore jobs cancel``) makes it ``cancelled``: a queued job never
starts, a running one stops at its next step boundary (a fit: after the reliability fit, before the
ranking is computed and written; a scoring: after the text scores, before the integrity engine), and
its status stays ``cancelled``. At
start-up, jobs left ``queued`` or ``running`` by a server process of this host that is gone become
``interrupted`` (:func:`truescore.store.service.interrupt_orphaned_jobs`).
Each kind calls one library function; a kind whose engine is not part of this build is refused with
409 (Conflict) before a job is created.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from truescore.api.state import ApiState

__all__ = ["JOB_KINDS", "EngineUnavailable", "JobCancelled", "JobRunner", "job_available"]

log = logging.getLogger("truescore.api.jobs")


class EngineUnavailable(RuntimeError):
    """The engine a job needs is not part of this build."""


class JobCancelled(RuntimeError):
    """The job was cancelled; raised at a step boundary by the job's ``checkpoint``."""


Checkpoint = Callable[[], None]


def _fit(state: ApiState, checkpoint: Checkpoint) -> str:
    """Reliability engine (seed 000) on the whole store, then the fused ranking (issue 6) from that fit;
    writes item_quality, user_reliability and product_rankings."""
    from truescore.ranking import rank_store
    from truescore.reliability.report import run_fit
    from truescore.reliability.report import summary as fit_summary

    report = run_fit(state.store, settings=state.settings)
    checkpoint()
    ranking = rank_store(state.store, settings=state.settings, reliability=report.result, write=True)
    return f"{fit_summary(report)}; ranked {len(ranking.products)} products"


def _score(state: ApiState, checkpoint: Checkpoint) -> str:
    """Text engine (seed 004): score every review and write review_scores."""
    try:
        from truescore.text import score_store
    except ImportError as exc:
        raise EngineUnavailable(f"the text engine (truescore.text.score_store) is not in this build: {exc}") from None
    scored = score_store(state.store, settings=state.settings)
    checkpoint()
    from truescore.integrity.runner import run_integrity  # issue 11: suspicion and rings, as `truescore score`

    integrity = run_integrity(state.store, settings=state.settings)
    return (f"scored {int(scored):,} reviews; suspicion of {integrity.reviews_written:,} reviews and "
            f"{integrity.accounts_written:,} accounts, {integrity.rings_written} rings")


#: kind -> (function, the import that must succeed for the kind to be offered)
JOB_KINDS: dict[str, tuple[Callable[[ApiState, Checkpoint], str], str]] = {
    "fit": (_fit, "truescore.ranking"),
    "score": (_score, "truescore.text"),
}


def job_available(kind: str) -> str | None:
    """None if ``kind`` can run in this build, else the reason it cannot."""
    import importlib

    if kind not in JOB_KINDS:
        return f"unknown job kind {kind!r}"
    module = JOB_KINDS[kind][1]
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        return f"{module} is not part of this build ({exc})"
    if kind == "score" and not hasattr(mod, "score_store"):
        return "the text engine's score_store is not part of this build yet"
    return None


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
                row = self.state.store.get_job(active)
                if row is not None and row["status"] in ("queued", "running"):
                    return row, False
            job_id = self.state.store.create_job(kind)
            self._active[kind] = job_id
            if self._pool is None:  # first job, or the first since a shutdown (the app can be restarted)
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="truescore-job")
            self._pool.submit(self._run, job_id, kind)
        row = self.state.store.get_job(job_id)
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

            message = JOB_KINDS[kind][0](self.state, checkpoint)
            if kind == "fit":
                self.state.refit_online()
            if not service.update_job(store, job_id, "done", message):
                log.info("job %s (%s) finished after it was cancelled: %s", job_id, kind, message)
            log.info("job %s (%s) done: %s", job_id, kind, message)
        except JobCancelled:
            log.info("job %s (%s) stopped at a step boundary: it was cancelled", job_id, kind)
        except Exception as exc:  # a failed job is reported through its status, never raised into the server
            log.exception("job %s (%s) failed", job_id, kind)
            store.update_job(job_id, "failed", f"{exc.__class__.__name__}: {exc}")
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
            row = self.state.store.get_job(job_id)
            if row is not None and row["status"] == "queued":
                self.state.store.update_job(job_id, "failed", "the server shut down before the job started")
