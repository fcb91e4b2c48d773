"""Dependencies of the routes, as ``Annotated`` aliases so handler signatures read plainly.

The trivial ones are ``async`` so that FastAPI does not hop to a worker thread to run them; the key
check reads the database and runs in the thread pool.

- :data:`StateDep`: the process's :class:`~truescore.api.state.ApiState` (store, settings, cached engines);
- :data:`StoreDep`: its store;
- :data:`WriteKey`: the :class:`~truescore.store.service.Principal` (key, user, scopes) of the API key in
  ``Authorization: Bearer <key>``; 401 without a key, 403 with a key that is unknown or revoked (keys are
  stored hashed; create one with ``truescore keys create``);
- :data:`AdminKey`: the same, with the ``admin`` scope (else 403);
- :data:`ReadAccess`: the same check on reads when ``api.require_key_for_reads`` is set, else nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from truescore.api.authz import require_scope
from truescore.api.state import ApiState
from truescore.store import Store, StoreError, service
from truescore.store.service import Principal

__all__ = ["AdminKey", "ReadAccess", "StateDep", "StoreDep", "WriteKey", "get_state", "read_access", "require_admin",
           "require_key"]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `truescore keys create`, sent as `Authorization: Bearer <key>`.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def get_state(request: Request) -> ApiState:
    """The process's state; a store found gone or replaced (:attr:`ApiState.store_problem`, checked by the
    refresher and by /health) answers 503 instead of serving cached numbers of a store that is no more."""
    state: ApiState = request.app.state.truescore
    if state.store_problem is not None:  # look again (the store may be back), off the event loop
        problem = await run_in_threadpool(state.check_identity)
        if problem is not None:
            raise StoreError(problem)
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def get_store(state: StateDep) -> Store:
    return state.store


StoreDep = Annotated[Store, Depends(get_store)]


def require_key(request: Request, state: StateDep, credentials: Credentials) -> Principal:
    """The principal (key, user, scopes) of a live API key, else 401 (no key) or 403 (bad or revoked key).

    The :class:`~truescore.api.limits.Gate` middleware has usually checked the key already, before the
    body was read, and left the principal in the request state; otherwise it is checked here."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal):
        return principal
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="this endpoint needs an API key: send 'Authorization: Bearer <key>' "
            "(create one with `truescore keys create`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = service.verify_key(state.store, credentials.credentials)
    if found is None:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="the API key is not valid or was revoked")
    return found


WriteKey = Annotated[Principal, Depends(require_key)]


def require_admin(principal: WriteKey) -> Principal:
    """A key with the ``admin`` scope, else 403 naming the rule."""
    require_scope(principal, "admin", "this endpoint")
    return principal


AdminKey = Annotated[Principal, Depends(require_admin)]


async def read_access(request: Request, state: StateDep, credentials: Credentials) -> Principal | None:
    """Reads are open unless ``api.require_key_for_reads``; then they need a key like writes."""
    if not state.settings.api.require_key_for_reads:
        return None
    return await run_in_threadpool(require_key, request, state, credentials)


ReadAccess = Annotated[Principal | None, Depends(read_access)]
