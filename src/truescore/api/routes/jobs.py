"""Background jobs: refit the engines (POST /fit), score review texts (POST /score), and their status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from truescore.api.deps import AdminKey, StateDep, read_access
from truescore.api.errors import ERROR_RESPONSES, error_responses
from truescore.api.jobs import EngineUnavailable, JobRunner
from truescore.api.params import JobId
from truescore.api.schemas import JobPublic
from truescore.api.service_schemas import JobsPublic
from truescore.store import service

router = APIRouter(tags=["jobs"])


def _start(request: Request, response: Response, kind: str) -> Any:
    runner: JobRunner = request.app.state.jobs
    try:
        job, created = runner.submit(kind)
    except EngineUnavailable as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/jobs/{job['id']}"
    if not created:
        job = {**job, "message": job.get("message") or "a job of this kind is already queued or running"}
    return job


@router.post("/fit", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             responses=error_responses(401, 403, 409, 429, 503))
def start_fit(request: Request, response: Response, key: AdminKey) -> Any:
    """Fit the reliability engine on the whole store and rank the products (writes item_quality,
    user_reliability, product_rankings). Needs an ``admin`` key. Returns the job; poll GET /jobs/{id}."""
    return _start(request, response, "fit")


@router.post("/score", response_model=JobPublic, status_code=status.HTTP_202_ACCEPTED,
             responses=error_responses(401, 403, 409, 429, 503))
def start_score(request: Request, response: Response, key: AdminKey) -> Any:
    """Score every review with the text engine (writes review_scores). Returns the job."""
    return _start(request, response, "score")


@router.get("/jobs/{job_id}", response_model=JobPublic, dependencies=[Depends(read_access)],
            responses=ERROR_RESPONSES)
def read_job(state: StateDep, job_id: JobId) -> Any:
    """A job's status: queued, running, done, failed, cancelled or interrupted, with its message."""
    job = service.get_job(state.store, job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"job {job_id!r} not found")
    return job


@router.get("/jobs", response_model=JobsPublic, responses=error_responses(401, 403, 422, 429, 503))
def list_jobs(state: StateDep, key: AdminKey) -> Any:
    """The 50 latest jobs, newest first (admin)."""
    return {"data": service.list_jobs(state.store)}


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic, responses=ERROR_RESPONSES)
def cancel_job(state: StateDep, key: AdminKey, job_id: JobId) -> Any:
    """Cancel a queued or running job (admin): a queued job never starts; a running one is marked
    ``cancelled`` at once (the computation under way finishes in the background, but the job is never
    reported done). A finished job is returned unchanged."""
    job = service.cancel_job(state.store, job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"job {job_id!r} not found")
    return job
