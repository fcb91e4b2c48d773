"""Loaders for the reference data sets in ``../shared/data`` used to train and evaluate the text models.

Each loader returns a pandas DataFrame with a ``text`` column and a label column, parsed exactly as the data
README prescribes (UCI lines split at their last tab, the VADER file's BOM stripped, ...). The folder is the
``folder`` argument (the doors pass ``settings.data_dir``), else ``$TRUESCORE_DATA_DIR``, else the default of
``settings.data_dir``; a relative path is taken from the repository root, then from the working directory.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from truescore.config import Settings
from truescore.errors import TruescoreError

__all__ = [
    "DataUnavailable",
    "data_dir",
    "load_amazon_mi",
    "load_deceptive",
    "load_salminen",
    "load_uci",
    "load_vader_snippets",
]

_REPO_ROOT = Path(__file__).resolve().parents[3]


class DataUnavailable(TruescoreError, FileNotFoundError):
    """The reference data folder (or one of its files) is not there."""


#: the default of ``settings.data_dir`` (read from the settings class, not written again)
_DEFAULT_DATA_DIR: Path = Settings.model_fields["data_dir"].default

#: where a loader's data folder comes from: a path, or None (``$TRUESCORE_DATA_DIR``, else the default)
Folder = str | Path | None


def data_dir(folder: Folder = None) -> Path:
    """The folder holding the reference data sets.

    Parameters
    ----------
    folder : path, optional
        The configured ``settings.data_dir`` (the doors pass it; it already holds ``$TRUESCORE_DATA_DIR``
        when that is set). Default: ``$TRUESCORE_DATA_DIR``, else the setting's default.

    Raises
    ------
    DataUnavailable
        If no such folder exists.
    """
    env = os.environ.get("TRUESCORE_DATA_DIR")
    if folder is None and env:
        candidates = [Path(env)]
    else:
        configured = Path(folder) if folder is not None else _DEFAULT_DATA_DIR
        candidates = [configured] if configured.is_absolute() else [_REPO_ROOT / configured, Path.cwd() / configured]
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    raise DataUnavailable(
        f"reference data not found (looked in {', '.join(map(str, candidates))}): set TRUESCORE_DATA_DIR"
    )


def _file(folder: Folder, *parts: str) -> Path:
    path = data_dir(folder).joinpath(*parts)
    if not path.is_file():
        raise DataUnavailable(f"{path} not found")
    return path


def load_uci(part: str, folder: Folder = None) -> pd.DataFrame:
    """UCI Sentiment Labelled Sentences, ``part`` in {"amazon", "yelp"}: columns ``text``, ``label`` (0/1)."""
    names = {"amazon": "amazon_cells_labelled.txt", "yelp": "yelp_labelled.txt"}
    if part not in names:
        raise ValueError(f"part must be 'amazon' or 'yelp', got {part!r}")
    rows = []
    for line in _file(folder, "uci-sentiment", names[part]).read_text(encoding="utf-8").splitlines():
        if "\t" not in line:
            continue
        text, _, label = line.rpartition("\t")
        rows.append((text.strip(), int(label.strip())))
    return pd.DataFrame(rows, columns=["text", "label"])


def load_vader_snippets(folder: Folder = None) -> pd.DataFrame:
    """VADER's Amazon snippets: ``id``, ``mean`` (human sentiment intensity in [-4, 4]), ``text``."""
    raw = _file(folder, "vader-snippets", "amazonReviewSnippets_GroundTruth.txt").read_text(encoding="utf-8-sig")
    rows = []
    for line in raw.splitlines():
        parts = line.split("\t", 2)
        if len(parts) == 3:
            rows.append((parts[0], float(parts[1]), parts[2].strip()))
    return pd.DataFrame(rows, columns=["id", "mean", "text"])


def load_salminen(folder: Folder = None) -> pd.DataFrame:
    """Salminen et al. fake reviews: ``text``, ``label`` (1 = computer-generated ``CG``, 0 = original ``OR``)."""
    df = pd.read_csv(_file(folder, "salminen-fake-reviews", "salminen_dev_4000.csv"))
    return pd.DataFrame({"text": df["text"].astype(str), "label": (df["label"] == "CG").astype(int)})


def load_deceptive(folder: Folder = None) -> pd.DataFrame:
    """Ott et al. deceptive opinion spam (folds 1-4): ``text``, ``label`` (1 = deceptive), ``polarity``, ``fold``.

    CC BY-NC-SA 3.0: for evaluation only; never ship a model trained on it.
    """
    df = pd.read_csv(_file(folder, "deceptive-opinion-spam", "op_spam_v1.4_folds1-4.csv"))
    return pd.DataFrame(
        {
            "text": df["text"].astype(str),
            "label": (df["label"] == "deceptive").astype(int),
            "polarity": df["polarity"].astype(str),
            "fold": df["fold"].astype(int),
        }
    )


def load_amazon_mi(folder: Folder = None) -> pd.DataFrame:
    """Amazon Musical Instruments 5-core as a review frame (store columns) plus ``helpful_yes``/``helpful_total``.

    ``id`` is ``reviewerID/asin`` (unique: the data has no duplicate user-item pairs).
    """
    rows = []
    with gzip.open(_file(folder, "amazon-musical-instruments", "reviews_Musical_Instruments_5.json.gz"), "rt") as fh:
        for line in fh:
            d = json.loads(line)
            yes, total = (d.get("helpful") or [0, 0])[:2]
            rows.append(
                {
                    "id": f"{d['reviewerID']}/{d['asin']}",
                    "item_id": d["asin"],
                    "user_id": d["reviewerID"],
                    "rating": float(d["overall"]),
                    "min_rating": 1.0,
                    "max_rating": 5.0,
                    "title": d.get("summary") or "",
                    "text": d.get("reviewText") or "",
                    "created_at": float(d["unixReviewTime"]),
                    "helpful_yes": int(yes),
                    "helpful_total": int(total),
                }
            )
    df = pd.DataFrame(rows)
    df["photo_count"] = np.zeros(len(df), dtype=int)
    return df
