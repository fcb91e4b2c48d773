"""Presets that load the reference data sets of ``../shared/data`` into a store.

Each preset maps a data set onto truescore's events (its README's reading rules applied) and imports
it through the validating importer, so a malformed upstream row is reported like any other bad row.

========================== ===============================================================================
preset                     mapping
========================== ===============================================================================
bitcoin-otc                src rates dst on -10..+10: reviews (user = src, item = dst, topic
                           ``reviews.public.bitcoin-otc``); positive ratings also become trust edges
                           (level rating/10, same domain). Labels (otc_gt.csv) are not loaded.
crowd-emotion              worker scores question on -100..100: reviews (topic ``reviews.public.emotion``).
filmtrust                  user rates film on 0.5..4: reviews (``reviews.public.movies``); trust.txt as
                           trust edges of level 1 in ``reviews.public.movies``. Its 3 duplicate
                           (user, film) pairs are stored once (first wins).
amazon-musical-instruments reviews on 1..5 with text and summary (``reviews.public.music.instruments``);
                           the ``helpful [yes, total]`` counts become anonymous votes (voters
                           ``anon:<review>:<k>``, no trust path, so they only feed engagement features).
amazon-fashion             reviews on 1..5 with text, summary, verified flag, photo count
                           (``reviews.public.fashion``); ``vote`` (helpful count) as anonymous votes.
                           Rows without a star rating are rejected with their reason.
========================== ===============================================================================
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from truescore.store.ingest import ImportReport, import_frame
from truescore.store.store import Store

__all__ = ["PRESETS", "PresetReport", "data_dir", "load_preset"]


@dataclass(slots=True)
class PresetReport:
    """Rows read from the data set files and what each import did."""

    preset: str
    rows_read: dict[str, int] = field(default_factory=dict)
    imports: dict[str, ImportReport] = field(default_factory=dict)

    @property
    def inserted(self) -> dict[str, int]:
        return {k: r.rows_inserted for k, r in self.imports.items()}

    @property
    def rejected(self) -> dict[str, int]:
        return {k: r.rows_rejected for k, r in self.imports.items()}


def data_dir(path: str | Path | None = None) -> Path:
    """The reference data folder: ``path``, else settings ``data_dir`` (``TRUESCORE_DATA_DIR``)."""
    if path is not None:
        return Path(path)
    from truescore.config import get_settings

    return Path(get_settings().data_dir)


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: set TRUESCORE_DATA_DIR to the folder of the reference data sets")
    return path


def _anon_votes(review_ids: pd.Series, helpful: np.ndarray, unhelpful: np.ndarray, times: pd.Series) -> pd.DataFrame:
    reps = helpful + unhelpful
    rid = np.repeat(review_ids.to_numpy(object), reps)
    k = np.concatenate([np.arange(n) for n in reps]) if reps.sum() else np.array([], dtype=int)
    is_helpful = np.concatenate([np.r_[np.ones(h, bool), np.zeros(u, bool)]
                                 for h, u in zip(helpful, unhelpful, strict=True)]) if reps.sum() else np.array([])
    return pd.DataFrame({
        "review_id": rid,
        "voter_id": [f"anon:{r}:{j}" for r, j in zip(rid, k, strict=True)],
        "helpful": is_helpful,
        "created_at": np.repeat(times.to_numpy(float), reps),
    })


def _bitcoin_otc(store: Store, root: Path, report: PresetReport, **kw: object) -> None:
    df = pd.read_csv(_require(root / "bitcoin-otc" / "otc_network.csv"), header=None,
                     names=["src", "dst", "rating", "time"])
    report.rows_read["reviews"] = len(df)
    topic = "reviews.public.bitcoin-otc"
    reviews = pd.DataFrame({
        "id": "otc:" + df["src"].astype(str) + ">" + df["dst"].astype(str),
        "user_id": df["src"].astype(str), "item_id": df["dst"].astype(str), "rating": df["rating"],
        "min_rating": -10, "max_rating": 10, "created_at": df["time"], "topic": topic,
    })
    report.imports["reviews"] = import_frame(store, reviews, "reviews", source="bitcoin-otc", **kw)
    pos = df[df["rating"] > 0]
    trust = pd.DataFrame({"truster_id": pos["src"].astype(str), "trustee_id": pos["dst"].astype(str),
                          "domain": topic, "level": pos["rating"] / 10.0, "created_at": pos["time"]})
    report.rows_read["trust"] = len(trust)
    report.imports["trust"] = import_frame(store, trust, "trust", source="bitcoin-otc trust", **kw)


def _crowd_emotion(store: Store, root: Path, report: PresetReport, **kw: object) -> None:
    df = pd.read_csv(_require(root / "crowd-emotion" / "answer.csv"), dtype={"question": str, "worker": str})
    report.rows_read["reviews"] = len(df)
    reviews = pd.DataFrame({
        "id": "emo:" + df["question"] + ":" + df["worker"], "user_id": df["worker"], "item_id": "q" + df["question"],
        "rating": df["answer"], "min_rating": -100, "max_rating": 100, "created_at": 1.2e9,
        "topic": "reviews.public.emotion",
    })
    report.imports["reviews"] = import_frame(store, reviews, "reviews", source="crowd-emotion", **kw)


def _filmtrust(store: Store, root: Path, report: PresetReport, **kw: object) -> None:
    df = pd.read_csv(_require(root / "filmtrust" / "ratings.txt"), sep=r"\s+", header=None,
                     names=["user", "item", "rating"], dtype={"user": str, "item": str})
    report.rows_read["reviews"] = len(df)
    # the README's 3 repeated (user, film) pairs (2 with another rating) share an id: the first one stands
    df = df.drop_duplicates(["user", "item"], keep="first")
    topic = "reviews.public.movies"
    reviews = pd.DataFrame({
        "id": "ft:" + df["user"] + ":" + df["item"], "user_id": df["user"], "item_id": "film" + df["item"],
        "rating": df["rating"], "min_rating": 0.5, "max_rating": 4.0, "created_at": 1.3e9, "topic": topic,
    })
    report.imports["reviews"] = import_frame(store, reviews, "reviews", source="filmtrust ratings", **kw)
    tr = pd.read_csv(_require(root / "filmtrust" / "trust.txt"), sep=r"\s+", header=None,
                     names=["a", "b", "level"], dtype={"a": str, "b": str})
    report.rows_read["trust"] = len(tr)
    trust = pd.DataFrame({"truster_id": tr["a"], "trustee_id": tr["b"], "domain": topic,
                          "level": tr["level"].astype(float), "created_at": 1.3e9})
    report.imports["trust"] = import_frame(store, trust, "trust", source="filmtrust trust", **kw)


def _amazon_mi(store: Store, root: Path, report: PresetReport, **kw: object) -> None:
    path = _require(root / "amazon-musical-instruments" / "reviews_Musical_Instruments_5.json.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        df = pd.DataFrame.from_records(json.loads(line) for line in fh if line.strip())
    report.rows_read["reviews"] = len(df)
    ids = "ami:" + df["reviewerID"] + ":" + df["asin"]
    reviews = pd.DataFrame({
        "id": ids, "user_id": df["reviewerID"], "item_id": df["asin"], "rating": df["overall"],
        "title": df["summary"], "text": df["reviewText"], "created_at": df["unixReviewTime"],
        "topic": "reviews.public.music.instruments",
    })
    report.imports["reviews"] = import_frame(store, reviews, "reviews", source="amazon-musical-instruments", **kw)
    helpful = np.array([h[0] for h in df["helpful"]], dtype=int)
    total = np.array([h[1] for h in df["helpful"]], dtype=int)
    votes = _anon_votes(ids, helpful, np.maximum(total - helpful, 0), df["unixReviewTime"])
    report.rows_read["votes"] = len(votes)
    report.imports["votes"] = import_frame(store, votes, "votes", source="amazon-musical-instruments votes", **kw)


def _amazon_fashion(store: Store, root: Path, report: PresetReport, **kw: object) -> None:
    path = _require(root / "amazon-fashion" / "AMAZON_FASHION_5.json")
    with open(path, encoding="utf-8") as fh:
        df = pd.DataFrame.from_records(json.loads(line) for line in fh if line.strip())
    report.rows_read["reviews"] = len(df)
    style = df["style"].map(lambda s: json.dumps(s, sort_keys=True) if isinstance(s, dict) else "")
    ids = ("af:" + df["reviewerID"] + ":" + df["asin"] + ":" + df["unixReviewTime"].astype(str) + ":"
           + pd.Series(pd.factorize(style)[0], index=df.index).astype(str))
    photos = df["image"].map(lambda v: len(v) if isinstance(v, list) else 0) if "image" in df else 0
    reviews = pd.DataFrame({
        "id": ids, "user_id": df["reviewerID"], "item_id": df["asin"], "rating": df["overall"],
        "title": df["summary"], "text": df["reviewText"], "created_at": df["unixReviewTime"],
        "verified_purchase": df["verified"], "photo_count": photos, "topic": "reviews.public.fashion",
    })
    kw = {**kw, "skip_bad": True}
    report.imports["reviews"] = import_frame(store, reviews, "reviews", source="amazon-fashion", **kw)
    votes_raw = df["vote"] if "vote" in df else pd.Series([None] * len(df))
    helpful = votes_raw.map(lambda v: int(str(v).replace(",", "")) if isinstance(v, str | int) else 0).to_numpy(int)
    stored = reviews["rating"].notna().to_numpy()
    votes = _anon_votes(ids[stored], helpful[stored], np.zeros(int(stored.sum()), dtype=int),
                        df["unixReviewTime"][stored])
    report.rows_read["votes"] = len(votes)
    report.imports["votes"] = import_frame(store, votes, "votes", source="amazon-fashion votes", **kw)


PRESETS: dict[str, Callable[..., None]] = {
    "bitcoin-otc": _bitcoin_otc,
    "crowd-emotion": _crowd_emotion,
    "filmtrust": _filmtrust,
    "amazon-musical-instruments": _amazon_mi,
    "amazon-fashion": _amazon_fashion,
}


def load_preset(store: Store, name: str, root: str | Path | None = None, **import_kwargs: object) -> PresetReport:
    """Load the reference data set ``name`` (one of :data:`PRESETS`) into ``store``."""
    if name not in PRESETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(PRESETS)}")
    report = PresetReport(preset=name)
    PRESETS[name](store, data_dir(root), report, **import_kwargs)
    return report
