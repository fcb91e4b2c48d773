"""Train and evaluate the text models from files: the library behind ``truescore train-text`` / ``text-eval``.

Data files: CSV / TSV (``.csv``, ``.tsv``), JSON lines (``.jsonl``, ``.json``, optionally ``.gz``) or a UCI
sentiment ``.txt`` (``sentence<TAB>label``, split at the last tab). ``--text-col`` / ``--label-col`` name the
columns (defaults ``text`` / ``label``). The reference data sets can be named instead of a path:
``ref:uci-sentiment`` (Amazon + Yelp), ``ref:uci-amazon``, ``ref:uci-yelp``, ``ref:vader-snippets``,
``ref:salminen``, ``ref:amazon-mi``, ``ref:deceptive`` (CC BY-NC-SA: evaluation only; training a model
on it for shipping is refused).

``settings`` (default: the documented defaults) gives the reference data folder (``settings.data_dir``) and
the encoder's configuration (``settings.text``); ``truescore train-text`` / ``text-eval`` pass the configured
ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import numpy as np
import pandas as pd

from truescore.config import Settings, default_settings
from truescore.text import datasets as D
from truescore.text._common import MODELS_DIR, check_texts, file_digest, save_artifact
from truescore.text.embed import Encoder
from truescore.text.scorer import ARTIFACTS

__all__ = ["TASKS", "TextEvaluation", "TrainingRecord", "evaluate_files", "read_labelled", "train_from_files"]

TASKS = ("quality", "fake", "sentiment")
_NONCOMMERCIAL = {"ref:deceptive"}


class TrainingRecord(TypedDict):
    """What :func:`train_from_files` trained: its entry in the models' ``manifest.json`` (JSON as it is)."""

    task: str
    #: the artifact's file name in the models folder
    artifact: str
    #: the first 12 hex digits of its SHA-256 (part of the scorer's model version)
    sha256_12: str
    bytes: int
    #: the training files or ``ref:NAME`` data sets
    data: list[str]
    rows: int
    text_col: str
    label_col: str | None
    command: str


class TextEvaluation(TypedDict):
    """The metrics :func:`evaluate_files` reports (JSON as it is): a binary task has accuracy, auc (None with one
    class in the test set), brier and ece; sentiment has accuracy and auc on 0/1 labels, else pearson_r and
    sign_accuracy."""

    task: str
    n_train: int
    n_test: int
    accuracy: NotRequired[float]
    auc: NotRequired[float | None]
    brier: NotRequired[float]
    ece: NotRequired[float]
    pearson_r: NotRequired[float]
    sign_accuracy: NotRequired[float]


def _cache_dir() -> Path:
    base = os.environ.get("TRUESCORE_TEXT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "truescore", "text"
    )
    return Path(base)


def _reference(name: str, folder: D.Folder) -> pd.DataFrame:
    if name == "ref:uci-sentiment":
        return pd.concat([D.load_uci("amazon", folder), D.load_uci("yelp", folder)], ignore_index=True)
    loaders = {
        "ref:uci-amazon": lambda: D.load_uci("amazon", folder),
        "ref:uci-yelp": lambda: D.load_uci("yelp", folder),
        "ref:vader-snippets": lambda: D.load_vader_snippets(folder).rename(columns={"mean": "label"}),
        "ref:salminen": lambda: D.load_salminen(folder),
        "ref:deceptive": lambda: D.load_deceptive(folder),
        "ref:amazon-mi": lambda: D.load_amazon_mi(folder),
    }
    if name not in loaders:
        raise ValueError(f"unknown reference data set {name!r}; known: ref:uci-sentiment, {', '.join(loaders)}")
    return loaders[name]()


def read_labelled(path: str | Path, text_col: str = "text", label_col: str | None = "label", *,
                  data_dir: D.Folder = None) -> pd.DataFrame:
    """Read a data file (or ``ref:NAME``) into a frame with ``text`` (and ``label`` if ``label_col``).

    Other columns are kept (review metadata for the feature categories). ``data_dir`` is the folder of the
    reference data sets (``settings.data_dir``; see :func:`truescore.text.datasets.data_dir`).

    Raises
    ------
    ValueError
        If the file's format is unknown or a named column is missing.
    FileNotFoundError
        If the file does not exist.
    """
    name = str(path)
    if name.startswith("ref:"):
        df = _reference(name, data_dir)
    else:
        p = Path(name)
        if not p.is_file():
            raise FileNotFoundError(f"data file {p} not found")
        suffixes = [s.lower() for s in p.suffixes]
        compression = "gzip" if suffixes and suffixes[-1] == ".gz" else None
        kind = suffixes[-2] if compression and len(suffixes) >= 2 else (suffixes[-1] if suffixes else "")
        if kind == ".csv":
            df = pd.read_csv(p, compression=compression)
        elif kind == ".tsv":
            df = pd.read_csv(p, sep="\t", compression=compression)
        elif kind in (".jsonl", ".json"):
            df = pd.read_json(p, lines=True, compression=compression)
        elif kind == ".txt":
            rows = []
            for line in p.read_text(encoding="utf-8-sig").splitlines():
                if "\t" in line:
                    text, _, label = line.rpartition("\t")
                    rows.append((text.strip(), label.strip()))
            df = pd.DataFrame(rows, columns=[text_col, label_col or "label"])
            df[label_col or "label"] = pd.to_numeric(df[label_col or "label"], errors="raise")
        else:
            raise ValueError(f"unknown data format {p.name!r}: use .csv, .tsv, .jsonl/.json(.gz) or a UCI .txt")
    if text_col not in df.columns:
        raise ValueError(f"text column {text_col!r} not in {name} (columns: {', '.join(map(str, df.columns))})")
    if label_col is not None and label_col not in df.columns and not (name == "ref:amazon-mi"):
        raise ValueError(f"label column {label_col!r} not in {name} (columns: {', '.join(map(str, df.columns))})")
    df = df.rename(columns={text_col: "text"})
    if label_col is not None and label_col in df.columns and label_col != "label":
        df = df.rename(columns={label_col: "label"})
    df["text"] = check_texts(df["text"].tolist(), name="text")
    return df.reset_index(drop=True)


def _read_many(paths: Sequence[str | Path], text_col: str, label_col: str | None,
               positive: str | None = None, data_dir: D.Folder = None) -> pd.DataFrame:
    if not paths:
        raise ValueError("no training data given")
    frames = [read_labelled(p, text_col, label_col, data_dir=data_dir).assign(_source=k)
              for k, p in enumerate(paths)]
    if positive is not None:
        frames = [binarise_labels(f, positive, str(p)) for f, p in zip(frames, paths, strict=True)]
    return pd.concat(frames, ignore_index=True)


def binarise_labels(df: pd.DataFrame, positive: str, source: str = "data") -> pd.DataFrame:
    """Map a two-valued string label column onto 1 (``positive``, e.g. ``deceptive`` or ``CG``) and 0.

    Raises
    ------
    ValueError
        If there is no label column, it has more than two values, or ``positive`` is not one of them.
    """
    if "label" not in df.columns:
        raise ValueError(f"--positive {positive!r}: {source} has no label column")
    labels = df["label"].astype(str).str.strip()
    values = sorted(set(labels))
    if positive not in values:
        raise ValueError(f"--positive {positive!r} is not a label of {source} (labels: {', '.join(values[:10])})")
    if len(values) > 2:
        raise ValueError(f"--positive {positive!r}: {source} has {len(values)} labels ({', '.join(values[:10])}); "
                         "a binary task needs two")
    return df.assign(label=(labels == positive).astype(int))


def _sentiment_targets(df: pd.DataFrame) -> np.ndarray:
    """Intensities in [-1, 1], each source file mapped on its own scale (0/1 labels, [-4, 4] means, stars)."""
    from truescore.text.sentiment import intensity_targets

    y = np.zeros(len(df))
    for _, idx in df.groupby("_source").indices.items():
        y[idx] = intensity_targets(df["label"].to_numpy()[idx])
    return y


def _layers(texts: list[str], encoder: Encoder) -> np.ndarray:
    from truescore.text.embed import cached_encode

    return cached_encode(texts, _cache_dir(), encoder=encoder)


def _data_dir(settings: Settings | None) -> D.Folder:
    """The reference data folder: the given settings' ``data_dir``; without settings, None (the loaders'
    default: ``$TRUESCORE_DATA_DIR``, else the setting's default)."""
    return settings.data_dir if settings is not None else None


def _encoder(settings: Settings) -> Encoder:
    from truescore.text.embed import get_encoder

    return get_encoder(settings.text)


def _fit(task: str, df: pd.DataFrame, *, label_col_given: bool, encoder: Encoder) -> Any:
    from truescore.text.features import compute_features, vader_scores

    texts = df["text"].tolist()
    if task == "sentiment":
        from truescore.text.sentiment import SentimentModel

        y = _sentiment_targets(df)
        return SentimentModel().fit(texts, y, layers=_layers(texts, encoder), vader=vader_scores(texts))
    if task == "fake":
        from truescore.text.fake import FakeDetector

        feats = compute_features(df.drop(columns=["label", "_source"]), global_duplicates=False)
        return FakeDetector().fit(df, df["label"].to_numpy(), layers=_layers(texts, encoder), features=feats)
    if task == "quality":
        from truescore.text.quality import QualityModel, proxy_label

        labelled, y, kind = proxy_label(df, "label" if label_col_given and "label" in df.columns else None)
        feats = compute_features(df, global_duplicates=False)
        sub = np.flatnonzero(labelled)
        lay = _layers([texts[i] for i in sub], encoder)
        return QualityModel().fit(feats.iloc[sub], lay, y[sub], label_kind=kind)
    raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")


def train_from_files(
    task: str,
    data: Sequence[str | Path],
    *,
    text_col: str = "text",
    label_col: str | None = "label",
    out_dir: str | Path | None = None,
    command: str | None = None,
    positive: str | None = None,
    settings: Settings | None = None,
) -> TrainingRecord:
    """Train the ``task`` model on ``data`` and write its artifact to ``out_dir`` (default: the shipped
    models folder); records the data, command and digest in ``manifest.json``. Returns that record.
    ``positive`` names the label meaning 1 (fake) when the labels are strings (``deceptive``, ``CG``);
    ``settings`` as in the module docstring.

    Raises
    ------
    ValueError
        For an unknown task, bad data, or non-commercial data (deceptive-opinion-spam).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    for d in data:
        if str(d) in _NONCOMMERCIAL or "deceptive-opinion-spam" in str(d):
            raise ValueError(f"{d} is CC BY-NC-SA (evaluation only): refusing to train a shippable model on it")
    cfg = settings if settings is not None else default_settings()
    df = _read_many(data, text_col, label_col if task != "quality" or label_col else None, positive,
                    _data_dir(settings))
    model = _fit(task, df, label_col_given=label_col is not None and task == "quality" and "label" in df.columns,
                 encoder=_encoder(cfg))
    out = Path(out_dir) if out_dir else MODELS_DIR
    path = save_artifact(model, out / ARTIFACTS[task])
    record: TrainingRecord = {
        "task": task,
        "artifact": path.name,
        "sha256_12": file_digest(path),
        "bytes": path.stat().st_size,
        "data": [str(d) for d in data],
        "rows": len(df),
        "text_col": text_col,
        "label_col": label_col,
        "command": command or "",
    }
    man_path = out / "manifest.json"
    manifest = json.loads(man_path.read_text()) if man_path.is_file() else {}
    manifest[task] = record
    man_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return record


def evaluate_files(
    task: str,
    train: Sequence[str | Path],
    test: Sequence[str | Path],
    *,
    text_col: str = "text",
    label_col: str = "label",
    positive: str | None = None,
    settings: Settings | None = None,
) -> TextEvaluation:
    """Train ``task`` on ``train`` and report metrics on ``test`` (:class:`TextEvaluation`, JSON as it is);
    ``settings`` as in the module docstring.

    Binary labels: accuracy, ROC AUC, Brier score and expected calibration error (10 bins); continuous
    sentiment labels: Pearson r and accuracy of the sign. ``positive`` names the label meaning 1 when the
    labels are strings (``deceptive``/``truthful``, ``CG``/``OR``).
    """
    from sklearn.metrics import brier_score_loss, roc_auc_score

    from truescore.text.calibration import expected_calibration_error
    from truescore.text.features import compute_features, vader_scores

    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    cfg = settings if settings is not None else default_settings()
    encoder = _encoder(cfg)
    tr = _read_many(train, text_col, label_col, positive, _data_dir(settings))
    te = _read_many(test, text_col, label_col, positive, _data_dir(settings))
    model = _fit(task, tr, label_col_given=True, encoder=encoder)
    texts = te["text"].tolist()
    layers = _layers(texts, encoder)
    if task == "sentiment":
        pred = model.predict(texts, layers=layers, vader=vader_scores(texts))
        raw = te["label"].to_numpy(dtype=float)
        target = _sentiment_targets(te)
        out: TextEvaluation = {"task": task, "n_train": len(tr), "n_test": len(te)}
        if set(np.unique(raw).tolist()) <= {0.0, 1.0}:
            y = raw.astype(int)
            out["accuracy"] = float(((pred >= 0.5) == y).mean())
            out["auc"] = float(roc_auc_score(y, pred))
        else:
            out["pearson_r"] = float(np.corrcoef(pred, raw)[0, 1])
            out["sign_accuracy"] = float(((pred >= 0.5) == (target >= 0)).mean())
        return out
    feats = compute_features(te.drop(columns=["label", "_source"], errors="ignore"), global_duplicates=False)
    if task == "fake":
        from truescore.text.fake import _binary_labels

        y = _binary_labels(te["label"].to_numpy(), len(te))
        p = model.predict_proba(te, layers=layers, features=feats)
    else:
        from truescore.text.quality import proxy_label

        labelled, yy, _ = proxy_label(te, "label" if "label" in te.columns else None)
        idx = np.flatnonzero(labelled)
        p = model.predict(feats.iloc[idx], layers[idx])
        y = yy[idx]
    return {
        "task": task, "n_train": len(tr), "n_test": len(y),
        "accuracy": float(((p >= 0.5) == y).mean()),
        "auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None,
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(p, y),
    }
