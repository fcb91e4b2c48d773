"""Score reviews with all three models: quality, fake probability, sentiment (each 0-1).

One pass per batch: the encoder runs ONCE per review (:meth:`Encoder.encode_layers`), VADER once, the
feature frame once; the three heads share them. Models load lazily, once per process and configuration
(:func:`get_scorer`), from ``truescore/text/models`` (or ``settings.text.models_dir``); nothing is downloaded.
The scorer takes the text settings as an argument (default: the documented defaults); the score job passes
the configured ones.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from truescore.config import TextSettings
from truescore.text._common import MODELS_DIR, check_texts, file_digest, load_artifact
from truescore.text.features import compute_features, vader_scores

__all__ = ["ARTIFACTS", "SCORE_COLUMNS", "ReviewScorer", "get_scorer", "manifest"]

ARTIFACTS = {"sentiment": "sentiment.joblib", "fake": "fake.joblib", "quality": "quality.joblib"}
SCORE_COLUMNS = ["review_id", "quality", "fake_probability", "sentiment"]


class ReviewScorer:
    """Lazy holder of the encoder and the three trained heads.

    Parameters
    ----------
    models_dir : path, optional
        Folder with ``sentiment.joblib``, ``fake.joblib``, ``quality.joblib``; default
        ``settings.models_dir`` or the shipped ``truescore/text/models``.
    max_text_chars : int, optional
        Longer texts are truncated (default ``settings.max_text_chars``).
    settings : TextSettings, optional
        The text section: the two defaults above and the encoder's configuration (:func:`get_encoder`);
        default the documented defaults (``TextSettings()``).
    """

    def __init__(self, models_dir: str | Path | None = None, *, max_text_chars: int | None = None,
                 settings: TextSettings | None = None) -> None:
        cfg = settings if settings is not None else TextSettings()
        self.settings = cfg
        self.models_dir = Path(models_dir) if models_dir else Path(cfg.models_dir or MODELS_DIR)
        self.max_text_chars = max_text_chars or cfg.max_text_chars
        self._models: dict[str, Any] | None = None
        self._lock = threading.Lock()

    # -- loading ----------------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        with self._lock:
            if self._models is None:
                models = {task: load_artifact(self.models_dir / name) for task, name in ARTIFACTS.items()}
                from truescore.text.embed import get_encoder

                models["encoder"] = get_encoder(self.settings)
                self._models = models
            return self._models

    @property
    def loaded(self) -> bool:
        return self._models is not None

    @property
    def model_version(self) -> str:
        """``text-<sentiment>.<fake>.<quality>``: the first hex digits of each artifact's SHA-256."""
        parts = []
        for name in ARTIFACTS.values():
            path = self.models_dir / name
            parts.append(file_digest(path)[:8] if path.is_file() else "missing")
        return "text-" + ".".join(parts)

    # -- scoring ----------------------------------------------------------------------------------------
    def score_frame(
        self,
        reviews: pd.DataFrame,
        votes: pd.DataFrame | None = None,
        *,
        features: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Scores for every row of a review frame (``store.review_frame()`` columns; ``text`` required).

        Parameters
        ----------
        reviews : DataFrame
        votes : DataFrame, optional
            ``review_id, voter_id, helpful`` (engagement features).
        features : DataFrame, optional
            Precomputed :func:`compute_features` rows (e.g. over a whole store, so that history and
            timing see every review, not just this batch).

        Returns
        -------
        DataFrame
            ``review_id, quality, fake_probability, sentiment``, one row per review, same order.

        Raises
        ------
        ValueError
            If ``reviews`` is empty, has no ``text`` column, or a text is not a string.
        """
        if not isinstance(reviews, pd.DataFrame):
            raise ValueError("reviews must be a pandas DataFrame")
        if "text" not in reviews.columns:
            raise ValueError("reviews frame has no 'text' column")
        if len(reviews) == 0:
            raise ValueError("reviews frame is empty: nothing to score")
        texts = [t[: self.max_text_chars] for t in check_texts(reviews["text"].tolist(), name="text")]
        frame = reviews.copy()
        frame["text"] = texts
        m = self._load()
        layers = m["encoder"].encode_layers(texts)
        vader = vader_scores(texts)
        if features is None:
            features = compute_features(frame, votes, vader=vader, global_duplicates=False)
        elif len(features) != len(frame):
            raise ValueError("features must have one row per review")
        sentiment = m["sentiment"].predict(texts, layers=layers, vader=vader)
        fake = m["fake"].predict_proba(frame, layers=layers, features=features)
        quality = m["quality"].predict(features, layers)
        ids = frame["id"].astype(str).tolist() if "id" in frame.columns else [str(i) for i in range(len(frame))]
        return pd.DataFrame({
            "review_id": ids,
            "quality": np.clip(quality, 0, 1),
            "fake_probability": np.clip(fake, 0, 1),
            "sentiment": np.clip(sentiment, 0, 1),
        })

    def score_texts(self, texts: Sequence[str]) -> pd.DataFrame:
        """Scores for bare texts (no metadata: quality and fake use the text features only).

        ``review_id`` is the position as a string.

        Raises
        ------
        ValueError
            If ``texts`` is empty, a single string, or holds a non-string.
        """
        t = check_texts(texts)
        return self.score_frame(pd.DataFrame({"id": [str(i) for i in range(len(t))], "text": t}))


#: the fields of the text section a scorer reads (its own two and its encoder's)
_SCORER_FIELDS = ("models_dir", "max_text_chars", "max_tokens", "encoder_dtype", "encode_batch_size",
                  "encoder_workers")
#: one scorer per configuration of those fields in this process (see :func:`get_scorer`)
_SCORERS: dict[tuple[object, ...], ReviewScorer] = {}
_SCORER_LOCK = threading.Lock()


def get_scorer(settings: TextSettings | None = None) -> ReviewScorer:
    """The process's scorer for the text section ``settings`` (default: the documented defaults): created
    once per configuration of the fields it reads, its models loaded on first use, once."""
    cfg = settings if settings is not None else TextSettings()
    key = tuple(getattr(cfg, name) for name in _SCORER_FIELDS)
    with _SCORER_LOCK:
        scorer = _SCORERS.get(key)
        if scorer is None:
            scorer = _SCORERS[key] = ReviewScorer(settings=cfg.model_copy(deep=True))
        return scorer


def manifest(models_dir: str | Path | None = None) -> dict[str, Any]:
    """The models' manifest.json (training data, command, metrics), or {} if absent."""
    path = Path(models_dir or MODELS_DIR) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else {}
