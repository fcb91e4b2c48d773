"""Load benchmark of the HTTP API: ``truescore serve`` on the demo store, a load generator on loopback.

What it measures (each for ``--duration`` seconds, 60 by default, after a warm-up pass):

1. warm ``GET /items/{id}/rating?observer=`` cycling through every item for the baseline observer and the
   20 users who state the most trust (``wrk`` with a Lua script when installed, else the asyncio
   generator below): requests per second and p50 / p90 / p99 latency; the target is >= 500 req/s with
   p99 <= 50 ms on a 2-core machine;
2. ``POST /reviews`` (one new review per request, with an API key) with the asyncio generator, which stops
   sending at the deadline and then waits for every request in flight; afterwards the number of reviews
   in the store must have grown by exactly the number of writes answered 2xx (and every acknowledged id
   must be stored).

3. abuse limits (issue 10): the GET of 1. is sent with a reader key, so the per-key rate limiter runs
   on every request (its limit set high enough not to refuse); then, for ``--duration`` seconds, one
   key floods ``POST /reviews`` far above its rate limit (``--flood-rate`` requests per minute) while
   another key's GETs are measured, and the reader's p99 must stay <= 50 ms;
4. a long write: one ``--long-batch``-review POST (one transaction) sent while the reader's GETs run;
   the reads' worst latency during it is reported;
5. post+delete (issue 20): one user's key posts a review of its own and deletes it, back to back, while
   another key's ordinary ``POST /reviews`` run beside it; the cost of a pair is reported in ordinary
   writes (twice the loop's p50 over the lone ``POST /reviews`` p50 of 2.), and the other key's write latency beside
   it against that same lone run.

The server runs in its own process (``python -m truescore.cli serve``) with the access log off; the load
generator shares the machine with it, so on 2 cores both compete for CPU. Run on a quiet machine:

    python -m bench.api_bench            # 60 s per endpoint, writes docs/results/api_bench.md
    python -m bench.api_bench --quick    # 10 s per endpoint on a smaller store, api_bench_quick.md
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from bench import common
from bench.common import write_result

__all__ = ["LoadResult", "main", "run_load"]

GET_TARGET_RPS = 500.0
GET_TARGET_P99_MS = 50.0

_WRK_LUA = r"""
local paths = {}
for line in io.lines(os.getenv("TS_PATHS")) do paths[#paths + 1] = line end
local i = 0
setup = function(thread) end
init = function(args) i = math.random(#paths) end
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format(
    "TS_RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d status=%d connect=%d read=%d " ..
    "write=%d timeout=%d\n", summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
end
"""


@dataclass(slots=True)
class LoadResult:
    """One load run: counts and latencies (ms)."""

    name: str
    tool: str
    connections: int
    seconds: float
    requests: int
    ok: int
    p50: float
    p90: float
    p99: float
    max: float
    errors: int
    acked: list[str]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else float("nan")


# ---------------------------------------------------------------------------------------------- asyncio generator
RequestFactory = Callable[[int], tuple[bytes, list[str]]]


async def _connection(host: str, port: int, deadline: float, make: RequestFactory, out: list[tuple[int, float]],
                      acked: list[str], worker: int) -> int:
    """One keep-alive connection sending requests back to back until ``deadline``; the request in flight at
    the deadline is completed. Returns the number of transport errors."""
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    try:
        while time.perf_counter() < deadline:
            request, tag = make(worker)
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            if not status_line:
                errors += 1
                break
            status = int(status_line.split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            out.append((status, time.perf_counter() - started))
            if 200 <= status < 300:
                acked.extend(tag)
    except (ConnectionError, asyncio.IncompleteReadError):
        errors += 1
    finally:
        writer.close()
    return errors


def run_load(name: str, host: str, port: int, seconds: float, connections: int, make: RequestFactory) -> LoadResult:
    """Closed-loop load with ``connections`` keep-alive connections for ``seconds`` (then drain)."""

    async def go() -> tuple[list[tuple[int, float]], list[str], int, float]:
        out: list[tuple[int, float]] = []
        acked: list[str] = []
        started = time.perf_counter()
        deadline = started + seconds
        errors = await asyncio.gather(*(_connection(host, port, deadline, make, out, acked, w)
                                        for w in range(connections)))
        return out, acked, int(sum(errors)), time.perf_counter() - started

    out, acked, errors, elapsed = asyncio.run(go())
    lat = np.array([t for _, t in out]) * 1000.0 if out else np.zeros(1)
    ok = sum(1 for s, _ in out if 200 <= s < 300)
    return LoadResult(name, "asyncio", connections, elapsed, len(out), ok, float(np.percentile(lat, 50)),
                      float(np.percentile(lat, 90)), float(np.percentile(lat, 99)), float(lat.max()),
                      errors + len(out) - ok, acked)


def _wrk(name: str, url: str, paths: list[str], seconds: float, connections: int, workdir: Path,
         secret: str | None = None) -> LoadResult:
    path_file = workdir / "paths.txt"
    path_file.write_text("\n".join(paths) + "\n")
    script = workdir / "cycle.lua"
    script.write_text(_WRK_LUA)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(script), url]
    if secret:
        cmd[1:1] = ["-H", f"Authorization: Bearer {secret}"]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TS_PATHS": str(path_file)},
                         check=True).stdout
    m = re.search(r"TS_RESULT (.*)", out)
    if m is None:
        raise RuntimeError(f"wrk printed no result: {out}")
    f = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    errors = f["status"] + f["connect"] + f["read"] + f["write"] + f["timeout"]
    return LoadResult(name, "wrk", connections, f["duration_us"] / 1e6, f["requests"], f["requests"] - f["status"],
                      f["p50_us"] / 1000, f["p90_us"] / 1000, f["p99_us"] / 1000, f["max_us"] / 1000, errors, [])


# ---------------------------------------------------------------------------------------------- server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, http: str, log: Path) -> subprocess.Popen[bytes]:
    """``truescore serve`` in its own process; returns once /health answers."""
    env = {**os.environ, "TRUESCORE_API__ACCESS_LOG": "false", "TRUESCORE_API__HTTP": http}
    return common.start_server(url, port, log, env)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------------------------- the run
def _http_impl(http: str) -> str:
    if http != "auto":
        return http
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def _pairs(base: str, n_observers: int) -> tuple[list[str], list[str], list[str]]:
    """(paths of every (item, observer) pair, observers, items) from the running server."""
    with httpx.Client(base_url=base, timeout=30) as c:
        observers = [o["id"] for o in c.get("/observers", params={"limit": n_observers + 1}).json()["data"]]
        items: list[str] = []
        while True:
            page = c.get("/items", params={"limit": 500, "offset": len(items)}).json()
            items += [i["id"] for i in page["data"]]
            if len(items) >= page["count"] or not page["data"]:
                break
    paths = [f"/items/{i}/rating?observer={o}" for o in observers for i in items]
    random.Random(0).shuffle(paths)
    return paths, observers, items


def _get_factory(paths: list[str], secret: str | None = None) -> RequestFactory:
    position = [0]
    auth = f"Authorization: Bearer {secret}\r\n" if secret else ""

    def make(worker: int) -> tuple[bytes, list[str]]:
        position[0] += 1
        return f"GET {paths[position[0] % len(paths)]} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode(), []

    return make


def _post_factory(secret: str, items: list[str], users: list[str], batch: int, prefix: str) -> RequestFactory:
    counter = [0]
    rng = random.Random(1)

    def make(worker: int) -> tuple[bytes, list[str]]:
        counter[0] += 1
        reviews = [{"id": f"{prefix}-{worker}-{counter[0]}-{b}", "item_id": rng.choice(items),
                    "user_id": rng.choice(users), "rating": rng.randint(1, 5), "text": "Load test review."}
                   for b in range(batch)]
        body = json.dumps(reviews[0] if batch == 1 else reviews).encode()
        head = (f"POST /reviews HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        return head + body, [r["id"] for r in reviews]

    return make


def _post_delete_factory(secret: str, user: str, items: list[str], posted: list[str]) -> RequestFactory:
    """Alternate, per connection, ``POST /reviews`` of a new review by ``user`` and ``DELETE`` of it.

    Every posted id goes into ``posted`` (whether or not it is later deleted), so that the caller can
    check which are left in the store; no id is returned as acknowledged (the pair leaves nothing)."""
    pending: dict[int, str] = {}
    counter = [0]
    rng = random.Random(2)

    def make(worker: int) -> tuple[bytes, list[str]]:
        if worker in pending:
            review_id = pending.pop(worker)
            return (f"DELETE /reviews/{review_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {secret}\r\n\r\n").encode(), []
        counter[0] += 1
        review_id = f"pd-{worker}-{counter[0]}"
        pending[worker] = review_id
        posted.append(review_id)
        body = json.dumps({"id": review_id, "item_id": items[counter[0] % len(items)], "user_id": user,
                           "rating": rng.randint(1, 5), "text": "Posted and deleted by the load test."}).encode()
        head = (f"POST /reviews HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        return head + body, []

    return make


def _post_delete_runs(port: int, items: list[str], users: list[str], secret: str, author: str, author_user: str,
                      seconds: float, connections: int) -> tuple[LoadResult, LoadResult, list[str]]:
    """(the author's post+delete loop, other keys' ordinary writes beside it, every id the loop posted)."""
    import threading

    half = max(1, connections // 2)
    posted: list[str] = []
    box: dict[str, LoadResult] = {}

    def loop() -> None:
        box["pd"] = run_load("POST + DELETE /reviews/{own id} (author key, alternating)", "127.0.0.1", port,
                             seconds, half, _post_delete_factory(author, author_user, items, posted))

    thread = threading.Thread(target=loop)
    thread.start()
    others = run_load("POST /reviews (other key, beside the post+delete loop)", "127.0.0.1", port, seconds, half,
                      _post_factory(secret, items, users, 1, "beside-pd"))
    thread.join()
    print(f"post+delete: pair p50 {box['pd'].p50:.1f} ms; other writes p50 {others.p50:.1f} ms", flush=True)
    return box["pd"], others, posted


def _abuse_runs(port: int, paths: list[str], items: list[str], users: list[str], secret: str, reader: str,
                flooder: str, seconds: float, args: argparse.Namespace, tool: str, base: str, workdir: Path,
                ) -> tuple[LoadResult, LoadResult, LoadResult | None, LoadResult | None]:
    """(reader GETs during the flood, the flood, reader GETs during the long write, the long write)."""
    import threading

    half = max(1, args.connections // 2)
    box: dict[str, LoadResult] = {}

    def flood() -> None:
        box["flood"] = run_load("POST /reviews (flooding key, over its limit)", "127.0.0.1", port, seconds, half,
                                _post_factory(flooder, items, users, 1, "flood"))

    thread = threading.Thread(target=flood)
    thread.start()
    name = "GET /items/{id}/rating (reader key, during the flood)"
    if tool == "wrk":
        read = _wrk(name, base, paths, seconds, half, workdir, reader)
    else:
        read = run_load(name, "127.0.0.1", port, seconds, half, _get_factory(paths, reader))
    thread.join()
    print(f"flood: reader p99 {read.p99:.1f} ms; flooder 2xx {box['flood'].ok:,} of {box['flood'].requests:,}",
          flush=True)
    if args.long_batch <= 0:
        return read, box["flood"], None, None

    def long_write() -> None:
        time.sleep(1.0)
        make = _post_factory(secret, items, users, args.long_batch, "long")
        body = make(0)
        payload = body[0].split(b"\r\n\r\n", 1)[1]
        started = time.perf_counter()
        r = httpx.post(f"{base}/reviews", content=payload, timeout=300,
                       headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
        ms = (time.perf_counter() - started) * 1000
        ok = 1 if 200 <= r.status_code < 300 else 0
        box["long"] = LoadResult(f"POST /reviews (one batch of {args.long_batch:,})", "httpx", 1, ms / 1000, 1, ok,
                                 ms, ms, ms, ms, 1 - ok, body[1] if ok else [])

    thread = threading.Thread(target=long_write)
    thread.start()
    long_seconds = max(10.0, min(seconds, 20.0))
    name = "GET /items/{id}/rating (reader key, during the long write)"
    if tool == "wrk":
        during = _wrk(name, base, paths, long_seconds, half, workdir, reader)
    else:
        during = run_load(name, "127.0.0.1", port, long_seconds, half, _get_factory(paths, reader))
    thread.join()
    print(f"long write: {box['long'].p99:.0f} ms; reader max {during.max:.1f} ms", flush=True)
    return read, box["flood"], during, box["long"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 s per endpoint on a smaller store")
    parser.add_argument("--db", help="serve this store instead of building the demo store")
    parser.add_argument("--duration", type=float, help="seconds per endpoint (default 60; quick 10)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument("--http", default="auto",
                        help="uvicorn HTTP parser(s): auto, h11 or httptools; a comma list measures the GET with "
                             "each, side by side (default auto)")
    parser.add_argument("--batch", type=int, default=50, help="reviews per request in the batch POST run (0 = skip)")
    parser.add_argument("--tool", default="auto", choices=["auto", "wrk", "asyncio"], help="GET load generator")
    parser.add_argument("--observers", type=int, default=20, help="observers besides the baseline (default 20)")
    parser.add_argument("--flood-rate", type=int, default=60,
                        help="rate limit of the flooding key, requests per api.rate_window_seconds (default 60)")
    parser.add_argument("--long-batch", type=int, default=10_000, help="reviews in the long write (0 = skip)")
    args = parser.parse_args(argv)
    seconds = args.duration or (10.0 if args.quick else 60.0)
    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "asyncio")
    if tool == "wrk" and not shutil.which("wrk"):
        parser.error("--tool wrk: wrk is not installed (apt-get install wrk)")
    parsers = [h.strip() for h in args.http.split(",") if h.strip()]
    for h in parsers:
        if h not in ("auto", "h11", "httptools"):
            parser.error(f"--http {h!r}: choose auto, h11 or httptools")
        if h == "httptools" and importlib.util.find_spec("httptools") is None:
            parser.error("--http httptools: the httptools package is not installed")

    from truescore.store import Store

    workdir = Path(tempfile.mkdtemp(prefix="truescore-api-bench-"))
    built = ""
    if args.db:
        url = args.db
    else:
        from truescore.demo import run_demo
        from truescore.synth import SynthConfig

        config = SynthConfig(n_users=1000, n_items=150, n_ratings=10_000) if args.quick else SynthConfig()
        started = time.perf_counter()
        run_demo(workdir / "demo.db", config, score_text=False)
        url = f"sqlite:///{workdir / 'demo.db'}"
        built = (f"the demo store ({config.n_users:,} users, {config.n_items:,} items, {config.n_ratings:,} "
                 f"ratings, built in {time.perf_counter() - started:.1f} s)")
    store = Store.open(url)
    from truescore.store import service

    big = 1_000_000_000  # limits that count every request but never refuse: the limiter's cost is measured
    _, secret = service.create_key(store, "api-bench writer", scopes=["admin"], rate_limit=big, daily_quota=big)
    _, reader = service.create_key(store, "api-bench reader", user_id="bench-reader", scopes=["write"],
                                   rate_limit=big, daily_quota=big)
    _, flooder = service.create_key(store, "api-bench flooder", scopes=["admin"], rate_limit=args.flood_rate,
                                    daily_quota=big)
    users = [u.id for u in store.users()][:2000]
    # the post+delete author is a new user that writes nothing else: a DELETE also removes its author's earlier
    # reviews of the item, which would take a review of the demo store (or an acknowledged one of another run)
    # with it if the author had any (the "nothing lost" count was off by those)
    author_user = "api-bench-author"
    _, author = service.create_key(store, "api-bench author", user_id=author_user, scopes=["write"],
                                   rate_limit=big, daily_quota=big)
    gets: list[tuple[str, LoadResult]] = []
    anonymous: list[tuple[str, LoadResult]] = []
    posts: list[LoadResult] = []
    warmups: list[int] = []
    before = store.counts()["reviews"]
    paths: list[str] = []
    observers: list[str] = []
    items: list[str] = []
    for http in parsers:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        impl = _http_impl(http)
        print(f"serving {url} at {base} (http={impl})", flush=True)
        proc = start_server(url, port, http, workdir / f"server-{impl}.log")
        try:
            paths, observers, items = _pairs(base, args.observers)
            warm = run_load("warm-up", "127.0.0.1", port, max(5.0, min(seconds, len(paths) / 400)),
                            args.connections, _get_factory(paths, reader))
            warmups.append(warm.requests)
            print(f"{len(paths):,} (item, observer) pairs; warm-up {warm.requests:,} requests", flush=True)
            name = "GET /items/{id}/rating"
            if tool == "wrk":
                anon = _wrk(name + " (no key: baseline)", base, paths, seconds, args.connections, workdir)
                get = _wrk(name + " (reader key)", base, paths, seconds, args.connections, workdir, reader)
            else:
                anon = run_load(name + " (no key: baseline)", "127.0.0.1", port, seconds, args.connections,
                                _get_factory(paths))
                get = run_load(name + " (reader key)", "127.0.0.1", port, seconds, args.connections,
                               _get_factory(paths, reader))
            anonymous.append((impl, anon))
            gets.append((impl, get))
            print(f"GET ({impl}): {get.rps:,.0f} req/s, p50 {get.p50:.1f} ms, p99 {get.p99:.1f} ms, "
                  f"errors {get.errors}", flush=True)
        finally:
            stop_server(proc)
    # the writes last, so that every GET above ran on the same store
    port = _free_port()
    main_impl = _http_impl(parsers[0])
    proc = start_server(url, port, parsers[0], workdir / "server-posts.log")
    try:
        for batch in [1, args.batch] if args.batch > 1 else [1]:
            label = "POST /reviews" + (f" (batches of {batch})" if batch > 1 else "")
            post = run_load(label, "127.0.0.1", port, seconds, args.connections,
                            _post_factory(secret, items, users, batch, f"bench{batch}"))
            posts.append(post)
            print(f"{label} ({main_impl}): {post.rps:,.0f} req/s ({post.rps * batch:,.0f} reviews/s), p50 "
                  f"{post.p50:.1f} ms, p99 {post.p99:.1f} ms, 2xx {post.ok:,}", flush=True)
    finally:
        stop_server(proc)
    # post+delete on a fresh server: the POST runs' 20,000-odd reviews set off a background rebuild
    # (personal.hyper_refresh_events) that is not what this run measures
    port = _free_port()
    proc = start_server(url, port, parsers[0], workdir / "server-post-delete.log")
    try:
        lone = run_load("POST /reviews (alone, on this server)", "127.0.0.1", port, seconds, args.connections,
                        _post_factory(secret, items, users, 1, "lone"))
        posts.append(lone)
        pd_loop, pd_others, pd_posted = _post_delete_runs(port, items, users, secret, author, author_user, seconds,
                                                          args.connections)
        posts.append(pd_others)
    finally:
        stop_server(proc)
    # the abuse runs on a fresh server, warmed up like the GET runs: what they measure is the flood's (and
    # the long write's) effect on reads, not the background rebuild that the POST runs' 20,000-odd reviews
    # set off (personal.hyper_refresh_events)
    port = _free_port()
    proc = start_server(url, port, parsers[0], workdir / "server-abuse.log")
    try:
        run_load("warm-up", "127.0.0.1", port, max(5.0, min(seconds, len(paths) / 400)), args.connections,
                 _get_factory(paths, reader))
        calm = run_load("GET /items/{id}/rating (reader key, no flood: baseline)", "127.0.0.1", port, seconds,
                        max(1, args.connections // 2), _get_factory(paths, reader))
        print(f"calm: reader p99 {calm.p99:.1f} ms", flush=True)
        flood, flooded, long_read, long_write = _abuse_runs(port, paths, items, users, secret, reader, flooder, seconds,
                                                            args, tool, base=f"http://127.0.0.1:{port}",
                                                            workdir=workdir)
        posts.append(flooded)
        if long_write is not None:
            posts.append(long_write)
    finally:
        stop_server(proc)
    after = store.counts()["reviews"]
    acked = [i for p in posts for i in p.acked]
    stored_acked = len(store.existing_ids("reviews", acked))
    pd_left = len(store.existing_ids("reviews", pd_posted))
    store.close()
    shutil.rmtree(workdir, ignore_errors=True)

    main_get = gets[0][1]
    get_ok = main_get.rps >= GET_TARGET_RPS and main_get.p99 <= GET_TARGET_P99_MS
    lost_nothing = after - before - pd_left == len(acked) == stored_acked
    lone_post = lone
    delete_cost = 2 * pd_loop.p50 / lone_post.p50 if lone_post.p50 > 0 else float("nan")
    beside_cost = pd_others.p50 / lone_post.p50 if lone_post.p50 > 0 else float("nan")

    def row(r: LoadResult, impl: str, per_request: int = 1) -> str:
        extra = f" ({r.rps * per_request:,.0f} reviews/s)" if per_request > 1 else ""
        return (f"| `{r.name}` | {impl} | {r.tool} | {r.connections} | {r.seconds:.0f} | {r.requests:,} | "
                f"{r.rps:,.0f}{extra} | {r.p50:.1f} | {r.p90:.1f} | {r.p99:.1f} | {r.max:.1f} | {r.errors} |")

    rows = [row(a, impl) for impl, a in anonymous] + [row(g, impl) for impl, g in gets]
    rows += [row(p, main_impl, 1 if k == 0 else args.batch) for k, p in enumerate(posts[:2])]
    pd_rows = [row(lone_post, main_impl), row(pd_loop, main_impl), row(pd_others, main_impl)]
    abuse_rows = [row(calm, main_impl), row(flood, main_impl), row(flooded, main_impl)]
    if long_read is not None and long_write is not None:
        abuse_rows += [row(long_read, main_impl), row(long_write, main_impl, args.long_batch)]
    flood_ok = flood.p99 <= GET_TARGET_P99_MS and flood.errors == 0
    flood_verdict = (f"{'met' if flood_ok else 'NOT met'} (p99 {flood.p99:.1f} ms, max {flood.max:.1f} ms, "
                     f"{flood.errors} errors)")
    long_verdict = "-" if long_read is None else f"{long_read.max:.1f} ms (p99 {long_read.p99:.1f} ms)"
    ratio = ""
    if len(gets) > 1:
        ratio = "\nGET throughput, side by side in this run: " + ", ".join(
            f"{impl} {g.rps / gets[-1][1].rps:.2f}x" for impl, g in gets) + f" (relative to {gets[-1][0]}).\n"
    header = ("| endpoint | HTTP parser | load generator | connections | seconds | requests | req/s | p50 ms | "
              "p90 ms | p99 ms | max ms | errors / non-2xx |")
    target = f">= {GET_TARGET_RPS:.0f} req/s and p99 <= {GET_TARGET_P99_MS:.0f} ms"
    verdict = f"{'met' if get_ok else 'NOT met'} ({main_get.rps:,.0f} req/s, p99 {main_get.p99:.1f} ms)"
    body = f"""
Server: `python -m truescore.cli serve` (uvicorn, 1 worker process, event loop
{"uvloop" if importlib.util.find_spec("uvloop") else "asyncio"}, access log off) on {built or url}.
Load generator on loopback on the same machine ({main_get.tool} for the GET, the asyncio generator of
`bench/api_bench.py` for the POSTs), {args.connections} keep-alive connections, closed loop. The GET cycles
through {len(paths):,} (item, observer) pairs (every item for the baseline observer and the
{len(observers) - 1} users who state the most trust) after a warm-up pass ({", ".join(f"{w:,}" for w in warmups)}
requests). POSTs write new reviews of random items by random existing users; the generator stops sending at the
deadline and waits for every request in flight.

{header}
|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
{ratio}
| check | value |
|---|---|
| warm GET ({main_impl}) with a rate-limited key: {target} | {verdict} |
| reviews acknowledged (2xx) by the POST runs | {len(acked):,} |
| reviews in the store after minus before | {after - before:,} |
| acknowledged review ids found in the store | {stored_acked:,} |
| nothing lost (stored == acknowledged) | {"yes" if lost_nothing else "NO"} |

Post+delete (issue 20). On a fresh server over the same store, first `POST /reviews` alone as above
(the reference), then one user's key (scope `write`) posts a review of
its own and deletes it (`DELETE /reviews/{{id}}`), back to back, on {max(1, args.connections // 2)} connections,
while an admin key's ordinary `POST /reviews` run on {max(1, args.connections // 2)} others, for
{seconds:.0f} s. A deletion is applied to the cached engine state incrementally (no rebuild,
`docs/security.md`). The loop's row counts POSTs and DELETEs alike (requests alternate).

{header}
|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(pd_rows)}

| check | value |
|---|---|
| a post+delete pair of one's own review (2 x the loop's p50), in lone `POST /reviews` p50s | {delete_cost:.2f} |
| other key's write p50 beside the loop, in lone-run p50s | {beside_cost:.2f} |
| reviews the loop posted / left in the store (the last POST may lack its DELETE) | {len(pd_posted):,} / {pd_left:,} |

Abuse limits (issue 10). The "reader key" GET above (beside the same GET without a key, the baseline)
carried a key, so the per-key rate limiter (backend
{"memory" if url.startswith("sqlite") else "database"}: `api.rate_backend = auto`) counted each request; its limit
was set high enough never to refuse. Below, on a fresh server over the same store (warmed up as above), the reader
key's GETs first run alone on {max(1, args.connections // 2)} connections for {seconds:.0f} s (the baseline); then,
for {seconds:.0f} s, a flooding key (limit {args.flood_rate} requests per
`api.rate_window_seconds`, 60 s) sends `POST /reviews` back to back on 4 connections while the reader key's GETs run
on 4 others; its non-2xx are the 429 refusals. Each accepted write is merged into the trust engine's index
incrementally (no rebuild) and refits only the personal model's offsets, see `docs/trust.md` section 3.
Then one {args.long_batch:,}-review `POST /reviews` (one transaction) is sent
while the reader's GETs run (the "long write" rows: the GET row covers the whole run, the POST row the one
request). Those {args.long_batch:,} reviews exceed `personal.hyper_refresh_events` (default 5,000), so within
`api.refresh_seconds` the server also rebuilds its engine state in a background thread (reads keep the previous
state meanwhile, but share the CPU and the interpreter lock with it); that rebuild is in the long-write GET row.

{header}
|---|---|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(abuse_rows)}

| check | value |
|---|---|
| reader GET p99 <= {GET_TARGET_P99_MS:.0f} ms while another key floods | {flood_verdict} |
| flooding key: requests answered 2xx / refused | {flooded.ok:,} / {flooded.requests - flooded.ok:,} |
| reader GET worst latency during the long write | {long_verdict} |

The machine is shared (2 cores, other jobs may run; load average {os.getloadavg()[0]:.1f} at the end of this run,
niceness {os.nice(0)}) and the load generator competes with the server for the same CPUs, so these numbers are a
floor; re-run on a quiet machine with `python -m bench.api_bench`.
"""
    name = "api_bench_quick" if args.quick else "api_bench"
    command = "python -m bench.api_bench " + " ".join(argv if argv is not None else sys.argv[1:])
    path = write_result(name, "HTTP API load benchmark", command.strip(), body)
    print(f"wrote {path}")
    return 0 if lost_nothing else 1


if __name__ == "__main__":
    sys.exit(main())
