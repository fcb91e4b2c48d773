"""truescore: honest product ratings.

Three engines over one event store:

- :mod:`truescore.reliability`: item quality and rater reliability (seed 000),
- :mod:`truescore.trust`: per-observer trust-weighted ratings (seed 003, QRP-0001/0002),
- :mod:`truescore.text`: review quality, fake probability and sentiment (seed 004),

fused by :mod:`truescore.ranking` into one score per product.
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

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Flag",
    "FlagReason",
    "Item",
    "RatingSnapshot",
    "Review",
    "Settings",
    "TrustEdge",
    "User",
    "UserRole",
    "Vote",
    "__version__",
    "get_settings",
    "load_settings",
]
