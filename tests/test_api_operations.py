"""Issue 10, part A: operations that fail safe (break 10 and the --db / docs-CDN / headers / CSV export /
serving-at parts of 14).

- a database that goes away answers 503 with one line on every endpoint, ``/health`` included, and the
  app serves again once it is back; a read-only store answers writes 503; ``keys create`` prints one
  readable line without SQL;
- every response carries the security headers; ``/docs`` loads nothing from another origin and runs
  under the Content-Security-Policy, as does the web page;
- CSV exports neutralise formula cells;
- ``serve`` refuses a SQLite file that does not exist unless ``--create``, and says "serving at" only
  once it serves (a taken port: an error line, exit 1).
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from truescore.api import create_app
from truescore.config import Settings, load_settings
from truescore.domain import Item, Review, TrustEdge, User, UserRole
from truescore.store import Store, service
from truescore.store.export import neutralise_formulas

from conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
REVIEW = {"id": "r-new", "item_id": "i26", "user_id": "u30", "rating": 4}
HYPERLINK = '=HYPERLINK("http://evil.example","click")'


def settings() -> Settings:
    return load_settings(api={"refresh_seconds": 0, "summary_ttl_seconds": 0})


def build(store: Store) -> None:
    store.add_users([User("operator", role=UserRole.OPERATOR), *(User(f"u{k}") for k in range(1, 6))])
    store.add_items([Item("i26", "reviews.public.home", HYPERLINK)])
    store.add_reviews([Review(f"r{k}", "i26", f"u{k}", float(k), title=t, text=x)
                       for k, t, x in [(1, HYPERLINK, "+1 great"), (2, "-2 bad", "@SUM(A1:A9)"),
                                       (3, "\tTabbed", "\rCR"), (4, "plain", "fine - really")]])
    store.add_reviews([Review("neg", "i26", "u5", -5.0, min_rating=-10.0, max_rating=10.0, title="neg")])
    store.add_trust([TrustEdge("operator", f"u{k}", "reviews.public", 0.9) for k in range(1, 5)])


@pytest.fixture
def world(store_url: str) -> str:
    with Store.open(store_url) as s:
        build(s)
    return store_url


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _one_line(detail: str) -> None:
    assert "\n" not in detail and "[SQL" not in detail and "VALUES" not in detail and len(detail) < 400, detail


# ------------------------------------------------------------------------------------------ database down: 503
class TcpProxy:
    """A TCP forwarder to PostgreSQL that can be taken down (every connection cut, new ones refused) and
    brought back on the same port: the database 'goes away' without touching the shared server."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._socks: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def up(self) -> None:
        lst = socket.socket()
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", self.port))
        lst.listen(32)
        self._listener = lst
        threading.Thread(target=self._accept, args=(lst,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, []
            lst, self._listener = self._listener, None
        for s in [*socks, *([lst] if lst else [])]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, lst: socket.socket) -> None:
        while True:
            try:
                client, _ = lst.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()


@pytest.fixture
def proxied_pg(pg_url: str) -> Iterator[tuple[str, TcpProxy]]:
    url = make_url(pg_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.up()
    try:
        yield url.set(port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        proxy.down()


def test_database_down_is_503_everywhere_and_the_app_recovers(proxied_pg: tuple[str, TcpProxy]) -> None:
    url, proxy = proxied_pg
    with Store.open(url) as s:
        build(s)
        key = service.create_key(s, "tests")[1]
    with Store.open(url) as store, TestClient(create_app(store, settings())) as client:
        assert client.get("/health").status_code == 200
        proxy.down()
        for method, path, body in [("GET", "/health", None), ("GET", "/items/i26/reviews", None),
                                   ("GET", "/items", None), ("POST", "/reviews", REVIEW),
                                   ("POST", "/votes", {"review_id": "r1", "voter_id": "u2", "helpful": True})]:
            r = client.request(method, path, json=body, headers=auth(key))
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.json()["detail"].startswith("the store cannot be used: "), r.text
            _one_line(r.json()["detail"])
            assert r.headers["retry-after"] == "5"
        proxy.up()
        assert client.get("/health").status_code == 200
        assert client.get("/items/i26/reviews").json()["count"] == 5
        assert client.post("/reviews", json=REVIEW, headers=auth(key)).status_code == 201
    with Store.open(url) as store, TestClient(create_app(store, settings())) as again:
        assert again.get("/items/i26/reviews").json()["count"] == 6


def _read_only(url: str) -> str:
    """The same store opened read-only: SQLite in mode=ro, PostgreSQL with read-only transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite:///file:{parsed.database}?mode=ro&uri=true"
    options = parsed.query.get("options", "")
    return parsed.update_query_dict({"options": f"{options} -cdefault_transaction_read_only=on".strip()}) \
        .render_as_string(hide_password=False)


def test_read_only_store_answers_writes_503_and_reads_200(world: str) -> None:
    with Store.open(world) as s:
        key = service.create_key(s, "tests")[1]
        counts = s.counts()
    with Store.open(_read_only(world)) as store, TestClient(create_app(store, settings())) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/items/i26/reviews").json()["count"] == 5
        r = client.post("/reviews", json=REVIEW, headers=auth(key))
        assert r.status_code == 503, r.text
        assert "read" in r.json()["detail"].lower() and "only" in r.json()["detail"].lower()
        _one_line(r.json()["detail"])
    with Store.open(world) as s:
        assert s.counts() == counts


def test_keys_create_on_a_read_only_or_unreachable_store_is_one_line(world: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["keys", "create", "--name", "x", "--db", _read_only(world)], capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: the store cannot be used:") and "read" in err.lower(), err
    assert len(err.strip().splitlines()) == 1 and "[SQL" not in err and "VALUES" not in err
    if world.startswith("postgresql"):
        dead = make_url(world).set(port=1).render_as_string(hide_password=False)
        code, _, err = run_cli(["keys", "create", "--db", dead], capsys)
        assert code == 1 and len(err.strip().splitlines()) == 1 and "cannot open" in err, err


# ------------------------------------------------------------------------------------------ headers and /docs
@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with Store.open(f"sqlite:///{tmp_path / 'h.db'}") as s:
        build(s)
        with TestClient(create_app(s, settings())) as c:
            yield c


def test_every_response_has_the_security_headers(client: TestClient) -> None:
    for method, path in [("GET", "/"), ("GET", "/health"), ("GET", "/items/nope"), ("GET", "/docs"),
                         ("GET", "/static/app.js"), ("GET", "/openapi.json"), ("POST", "/reviews"),
                         ("GET", "/items?limit=0"), ("GET", "/docs-assets/swagger-ui.css")]:
        r = client.request(method, path, json=REVIEW if method == "POST" else None)
        assert r.status_code in (200, 401, 404, 422), (path, r.status_code)
        csp = r.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert "script-src 'self'" in csp and "unsafe-eval" not in csp, path
        assert r.headers.get("x-content-type-options") == "nosniff", path
        assert r.headers.get("x-frame-options") == "DENY", path
        assert r.headers.get("referrer-policy") == "no-referrer", path


def test_docs_load_nothing_from_another_origin(client: TestClient) -> None:
    html = client.get("/docs").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "<script>" not in html  # no inline script: the CSP refuses them
    for s in sources:
        assert client.get(s).status_code == 200, s
    assert "SwaggerUIBundle" in client.get("/docs-assets/swagger-ui-bundle.js").text
    csp = client.get("/docs").headers["content-security-policy"]
    assert "http" not in csp  # no CDN host allowed either
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.browser
@pytest.mark.slow
def test_page_and_docs_run_under_the_csp_in_a_browser(tmp_path: Path) -> None:
    """Chromium, without bypassing the CSP: Swagger UI renders the API and the web page lists products,
    with no CSP violation and no request to another origin."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium to run the browser tests")
    import uvicorn
    from playwright.sync_api import sync_playwright

    store = Store.open(f"sqlite:///{tmp_path / 'b.db'}")
    build(store)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(store, settings()), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    console: list[str] = []
    foreign: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                        args=["--headless", "--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                page.on("console", lambda m: console.append(m.text))
                page.on("pageerror", lambda e: console.append(str(e)))
                page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(
                    (f"http://127.0.0.1:{port}", "data:")) else None)
                page.goto(f"http://127.0.0.1:{port}/docs")
                page.locator(".swagger-ui .info .title").wait_for(timeout=30_000)
                assert "TrueScore API" in page.locator(".swagger-ui .info .title").inner_text()
                page.locator("#operations-service-health_health_get").wait_for(timeout=10_000)
                page.goto(f"http://127.0.0.1:{port}/")
                page.locator("#items tbody tr").first.wait_for(timeout=30_000)
            finally:
                browser.close()
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        store.close()
    violations = [m for m in console if "Content Security Policy" in m or "Refused to" in m]
    assert violations == [], violations
    assert foreign == [], foreign


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------ CSV export
def test_csv_export_neutralises_formula_cells(world: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "reviews.csv"
    code, _, err = run_cli(["export", "reviews", "--out", str(out), "--db", world], capsys)
    assert code == 0, err
    with out.open(newline="", encoding="utf-8") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    assert rows["r1"]["title"] == "'" + HYPERLINK and rows["r1"]["text"] == "'+1 great"
    assert rows["r2"]["title"] == "'-2 bad" and rows["r2"]["text"] == "'@SUM(A1:A9)"
    assert rows["r3"]["title"] == "'\tTabbed" and rows["r3"]["text"] == "'\rCR"
    assert rows["r4"]["title"] == "plain" and rows["r4"]["text"] == "fine - really"
    assert float(rows["neg"]["rating"]) == -5.0  # numbers are not text: untouched
    for cell in (c for r in rows.values() for c in r.values()):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or _is_number(cell), cell
    items = tmp_path / "items.csv"
    assert run_cli(["export", "items", "--out", str(items), "--db", world], capsys)[0] == 0
    assert "'" + HYPERLINK in items.read_text(encoding="utf-8").replace('""', '"')
    jl = tmp_path / "reviews.jsonl"  # JSON Lines keeps the exact text, for round trips
    assert run_cli(["export", "reviews", "--out", str(jl), "--db", world], capsys)[0] == 0
    assert '"title":"=HYPERLINK' in jl.read_text(encoding="utf-8")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_neutralise_formulas_leaves_other_cells() -> None:
    import pandas as pd

    df = pd.DataFrame({"a": ["=1+1", "ok", None, "-x", "a=b"], "n": [-1.0, 2.0, 3.0, 4.0, 5.0]})
    out = neutralise_formulas(df)
    assert out["a"].fillna("<missing>").tolist() == ["'=1+1", "ok", "<missing>", "'-x", "a=b"]
    assert out["n"].tolist() == [-1.0, 2.0, 3.0, 4.0, 5.0]
    assert df["a"].iloc[0] == "=1+1"  # the input is not changed


# ------------------------------------------------------------------------------------------ serve
def test_serve_refuses_a_missing_sqlite_file_unless_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import truescore.api

    calls: list[Any] = []
    monkeypatch.setattr(truescore.api, "serve", lambda *a, **k: calls.append(a))
    typo = tmp_path / "trusecore.db"
    code, out, err = run_cli(["serve", "--db", f"sqlite:///{typo}"], capsys)
    assert code == 1 and "--create" in err and "check --db" in err and "serving" not in out
    assert not typo.exists() and calls == []
    code, _, err = run_cli(["serve", "--create", "--db", f"sqlite:///{typo}"], capsys)
    assert code == 0, err
    assert calls == [(f"sqlite:///{typo}", None, None)]
    existing = tmp_path / "real.db"
    Store.open(f"sqlite:///{existing}").close()
    assert run_cli(["serve", "--db", f"sqlite:///{existing}"], capsys)[0] == 0


def _serve_process(db: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    env = {k: v for k, v in env.items() if not k.startswith("TRUESCORE_") or k == "TRUESCORE_DATA_DIR"}
    return subprocess.Popen([sys.executable, "-c", "from truescore.cli import main; main()", "serve", "--db",
                             f"sqlite:///{db}", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=db.parent)


@pytest.mark.slow
def test_serving_at_is_printed_only_once_it_serves(tmp_path: Path) -> None:
    import httpx

    db = tmp_path / "s.db"
    with Store.open(f"sqlite:///{db}") as s:
        build(s)
    with socket.socket() as taken:  # a port that is in use: an error line, exit 1, no "serving at"
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        proc = _serve_process(db, taken.getsockname()[1])
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "serving" not in out
    assert "error: cannot serve at http://127.0.0.1:" in err and "in use" in err.lower(), err
    port = _free_port()
    proc = _serve_process(db, port)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server says it serves
        assert f"serving the TrueScore API and web page at http://127.0.0.1:{port}" in line, line
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200  # at once, no retry
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
