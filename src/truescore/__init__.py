"""truescore: honest product ratings.

Three engines over one event store:

- :mod:`truescore.reliability`: item quality and rater reliability (seed 000),
- :mod:`truescore.trust`: per-observer trust-weighted ratings (seed 003, QRP-0001/0002),
- :mod:`truescore.text`: review quality, fake probability and sentiment (seed 004),

fused by :mod:`truescore.ranking` into one score per product; :mod:`truescore.jobs` runs them over a
:class:`~truescore.store.Store` (fit, score, rank, report, erase).
"""

from truescore.config import ConfigError, Settings, get_settings, load_settings
from truescore.domain import (
    Flag,
    FlagReason,
    Item,
    RatingSnapshot,
    Review,
    TrustEdge,
    User,
    UserRole,
    Vote,
)
from truescore.errors import MissingResultError, StaleResultError, TruescoreError

__version__ = "0.1.0"

# the engines load on first use, so `import truescore` (and the CLI's start-up) stays light
_LAZY = {
    "Store": ("truescore.store", "Store"),
    "fit": ("truescore.reliability", "fit"),
    "Rater": ("truescore.trust", "Rater"),
    "rank_store": ("truescore.jobs", "rank_store"),
    "run_fit": ("truescore.jobs", "run_fit"),
    "rater_from_store": ("truescore.jobs", "rater_from_store"),
    "rank_frames": ("truescore.ranking", "rank_frames"),
    "generate": ("truescore.synth", "generate"),
    "SynthConfig": ("truescore.synth", "SynthConfig"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'truescore' has no attribute {name!r}")

__all__ = [
    "ConfigError",
    "Flag",
    "FlagReason",
    "Item",
    "MissingResultError",
    "Rater",
    "RatingSnapshot",
    "Review",
    "Settings",
    "StaleResultError",
    "Store",
    "SynthConfig",
    "TruescoreError",
    "TrustEdge",
    "User",
    "UserRole",
    "Vote",
    "__version__",
    "fit",
    "generate",
    "get_settings",
    "load_settings",
    "rank_frames",
    "rank_store",
    "rater_from_store",
    "run_fit",
]
