"""Review intelligence (seed 004): quality, fake probability and sentiment for every review, offline.

- :class:`ReviewScorer`: the three 0-1 scores per review (:mod:`.scorer`; over a store, the score job
  :func:`truescore.jobs.score_text`),
- :func:`compute_features`: 82 features in 9 groups (:mod:`.features`, table in ``docs/features.md``),
- :class:`Encoder`: the bundled all-MiniLM-L6-v2 encoder, loaded lazily with the network off (:mod:`.embed`),
- :class:`SentimentModel`, :class:`FakeDetector`, :class:`QualityModel`: the trainable heads,
- :func:`product_quality`: mean quality and the shares of high / low quality reviews per product,
- :func:`train_from_files` / :func:`evaluate_files`: ``truescore train-text`` / ``text-eval``.

Names load on first use so that ``import truescore.text`` stays light (no torch until a text is encoded).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Encoder",
    "FakeDetector",
    "QualityModel",
    "ReviewScorer",
    "SentimentModel",
    "compute_features",
    "evaluate_files",
    "get_encoder",
    "get_scorer",
    "product_quality",
    "train_from_files",
]

_LAZY = {
    "Encoder": "truescore.text.embed",
    "get_encoder": "truescore.text.embed",
    "FakeDetector": "truescore.text.fake",
    "QualityModel": "truescore.text.quality",
    "product_quality": "truescore.text.quality",
    "ReviewScorer": "truescore.text.scorer",
    "get_scorer": "truescore.text.scorer",
    "SentimentModel": "truescore.text.sentiment",
    "compute_features": "truescore.text.features",
    "evaluate_files": "truescore.text.training",
    "train_from_files": "truescore.text.training",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'truescore.text' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
