"""The API's commands: ``truescore keys create|list|revoke``, ``truescore serve`` and ``demo --serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import truescore.api
from truescore.store import Store, service

from conftest import run_cli


def test_keys_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    Store.open(db)  # keys are made for an existing store (a mistyped --db is refused)
    code, out, err = run_cli(["keys", "create", "--name", "shop", "--db", db], capsys)
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    store = Store.open(db)
    key_id = getattr(service.verify_key(store, secret), "key_id", None)
    assert key_id is not None and key_id in out
    code, out, _ = run_cli(["keys", "list", "--db", db], capsys)
    assert code == 0 and key_id in out and "shop" in out and "live" in out and secret not in out
    code, out, _ = run_cli(["keys", "revoke", key_id, "--db", db], capsys)
    assert code == 0 and "revoked" in out
    assert getattr(service.verify_key(store, secret), "key_id", None) is None
    code, _, err = run_cli(["keys", "revoke", "no-such-key", "--db", db], capsys)
    assert code == 1 and "no API key with id 'no-such-key'" in err


def test_serve_passes_its_options_to_the_library(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[Any, ...]] = []

    def fake_serve(*a: Any, **k: Any) -> None:
        calls.append((a, {n: v for n, v in k.items() if n != "on_serving"}))
        k["on_serving"](f"http://{a[1]}:{a[2]}")

    monkeypatch.setattr(truescore.api, "serve", fake_serve)
    code, out, err = run_cli(["serve", "--create", "--db", "sqlite:///x.db", "--host", "0.0.0.0", "--port", "9001"],
                             capsys)
    assert code == 0, err
    assert calls == [(("sqlite:///x.db", "0.0.0.0", 9001), {"workers": None, "settings": truescore.get_settings()})]
    assert "http://0.0.0.0:9001" in out


def test_demo_ends_by_serving_the_demo_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(truescore.api, "serve", lambda *a, **k: (calls.append(a), k["on_serving"]("http://127.0.0.1:8000")))
    db = tmp_path / "demo.db"
    code, out, err = run_cli(["demo", "--no-text", "--out", str(db), "--users", "200", "--items", "30", "--ratings",
                          "1500"], capsys)
    assert code == 0, err
    assert calls == [(f"sqlite:///{db}", None, None)]
    assert "http://127.0.0.1:8000" in out
