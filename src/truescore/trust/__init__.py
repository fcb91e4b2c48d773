"""Per-observer trust-weighted ratings (seed 003: QRP-0001 and QRP-0002).

- :mod:`~truescore.trust.graph`: topic-scoped CSR trust graph, exact bounded-depth best paths;
- :mod:`~truescore.trust.factors`: the T, H, A, R factors and the QRP-0002 statistics;
- :mod:`~truescore.trust.rater`: :class:`Rater` (``effective_rating``, ``anonymous_baseline_rating``);
- :mod:`~truescore.trust.personal`: the observer's personal estimate ``for_you`` (issue 13);
- :mod:`~truescore.trust.weights`, :mod:`~truescore.trust.assemble`: the weights of a request and the
  result built from them; :mod:`~truescore.trust.cache`: the LRU + TTL cache; :mod:`~truescore.trust.clock`;
- :mod:`~truescore.trust.reference`: the Quidnug node's breadth-first trust query, for comparison.

See ``docs/trust.md`` for the math, the algorithm and every parameter.
"""

from truescore.trust.cache import TTLCache
from truescore.trust.clock import parse_at
from truescore.trust.graph import BestPaths, DomainGraph, NodeIndex, TrustGraph, best_paths
from truescore.trust.index import ReviewIndex
from truescore.trust.personal import PersonalEstimate, PersonalModel
from truescore.trust.rater import CacheStats, Rater
from truescore.trust.reference import ReferenceAnswer, quidnug_trust
from truescore.trust.results import (
    ReviewContribution,
    TrustAnswer,
    WeightedRatingResult,
    aggregate_rating_jsonld,
)
from truescore.trust.topics import topic_chain

__all__ = [
    "BestPaths",
    "CacheStats",
    "DomainGraph",
    "NodeIndex",
    "PersonalEstimate",
    "PersonalModel",
    "Rater",
    "ReferenceAnswer",
    "ReviewContribution",
    "ReviewIndex",
    "TTLCache",
    "TrustAnswer",
    "TrustGraph",
    "WeightedRatingResult",
    "aggregate_rating_jsonld",
    "best_paths",
    "parse_at",
    "quidnug_trust",
    "topic_chain",
]
