"""Manipulation resistance: detectors, one suspicion per review and per account, and rings.

Modules, one detector each (the math in each docstring): :mod:`.behaviour` (what review filters look
at), :mod:`.fraudar` (camouflage-resistant dense blocks), :mod:`.rings` (lockstep rings over several
targets), :mod:`.cohort` (accounts created together), :mod:`.changepoint` (per-item level shifts),
:mod:`.duplicates` (near-duplicate texts, MinHash) and :mod:`.suspicion` (the combination).
:mod:`.runner` reads a store and writes ``review_scores.suspicion``, ``user_reliability.suspicion`` and
the ``rings`` table. See docs/integrity.md.
"""

from truescore.integrity._common import IntegrityInputs, percentile_rank
from truescore.integrity.behaviour import BehaviourScores, behaviour_scores
from truescore.integrity.changepoint import ChangePoints, change_points
from truescore.integrity.cohort import CohortScores, cohort_concentration
from truescore.integrity.duplicates import Duplicates, near_duplicates
from truescore.integrity.fraudar import DenseBlock, column_weights, peel
from truescore.integrity.rings import Ring, RingDetection, detect_rings
from truescore.integrity.suspicion import DETECTORS, IntegrityResult, integrity_scores

__all__ = [
    "DETECTORS",
    "BehaviourScores",
    "ChangePoints",
    "CohortScores",
    "DenseBlock",
    "Duplicates",
    "IntegrityInputs",
    "IntegrityResult",
    "Ring",
    "RingDetection",
    "behaviour_scores",
    "change_points",
    "cohort_concentration",
    "column_weights",
    "detect_rings",
    "integrity_scores",
    "near_duplicates",
    "peel",
    "percentile_rank",
]
