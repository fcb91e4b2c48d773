"""Private helpers shared by the text heads: input checks, n-gram vectoriser, artifact I/O."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "MODELS_DIR",
    "artifact_path",
    "check_texts",
    "file_digest",
    "load_artifact",
    "ngram_vectorizer",
    "save_artifact",
    "sigmoid",
]

MODELS_DIR = Path(__file__).resolve().parent / "models"


def check_texts(texts: Sequence[Any], *, name: str = "texts", allow_empty: bool = False) -> list[str]:
    """Validate a sequence of review texts; None/NaN become ''.

    Raises
    ------
    ValueError
        If ``texts`` is a bare string, empty (unless ``allow_empty``), or holds a non-string.
    """
    if isinstance(texts, str | bytes):
        raise ValueError(f"{name} must be a sequence of strings, not a single string")
    try:
        items = list(texts)
    except TypeError as exc:
        raise ValueError(f"{name} must be a sequence of strings, got {type(texts).__name__}") from exc
    if not items and not allow_empty:
        raise ValueError(f"{name} is empty: nothing to score")
    out = []
    for i, t in enumerate(items):
        if t is None or (isinstance(t, float) and math.isnan(t)):
            out.append("")
        elif isinstance(t, str):
            out.append(t)
        else:
            raise ValueError(f"{name}[{i}] must be a string, got {type(t).__name__}")
    return out


def ngram_vectorizer(*, max_word_features: int = 30_000, max_char_features: int = 30_000) -> Any:
    """TF-IDF of word 1-2-grams and character 2-5-grams (within word boundaries), sublinear tf, L2 rows.

    The vocabulary is capped so that the fitted vectoriser stays well under a few MB on disk.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=max_word_features,
                    token_pattern=r"(?u)\b\w+\b|[!?]", dtype=np.float32,
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2,
                    max_features=max_char_features, dtype=np.float32,
                ),
            ),
        ]
    )


def sigmoid(x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    z = np.clip(np.asarray(x, dtype=np.float64), -50.0, 50.0)
    return 1.0 / (1.0 + np.exp(-z))


def artifact_path(name: str, models_dir: str | Path | None = None) -> Path:
    """The artifact ``name`` in ``models_dir``: the caller's ``settings.text.models_dir``; None (the setting's
    default) = the shipped models folder :data:`MODELS_DIR`."""
    return (Path(models_dir) if models_dir is not None else MODELS_DIR) / name


def save_artifact(obj: Any, path: str | Path) -> Path:
    import joblib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(obj, path, compress=("xz", 6))
    return path


def load_artifact(path: str | Path) -> Any:
    import joblib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text model artifact {path} not found: train it with `truescore train-text`")
    return joblib.load(path)


def file_digest(path: str | Path) -> str:
    """First 12 hex digits of the SHA-256 of a file (part of the model version)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
