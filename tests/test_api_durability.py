"""Durability: kill ``truescore serve`` with SIGKILL in the middle of a write burst; every write that was
answered 2xx must be in the store afterwards, and every batch must be there whole or not at all.

The kill is triggered by a count of acknowledged writes, not by a timer, so the test asserts no timing.
Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from bench.common import start_server
from truescore.store import Store, service

WRITERS = 6
KILL_AFTER_ACKS = 60
BATCH = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_server(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUESCORE_")}
    env.update({"TRUESCORE_API__ACCESS_LOG": "false", "TRUESCORE_API__REFRESH_SECONDS": "0",
                "TRUESCORE_API__RATE_LIMIT_REQUESTS": "0"})  # a write burst, not a rate-limit test
    return start_server(url, port, log, env, timeout=120)


@pytest.mark.slow  # starts a server process and kills it
def test_sigkill_during_a_write_burst_loses_no_acknowledged_write(store_url: str, tmp_path: Path) -> None:
    from test_api_endpoints import build_world

    store = Store.open(store_url)
    build_world(store)
    _, secret = service.create_key(store, "durability")
    before = store.counts()["reviews"]
    port = _free_port()
    proc = _start_server(store_url, port, tmp_path / "server.log")
    acked: list[list[str]] = []  # each acknowledged request's review ids
    sent: list[list[str]] = []
    failures: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    headers = {"Authorization": f"Bearer {secret}"}

    def writer(w: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30) as client:
            for k in range(100_000):
                single = k % 3 != 0
                ids = [f"kill-{w}-{k}"] if single else [f"kill-{w}-{k}-{b}" for b in range(BATCH)]
                body = [{"id": i, "item_id": "lamp" if k % 2 else "pan", "user_id": f"writer{w}", "rating": 1 + k % 5}
                        for i in ids]
                with lock:
                    sent.append(ids)
                try:
                    r = client.post("/reviews", json=body[0] if single else body)
                except httpx.TransportError:
                    return  # the server is gone
                if 200 <= r.status_code < 300:
                    with lock:
                        acked.append(ids)
                        if len(acked) >= KILL_AFTER_ACKS:
                            enough.set()
                else:
                    with lock:
                        failures.append(f"{r.status_code}: {r.text}")
                    return

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        assert enough.wait(timeout=300), "the write burst did not get going"
        os.kill(proc.pid, signal.SIGKILL)  # in the middle of the burst: writers are still sending
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    for t in threads:
        t.join(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert failures == [], f"writes answered with an error before the kill: {failures[:3]}"

    store.close()
    reopened = Store.open(store_url)
    acked_ids = [i for ids in acked for i in ids]
    assert len(acked_ids) >= KILL_AFTER_ACKS
    stored = reopened.existing_ids("reviews", acked_ids)
    assert set(acked_ids) <= stored, f"{len(set(acked_ids) - stored)} acknowledged writes were lost"
    all_sent = [i for ids in sent for i in ids]
    stored_sent = reopened.existing_ids("reviews", all_sent)
    for ids in sent:  # a batch is one transaction: whole or absent, never half
        present = [i in stored_sent for i in ids]
        assert all(present) or not any(present), ids
    assert reopened.counts()["reviews"] == before + len(stored_sent)
    reopened.close()
