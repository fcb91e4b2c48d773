"""Fusion and ranking: one trustworthy score per product, and the love score.

:func:`fuse` combines the reliability, text and trust engines into a posterior per item
(:mod:`.fusion`); :func:`love_scores` computes seed 004's love score (:mod:`.love`);
:func:`rank_frames` runs the whole pipeline over event frames (:mod:`.pipeline`; over a store, the rank
job :func:`truescore.jobs.rank_store` reads the stored results and calls it): a global step
(:func:`ranking_inputs`, :func:`fusion_context`) and a per-item kernel (:func:`rank_items`,
:func:`fuse_items`) that ``truescore spark rank`` runs item by item. The math is in
docs/ranking.md.
"""

from truescore.integrity.bursts import burst_damping
from truescore.ranking.fusion import (
    FusedQuality,
    FusionContext,
    FusionInputs,
    ItemRows,
    ReviewWeight,
    fuse,
    fuse_items,
    fusion_context,
)
from truescore.ranking.love import LoveInputs, LoveScore, love_scores, tier_of
from truescore.ranking.pipeline import (
    MODEL_VERSION,
    ProductRanking,
    RankContext,
    RankingResult,
    rank_frames,
    rank_items,
    ranking_inputs,
)

__all__ = [
    "MODEL_VERSION",
    "FusedQuality",
    "FusionContext",
    "FusionInputs",
    "ItemRows",
    "LoveInputs",
    "LoveScore",
    "ProductRanking",
    "RankContext",
    "RankingResult",
    "ReviewWeight",
    "burst_damping",
    "fuse",
    "fuse_items",
    "fusion_context",
    "love_scores",
    "rank_frames",
    "rank_items",
    "ranking_inputs",
    "tier_of",
]
