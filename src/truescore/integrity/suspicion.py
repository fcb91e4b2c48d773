"""One suspicion score per review and per account, in [0, 1], with the reasons behind it.

Two kinds of evidence are combined, both unsupervised (no labels are needed, so it works on any store):

- the **behavioural score** ``b`` (:mod:`~truescore.integrity.behaviour`): a rank-normalised average of
  the features review filters use, whose order separates typical from atypical accounts but which
  never proves anything on its own;
- the **detectors' evidence** ``e_k`` in [0, 1] (rings, aged cohorts, change points, near-duplicate
  texts, bursts), each zero unless its own significance test fires, and each weighted by its rarity in
  the store (:func:`rarity_weight`: full weight when it fires on at most ``detector_rare_share`` of the
  reviews, none from ``detector_common_share`` on). They are joined by a noisy-OR,
  ``E = 1 - prod_k (1 - rho_k e_k)``.

For review ``j`` by account ``u``:

    suspicion_j = w b_j + (1 - w) E_j,    w = behaviour_weight (0.4)

where ``b_j`` is :func:`inherited_review_score`: the review's own behavioural percentiles averaged
with the percentile of its author's account *suspicion* (below), so ring and cohort membership
reach the member's other reviews too,

with ``e_ring`` the ring's strength for a member's rating of a ring target, ``e_cohort`` the cohort
evidence, ``e_change = change evidence x b_u`` and ``e_burst = (1 - expected/count) x b_u`` for a
rating in a significant burst of its item (count >= 5 and count > expected + 4 sqrt(expected); the
``b_u`` factor spares ordinary accounts caught in a launch-day rush and items that genuinely change),
``e_dup = b_u`` for a near-duplicate text (honest reviewers do share stock texts; on the synthetic
marketplace, whose honest texts come from a small grammar, 15% of honest accounts share one with two
others on some item, so a shared text alone is not enough). The account's behavioural score ``b_u``
gives each family of features one vote (activity, disagreement, extremity; weights in
:func:`~truescore.integrity.behaviour.account_weights`). For account ``u``:

    suspicion_u = w b_u + (1 - w) E_u,   E_u = 1 - prod_k (1 - e_k,u),

where ``e_k,u`` is the largest evidence of the account's reviews for ring and cohort membership
(properties of the account: one ring rating makes a member) and the mean over its reviews for change
points, bursts and near-duplicates (patterns of single reviews); ring members get their ring's strength.

Since ``b <= 1``, behaviour alone reaches at most ``w``: with the default threshold 0.6 a review or
account is *flagged* only when a detector contributes (``E = 1`` always flags; ``E = 1/2`` flags when
the behaviour is atypical too, ``b >= 3/4``), so an honest platform is not flagged for having many
one-review accounts, while the ranking by suspicion still uses the behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from truescore.config import IntegritySettings, RankingSettings
from truescore.integrity._common import FloatArray, IntegrityInputs, percentile_rank, weighted_percentile_mean
from truescore.integrity.behaviour import REVIEW_WEIGHTS, BehaviourScores, behaviour_scores
from truescore.integrity.bursts import burst_damping
from truescore.integrity.changepoint import ChangePoints, change_points
from truescore.integrity.cohort import CohortScores, cohort_concentration
from truescore.integrity.duplicates import Duplicates, near_duplicates
from truescore.integrity.rings import RingDetection, detect_rings

__all__ = ["ACCOUNT_FEATURE_WORDS", "DETECTORS", "REVIEW_FEATURE_WORDS", "IntegrityResult", "integrity_scores",
           "rarity_weight"]

DETECTORS = ("ring", "cohort", "change", "duplicate", "burst")
#: detectors whose evidence is a property of the account (its strongest review counts); the others are
#: patterns of single reviews (their mean over the account's reviews counts)
_ACCOUNT_MAX = ("ring", "cohort")

#: the words of an account feature (in an account's reasons and, as the author's, in a review's)
ACCOUNT_FEATURE_WORDS = {
    "few_reviews": "few reviews", "busiest_day_share": "most of its reviews on one day",
    "short_tenure": "short tenure", "rating_deviation": "its ratings far from other raters'",
    "extremity": "extreme ratings", "low_reliability": "low reliability",
}
#: the words of a review's own feature
REVIEW_FEATURE_WORDS = {
    "rating_deviation": "far from the item's other raters", "extremity": "an extreme rating",
    "item_day_burst": "on the item's busiest day",
}


@dataclass(slots=True)
class IntegrityResult:
    """Suspicion of every review and account, the evidence of each detector, and the rings.

    Attributes
    ----------
    review_suspicion, account_suspicion : float arrays in [0, 1]
    review_behaviour : float array in [0, 1]
        ``b_j``: the review's own features with its author's account suspicion (order only).
    review_evidence, account_evidence : dict of float arrays
        Per detector (:data:`DETECTORS`), in [0, 1].
    behaviour : BehaviourScores
    rings : RingDetection
    cohort, changes, duplicates : the detectors' full outputs
    flag_threshold : float
    """

    review_suspicion: FloatArray
    account_suspicion: FloatArray
    review_behaviour: FloatArray
    review_evidence: dict[str, FloatArray]
    account_evidence: dict[str, FloatArray]
    behaviour: BehaviourScores
    rings: RingDetection
    cohort: CohortScores
    changes: ChangePoints
    duplicates: Duplicates
    flag_threshold: float
    inputs: IntegrityInputs

    @property
    def flagged_reviews(self) -> np.ndarray:
        return self.review_suspicion >= self.flag_threshold

    @property
    def flagged_accounts(self) -> np.ndarray:
        return self.account_suspicion >= self.flag_threshold

    def _weighted_account_ranks(self) -> dict[str, np.ndarray]:
        """The account features that carry weight in the score (only those are given as reasons)."""
        w = self.behaviour.account_weights
        return {k: v for k, v in self.behaviour.account_ranks.items() if w.get(k, 0.0) > 0}

    def review_reasons(self, top: int = 2) -> list[str]:
        """One line of reasons per review: the detectors that fired, then the most atypical features."""
        inp = self.inputs
        n = inp.n_ratings
        out = pd.Series([""] * n, dtype=object)
        ring_desc = {r.ring_id: f"part of a {r.describe()}" for r in self.rings.rings}
        rr = self.rings.review_ring
        for rid, text in ring_desc.items():
            sel = rr == rid
            out[sel] = out[sel] + text + "; "
        ev = self.review_evidence
        for key, text in (("cohort", "account from a batch created together"),
                          ("change", "after a change point of the item's ratings"),
                          ("duplicate", "near-duplicate text posted by other accounts"),
                          ("burst", "part of a burst")):
            sel = ev[key] > 0
            out[sel] = out[sel] + text + "; "
        ranks = {**{f"a:{k}": v[inp.user_idx] for k, v in self._weighted_account_ranks().items()},
                 **{f"r:{k}": v for k, v in self.behaviour.review_ranks.items()}}
        _add_top_features(out, ranks, top, _review_feature_word)
        return [_join_unique(s) for s in out.tolist()]

    def account_reasons(self, top: int = 2) -> list[str]:
        """One line of reasons per account."""
        n = self.inputs.n_users
        out = pd.Series([""] * n, dtype=object)
        for r in self.rings.rings:
            sel = self.rings.user_ring == r.ring_id
            out[sel] = out[sel] + f"member of a {r.describe()}; "
        for key, text in (("cohort", "created in a batch used together"),
                          ("change", "drives an item's change point"),
                          ("duplicate", "posts near-duplicate texts"), ("burst", "reviews in bursts")):
            sel = self.account_evidence[key] > 0.2
            out[sel] = out[sel] + text + "; "
        _add_top_features(out, self._weighted_account_ranks(), top, ACCOUNT_FEATURE_WORDS.__getitem__)
        return [_join_unique(s) for s in out.tolist()]


def _review_feature_word(name: str) -> str:
    """``a:<feature>`` is the author's account feature, ``r:<feature>`` the review's own."""
    level, feature = name.split(":", 1)
    return (ACCOUNT_FEATURE_WORDS if level == "a" else REVIEW_FEATURE_WORDS)[feature]


def _join_unique(line: str) -> str:
    """The reasons of one row, each once, in the order they were added."""
    parts = [p for p in line.split("; ") if p.strip()]
    return "; ".join(dict.fromkeys(p.strip() for p in parts))


def _add_top_features(out: pd.Series, ranks: dict[str, np.ndarray], top: int, word: Callable[[str], str]) -> None:
    """Append to each row of ``out`` the words of its ``top`` highest-ranked behaviour features, each only
    when its rank-normalised value is at least 0.9 (among the most extreme tenth)."""
    names = list(ranks)
    if not names:
        return
    n = len(out)
    mat = np.column_stack([ranks[k] for k in names])
    order = np.argsort(-mat, axis=1)[:, :top]
    for slot in range(min(top, len(names))):
        col = order[:, slot]
        val = mat[np.arange(n), col]
        for c, name in enumerate(names):
            sel = (col == c) & (val >= 0.9)
            if sel.any():
                out[sel] = out[sel] + word(name) + "; "


def rarity_weight(evidence: FloatArray, rare_share: float, common_share: float) -> float:
    """The weight of a detector by how often it fires: with ``f`` the share of reviews where its evidence
    is positive,

        weight = clip((common_share - f) / (common_share - rare_share), 0, 1),

    full below ``rare_share``, none from ``common_share`` on. A review filter's evidence is of the unusual; a
    pattern most of a store's reviews show ("after a change point" on a platform whose items all changed)
    describes the store, and with full weight it would drown the detectors that separate (issue 21: such
    reasons fired on most reviews of a review site with no lift)."""
    if evidence.size == 0:
        return 1.0
    fires = float(np.mean(evidence > 0.0))
    return float(np.clip((common_share - fires) / (common_share - rare_share), 0.0, 1.0))


def _burst_evidence(inp: IntegrityInputs, ranking: RankingSettings) -> FloatArray:
    """``1 - beta`` for ratings in a significant burst of their item (the fusion's rule, :mod:`.bursts`,
    with the ranking settings' burst parameters)."""
    return 1.0 - burst_damping(inp.item_idx, inp.created_at, inp.n_items, ranking)


def inherited_review_score(account_suspicion: FloatArray, beh: BehaviourScores, user_idx: np.ndarray) -> FloatArray:
    """``b_j``: a review inherits its author's account suspicion, beside its own features.

    Review filters score a review by its author first (SpEagle's user prior feeds the review's; Rayana &
    Akoglu KDD 2015) and then by what the review itself does. The author's *suspicion* (behaviour and
    the account's detector evidence: a ring member's camouflage reviews and its campaign reviews come
    from the same account) replaces the behavioural account score ``b_u`` in the review's mean:

        b_j = p( (W_a p(s_u) + sum_f W_f p_f(x_j)) / (W_a + sum_f W_f) )

    with ``p`` the mid-rank percentile over accounts (``s_u``) or reviews, ``W`` :data:`REVIEW_WEIGHTS`
    (``account`` 3, rating deviation, extremity and item-day burst 1 each; unchanged).
    """
    has = np.bincount(user_idx, minlength=account_suspicion.shape[0]) > 0
    p_acc = np.zeros(account_suspicion.shape[0])
    p_acc[has] = percentile_rank(account_suspicion[has])
    ranks = {"account": p_acc[user_idx], **beh.review_ranks}
    return percentile_rank(weighted_percentile_mean(ranks, REVIEW_WEIGHTS))


def integrity_scores(inp: IntegrityInputs, settings: IntegritySettings | None = None,
                     ranking: RankingSettings | None = None) -> IntegrityResult:
    """Run every detector and combine them (see the module docstring).

    ``settings`` is the integrity section, ``ranking`` the ranking section whose burst parameters the
    burst evidence shares with the fusion (:mod:`.bursts`); each defaults to the documented defaults (the
    jobs pass the configured sections)."""
    s = settings if settings is not None else IntegritySettings()
    burst_settings = ranking if ranking is not None else RankingSettings()
    beh = behaviour_scores(inp, burst_window_days=s.burst_day_window_days,
                           disagreement_weight=s.disagreement_weight, extremity_weight=s.extremity_weight)
    rings = detect_rings(inp, max_user_ratings=s.ring_max_user_ratings, min_members=s.ring_min_members,
                         min_lift=s.ring_min_lift, min_gap=s.ring_min_gap, eps=s.ring_peel_eps,
                         max_rings=s.ring_max_rings, account_weight=np.clip(1.0 - beh.detector_prior, 0.05, 1.0),
                         max_window_days=s.ring_max_window_days, consensus_z_min=s.consensus_z)
    cohort = cohort_concentration(inp, bucket_days=s.cohort_bucket_days, min_accounts=s.cohort_min_accounts,
                                  min_lift=s.cohort_min_lift, min_age_days=s.cohort_min_age_days,
                                  consensus_z=s.consensus_z,
                                  account_weight=np.clip(1.0 - beh.detector_prior, 0.05, 1.0))
    changes = change_points(inp, z0=s.change_z, min_ratings=s.change_min_ratings)
    dups = near_duplicates(inp, threshold=s.duplicate_threshold, min_accounts=s.duplicate_min_accounts,
                           min_words=s.duplicate_min_words, min_lift=s.duplicate_min_lift)
    b_user = beh.account[inp.user_idx]
    ev = {
        "ring": rings.review_evidence,
        "cohort": cohort.evidence,
        "change": changes.evidence * b_user,
        "duplicate": dups.evidence * b_user,
        "burst": _burst_evidence(inp, burst_settings) * b_user,
    }
    ev = {k: v * rarity_weight(v, s.detector_rare_share, s.detector_common_share) for k, v in ev.items()}
    keep = np.ones(inp.n_ratings)
    for v in ev.values():
        keep *= 1.0 - np.clip(v, 0.0, 1.0)
    e_review = 1.0 - keep
    n_u = np.maximum(np.bincount(inp.user_idx, minlength=inp.n_users), 1).astype(np.float64)
    acc_ev = {}
    for k, v in ev.items():
        if k in _ACCOUNT_MAX:
            acc_ev[k] = np.zeros(inp.n_users)
            np.maximum.at(acc_ev[k], inp.user_idx, v)
        else:
            acc_ev[k] = np.bincount(inp.user_idx, weights=v, minlength=inp.n_users) / n_u
    acc_ev["ring"] = np.maximum(acc_ev["ring"], rings.user_evidence)
    keep_u = np.ones(inp.n_users)
    for v in acc_ev.values():
        keep_u *= 1.0 - np.clip(v, 0.0, 1.0)
    w = s.behaviour_weight
    account = np.clip(w * beh.account + (1.0 - w) * (1.0 - keep_u), 0.0, 1.0)
    review_b = inherited_review_score(account, beh, inp.user_idx)
    review = np.clip(w * review_b + (1.0 - w) * e_review, 0.0, 1.0)
    return IntegrityResult(review_suspicion=review, account_suspicion=account, review_behaviour=review_b,
                           review_evidence=ev,
                           account_evidence=acc_ev, behaviour=beh, rings=rings, cohort=cohort, changes=changes,
                           duplicates=dups, flag_threshold=s.flag_threshold, inputs=inp)
