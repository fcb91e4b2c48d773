"""`truescore text-eval` / `train-text` with string labels (real files say deceptive/truthful, CG/OR)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from truescore.text.training import binarise_labels

from conftest import run_cli

FAKE = ["Best product ever!!! Amazing amazing buy now", "Incredible!!! Perfect in every way, five stars",
        "Wow wow wow best purchase of my life!!!", "Absolutely perfect!!! Everyone must buy this!!!"]
REAL = ["The strap broke after two months but support replaced it.", "Fits well; the colour is darker than shown.",
        "Decent sound for the price, a bit quiet at low volume.", "Took a week to arrive, works as described."]


def _files(tmp_path: Path, positive: str, negative: str) -> tuple[Path, Path]:
    rows = [(f"{t} {i}", positive) for i in range(6) for t in FAKE] + \
           [(f"{t} {i}", negative) for i in range(6) for t in REAL]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    frame.iloc[::2].to_csv(train, index=False)
    frame.iloc[1::2].to_csv(test, index=False)
    return train, test


def test_binarise_labels() -> None:
    df = pd.DataFrame({"text": ["a", "b", "c"], "label": ["CG", "OR", " CG "]})
    assert binarise_labels(df, "CG")["label"].tolist() == [1, 0, 1]
    assert binarise_labels(df, "OR")["label"].tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="not a label"):
        binarise_labels(df, "fake")
    with pytest.raises(ValueError, match="3 labels"):
        binarise_labels(pd.DataFrame({"label": ["a", "b", "c"]}), "a")


def test_text_eval_with_string_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRUESCORE_TEXT_CACHE", str(tmp_path / "cache"))
    train, test = _files(tmp_path, "deceptive", "truthful")
    code, _, err = run_cli(["text-eval", "--task", "fake", "--train", str(train), "--test", str(test)], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1  # string labels without --positive: one line
    code, _, err = run_cli(["text-eval", "--task", "fake", "--train", str(train), "--test", str(test),
                            "--positive", "fake"], capsys)
    assert code == 1 and "not a label" in err and "deceptive" in err
    code, out, err = run_cli(["text-eval", "--task", "fake", "--train", str(train), "--test", str(test),
                              "--positive", "deceptive"], capsys)
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["n_test"] == 24 and metrics["accuracy"] > 0.8


def test_train_text_with_string_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TRUESCORE_TEXT_CACHE", str(tmp_path / "cache"))
    train, _ = _files(tmp_path, "CG", "OR")
    out_dir = tmp_path / "models"
    out_dir.mkdir()
    code, _, err = run_cli(["train-text", "--task", "fake", "--data", str(train), "--positive", "CG", "--out",
                            str(out_dir)], capsys)
    assert code == 0, err
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["fake"]["rows"] == 24 and (out_dir / manifest["fake"]["artifact"]).is_file()
