"""Shared fixtures: isolated configuration, and a store on SQLite and (when available) PostgreSQL.

PostgreSQL tests use the server named by ``TRUESCORE_TEST_DATABASE_URL`` (``.ci/run`` sets it), else
the local server at ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` whenever it answers, so a
plain ``make test`` on a machine with the services runs what CI runs. Each test gets a schema of its own
that is dropped afterwards. Without a reachable server they skip and say why; with
``TRUESCORE_REQUIRE_POSTGRES=1`` (set in CI) an unreachable server is an error instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import truescore.config as config_module
from truescore.store import Store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test starts from the defaults: no user TOML, no TRUESCORE_* variables but the data dir."""
    for key in list(os.environ):
        if key.startswith("TRUESCORE_") and key not in ("TRUESCORE_TEST_DATABASE_URL", "TRUESCORE_DATA_DIR",
                                                         "TRUESCORE_REQUIRE_POSTGRES", "TRUESCORE_REQUIRE_BROWSER"):
            monkeypatch.delenv(key)
    monkeypatch.setattr(config_module, "_cached", None)
    yield
    config_module._cached = None


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the ``truescore`` command line in-process: (exit code, stdout, stderr)."""
    from truescore.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def data_dir() -> Path:
    return Path(os.environ.get("TRUESCORE_DATA_DIR", REPO.parent / "shared" / "data"))


def require_data(*parts: str) -> Path:
    """Path inside the reference data folder, or skip the test saying why."""
    path = data_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found: the reference data sets live in ../shared/data (or TRUESCORE_DATA_DIR)")
    return path


#: tried when TRUESCORE_TEST_DATABASE_URL is not set: the local server's always-present database
LOCAL_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_local_answer: dict[str, str | None] = {}


def _local_postgres() -> str | None:
    """None if the local server answers (asked once per session, 2 s timeout), else why not."""
    if "reason" not in _local_answer:
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import SQLAlchemyError

        engine = create_engine(LOCAL_POSTGRES, connect_args={"connect_timeout": 2})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            _local_answer["reason"] = None
        except SQLAlchemyError as exc:
            _local_answer["reason"] = str(getattr(exc, "orig", exc)).splitlines()[0]
        finally:
            engine.dispose()
    return _local_answer["reason"]


def _postgres_url() -> str:
    url = os.environ.get("TRUESCORE_TEST_DATABASE_URL")
    if url:
        return url
    reason = _local_postgres()
    if reason is not None:
        if os.environ.get("TRUESCORE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required but {LOCAL_POSTGRES} does not answer: {reason}")
        pytest.skip(f"no PostgreSQL: TRUESCORE_TEST_DATABASE_URL is not set and the local server "
                    f"{LOCAL_POSTGRES} does not answer ({reason})")
    return LOCAL_POSTGRES


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    url = _postgres_url()
    schema = f"ts_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as exc:
        engine.dispose()
        if os.environ.get("TRUESCORE_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL server at {url} is not reachable ({exc.orig}); start it to run these tests")
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty store, on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = Store.open(store_url)
    yield s
    s.close()


# ------------------------------------------------------------------------------------------------ Spark
def spark_unavailable() -> str | None:
    """Why the Spark tests cannot run here (pyspark or Java 17 missing), or None."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install '.[spark]')"
    from truescore.spark.session import java_problem

    return java_problem()


def skip_without_spark() -> None:
    """Call at module level: skip the module, saying why, when Spark cannot run -- unless
    ``TRUESCORE_REQUIRE_SPARK=1`` (set by .ci/run), where the tests run and fail instead."""
    why = spark_unavailable()
    if why and os.environ.get("TRUESCORE_REQUIRE_SPARK") != "1":
        pytest.skip(why, allow_module_level=True)


@pytest.fixture(scope="session")
def _spark_session() -> Iterator[object]:
    """One local[2] SparkSession for every Spark test module (its JVM and Python workers start once)."""
    from truescore.spark.session import get_session

    session = get_session("local[2]", shuffle_partitions=4, app_name="truescore-tests")
    yield session
    session.stop()


@pytest.fixture()
def spark(_spark_session: object) -> object:
    """The shared session with 4 shuffle partitions (a test may change them; the next one starts at 4)."""
    _spark_session.conf.set("spark.sql.shuffle.partitions", "4")  # type: ignore[attr-defined]
    return _spark_session


@pytest.fixture
def admin_key(store: Store) -> str:
    """A platform (admin) key of the ``store`` fixture's store."""
    from truescore.store import service

    return service.create_key(store, "tests")[1]


@pytest.fixture
def client(store: Store, admin_key: str) -> Iterator[object]:
    """The API over the ``store`` fixture (no refresher, no summary TTL); a module's own ``client`` wins."""
    from fastapi.testclient import TestClient

    from truescore.api import create_app
    from truescore.config import load_settings

    with TestClient(create_app(store, load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0}))) as c:
        yield c
