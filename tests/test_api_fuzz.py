"""Fuzzing: schemathesis generates requests from the app's own OpenAPI document (in-process ASGI) for every
operation, with a valid API key so that writes get past authentication, and checks that no answer is a
5xx, that every status code and content type is documented, and that every body matches its schema.

Each operation is fuzzed with schema-valid data (positive) and with data that breaks the schema
(negative). A bounded number of examples per operation and mode keeps the file under a minute; the
example database is off so that runs do not depend on earlier ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from truescore.api import create_app
from truescore.api.routes import api_router
from truescore.config import load_settings
from truescore.store import Store, service

EXAMPLES_PER_OPERATION = 30
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every documented operation (from the routers alone: no store needed)."""
    app = FastAPI()
    app.include_router(api_router)
    return sorted((m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops)


OPERATIONS = _operations()
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """The app's schema (loaded in-process over ASGI) and a valid API key, over the endpoint tests' world."""
    from test_api_endpoints import build_world

    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}")
    build_world(store)
    _, secret = service.create_key(store, "fuzz")
    # no rate limit or quota: the fuzzer sends thousands of requests with one key (429 is documented anyway)
    app = create_app(store, load_settings(api={"refresh_seconds": 0, "max_batch": 50, "rate_limit_requests": 0,
                                               "daily_event_quota": 0}))
    yield schemathesis.openapi.from_asgi("/openapi.json", app), secret
    app.state.jobs.shutdown(wait=True)
    store.close()


@pytest.mark.slow  # property-based fuzzing of every operation (~1 min)
def test_every_operation_is_fuzzed(fuzz_target: tuple[Any, str]) -> None:
    schema, _ = fuzz_target
    labels = {result.ok().label for result in schema.get_all_operations()}
    assert labels == {f"{m} {p}" for m, p in OPERATIONS}


@pytest.mark.slow  # property-based fuzzing of every operation (~1 min)
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error_and_no_schema_violation(fuzz_target: tuple[Any, str], method: str, path: str,
                                                  mode: GenerationMode) -> None:
    schema, secret = fuzz_target
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)

    run()
