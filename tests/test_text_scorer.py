"""The shipped scorer end to end: offline, lazy, scores in [0, 1], clear errors (real encoder, shipped models)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from truescore.jobs import score_text
from truescore.text._common import MODELS_DIR
from truescore.text.scorer import ARTIFACTS, ReviewScorer, get_scorer

POSITIVE = "I absolutely love this guitar. The tone is warm, it stays in tune and the action is perfect."
NEGATIVE = "Terrible. The strap broke on the second day and the seller never answered. Do not buy this."


@pytest.fixture(scope="module")
def scorer() -> ReviewScorer:
    missing = [n for n in ARTIFACTS.values() if not (MODELS_DIR / n).is_file()]
    if missing:
        pytest.fail(f"shipped text models missing: {missing}")
    return get_scorer()


def test_models_are_small_and_listed_in_the_readme() -> None:
    readme = (MODELS_DIR / "README.md").read_text()
    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())
    for task, name in ARTIFACTS.items():
        size = (MODELS_DIR / name).stat().st_size
        assert size < 3_000_000, f"{name} is {size} bytes"
        assert name in readme and "truescore train-text" in readme
        assert "deceptive" not in " ".join(manifest[task]["data"])


def test_lazy_single_load(scorer: ReviewScorer) -> None:
    fresh = ReviewScorer()
    assert not fresh.loaded  # nothing is read before the first score
    assert get_scorer() is get_scorer()
    scorer.score_texts(["fine"])
    models = scorer._models
    scorer.score_texts(["fine again"])
    assert scorer._models is models  # loaded once, reused


def test_scores_in_unit_interval_and_ordered(scorer: ReviewScorer) -> None:
    out = scorer.score_texts([POSITIVE, NEGATIVE, "ok", ""])
    assert list(out.columns) == ["review_id", "quality", "fake_probability", "sentiment"]
    vals = out[["quality", "fake_probability", "sentiment"]].to_numpy()
    assert np.isfinite(vals).all() and (vals >= 0).all() and (vals <= 1).all()
    assert out.loc[0, "sentiment"] > 0.6 > 0.4 > out.loc[1, "sentiment"]
    assert out["review_id"].tolist() == ["0", "1", "2", "3"]


def test_deterministic(scorer: ReviewScorer) -> None:
    a = scorer.score_texts([POSITIVE, NEGATIVE])
    b = scorer.score_texts([POSITIVE, NEGATIVE])
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("bad", "match"),
    [([], "empty"), ("just one string", "single string"), ([POSITIVE, 42], "string"), ([None, b"x"], "string")],
)
def test_bad_texts_are_clear_errors(scorer: ReviewScorer, bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        scorer.score_texts(bad)  # type: ignore[arg-type]


def test_bad_frames_are_clear_errors(scorer: ReviewScorer) -> None:
    with pytest.raises(ValueError, match="empty"):
        scorer.score_frame(pd.DataFrame({"text": []}))
    with pytest.raises(ValueError, match="'text' column"):
        scorer.score_frame(pd.DataFrame({"body": ["x"]}))
    with pytest.raises(ValueError, match="DataFrame"):
        scorer.score_frame(["x"])  # type: ignore[arg-type]


class _FakeStore:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.written: list[tuple[str, list[dict[str, object]], str]] = []

    def review_frame(self, topic: str | None = None) -> pd.DataFrame:
        return self.frame

    def vote_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"review_id": ["a"], "voter_id": ["v"], "helpful": [True]})

    def write_derived(self, table: str, records: list[dict[str, object]], model_version: str) -> int:
        self.written.append((table, list(records), model_version))
        return len(records)

    def change_seq(self) -> int:
        return 7

    def record_run(self, job: str, model_version: str, *, seq: int, details: dict[str, object]) -> None:
        self.runs = [(job, model_version, seq, details)]


def test_score_store_writes_batches_with_version(scorer: ReviewScorer) -> None:
    frame = pd.DataFrame({"id": ["a", "b", "c"], "item_id": ["i", "i", "j"], "user_id": ["u", "v", "u"],
                          "rating": [5.0, 1.0, 4.0], "min_rating": 1.0, "max_rating": 5.0,
                          "text": [POSITIVE, NEGATIVE, None], "created_at": [0.0, 10.0, 20.0]})
    store = _FakeStore(frame)
    ticks: list[tuple[int, int]] = []
    n = score_text(store, batch_size=2, progress=lambda d, t: ticks.append((d, t)), scorer=scorer)
    assert n == 3 and ticks == [(2, 3), (3, 3)]
    assert [len(r) for _, r, _ in store.written] == [2, 1]
    table, rows, version = store.written[0]
    assert table == "review_scores" and version.startswith("text-") and version == scorer.model_version
    assert rows[0]["review_id"] == "a" and 0 <= rows[0]["fake_probability"] <= 1
    # as of the events it read; two star labels are fewer than text.calibration_min_labels: the shipped head
    nothing = {"store": {"a": 1.0, "b": 0.0, "n_positive": 0, "n_negative": 0}, "topics": {}}
    assert store.runs == [("text", scorer.model_version, 7, {"reviews": 3, "sentiment_calibration": nothing})]


@pytest.mark.slow  # starts a Python subprocess that loads the encoder
def test_no_download_is_ever_attempted(tmp_path: object) -> None:
    """Load the encoder and score in a fresh process where any socket connect or hub download fails."""
    code = textwrap.dedent("""
        import socket, sys
        def refuse(*a, **k):
            raise RuntimeError("network access attempted")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        import huggingface_hub, huggingface_hub.file_download as fd
        huggingface_hub.hf_hub_download = refuse
        fd.hf_hub_download = refuse
        huggingface_hub.snapshot_download = refuse
        from truescore.text.scorer import ReviewScorer
        out = ReviewScorer().score_texts(["Great strings, bright tone.", "Broke after a day."])
        assert out.shape == (2, 4), out
        import os
        assert os.environ["HF_HUB_OFFLINE"] == "1"
        print("ok")
    """)
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().endswith("ok")


@pytest.mark.slow  # trains the text models
def test_text_eval_on_any_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`text-eval` trains on one CSV and reports metrics on another, with custom column names."""
    from truescore.text.training import evaluate_files, read_labelled

    monkeypatch.setenv("TRUESCORE_TEXT_CACHE", str(tmp_path / "cache"))
    good = ["Love it, works great", "Excellent and sturdy", "Great sound, happy", "Superb value, recommend"]
    bad = ["Broke in a day, awful", "Terrible, returned it", "Worst buy, junk", "Cheap and useless, avoid"]
    rows = [(f"{t} {i}", 1) for i in range(6) for t in good] + [(f"{t} {i}", 0) for i in range(6) for t in bad]
    frame = pd.DataFrame(rows, columns=["body", "stars_ok"])
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    frame.iloc[::2].to_csv(train, index=False)
    frame.iloc[1::2].to_csv(test, index=False)
    out = evaluate_files("sentiment", [train], [test], text_col="body", label_col="stars_ok")
    assert out["n_test"] == 24 and 0.0 <= out["accuracy"] <= 1.0 and out["accuracy"] > 0.8
    fake = evaluate_files("fake", [train], [test], text_col="body", label_col="stars_ok")
    assert set(fake) >= {"accuracy", "auc", "brier", "ece"} and 0.0 <= fake["ece"] <= 1.0
    with pytest.raises(ValueError, match="label column 'nope'"):
        read_labelled(train, "body", "nope")
    with pytest.raises(ValueError, match="evaluation only"):
        from truescore.text.training import train_from_files

        train_from_files("fake", ["ref:deceptive"], out_dir=tmp_path)
