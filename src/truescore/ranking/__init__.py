"""Fusion and ranking: one trustworthy score per product, and the love score.

:func:`fuse` combines the reliability, text and trust engines into a posterior per item
(:mod:`.fusion`); :func:`love_scores` computes seed 004's love score (:mod:`.love`);
:func:`rank_store` / :func:`rank_frames` run the whole pipeline (:mod:`.pipeline`). The math is in
docs/ranking.md.
"""

from truescore.ranking.fusion import FusedQuality, FusionInputs, ReviewWeight, burst_damping, fuse
from truescore.ranking.love import LoveInputs, LoveScore, love_scores, tier_of
from truescore.ranking.pipeline import MODEL_VERSION, ProductRanking, RankingResult, rank_frames, rank_store

__all__ = [
    "MODEL_VERSION",
    "FusedQuality",
    "FusionInputs",
    "LoveInputs",
    "LoveScore",
    "ProductRanking",
    "RankingResult",
    "ReviewWeight",
    "burst_damping",
    "fuse",
    "love_scores",
    "rank_frames",
    "rank_store",
    "tier_of",
]
