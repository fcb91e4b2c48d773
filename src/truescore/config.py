"""One configuration object for every tunable of truescore.

Every parameter has a default, an allowed range and a docstring, in exactly one place: this module.
Values come, in increasing priority, from the defaults below, a TOML file, and ``TRUESCORE_*``
environment variables (nested sections use a double underscore, e.g.
``TRUESCORE_TRUST__RECENCY_HALF_LIFE_DAYS=365``).

The TOML file is ``$TRUESCORE_CONFIG`` if set, else ``./truescore.toml`` if it exists. Its top level holds
the plain settings and one table per section::

    database_url = "sqlite:///truescore.db"

    [trust]
    recency_half_life_days = 365
    topic_half_life_days = { "reviews.public.restaurants" = 180 }

An out-of-range value is refused at load with :class:`ConfigError`, whose message names the parameter
and its allowed range.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from truescore.domain import MAX_RATING_MAGNITUDE, topic_within
from truescore.errors import TruescoreError

__all__ = [
    "LOWER_BOUND_Z",
    "ApiSettings",
    "ConfigError",
    "IntegritySettings",
    "ModerationSettings",
    "PersonalSettings",
    "RankingSettings",
    "ReliabilitySettings",
    "Settings",
    "TextSettings",
    "TrustSettings",
    "default_settings",
    "get_settings",
    "load_settings",
]

DEFAULT_DATABASE_URL = "sqlite:///truescore.db"

#: The rating scales a platform accepts unless configured otherwise: the common ones (stars 1..5, 1..10,
#: 0..10, 0..5, 1..7 Likert, 0..100 percent, half stars 0.5..5, thumbs 0..1) and every reference preset's
#: (store/datasets.py: bitcoin-otc -10..10, crowd-emotion -100..100, filmtrust 0.5..4, Amazon 1..5).
DEFAULT_ALLOWED_SCALES: tuple[tuple[float, float], ...] = (
    (1.0, 5.0), (1.0, 10.0), (0.0, 10.0), (0.0, 5.0), (1.0, 7.0), (0.0, 100.0), (0.5, 5.0), (0.0, 1.0),
    (-10.0, 10.0), (-100.0, 100.0), (0.5, 4.0),
)
#: Most scales one platform may list (each review is matched against every one of them).
MAX_ALLOWED_SCALES = 100


class ConfigError(TruescoreError, ValueError):
    """A configuration value is missing, malformed or outside its allowed range."""


#: ``z`` of the one-sided 90% normal bound, ``Phi^-1(0.90)``: the default of ``ranking.lower_bound_z`` and of
#: every "90% lower bound" a result reports
LOWER_BOUND_Z = 1.2816


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class TrustSettings(_Section):
    """Seed 003's tuning table (QRP-0001/0002) and the protocol parts the reference leaves out."""

    recency_half_life_days: float = Field(
        730.0, ge=30, le=3650, description="R factor: exp(-age/half_life) time constant, days."
    )
    topic_half_life_days: dict[str, float] = Field(
        default_factory=dict,
        description="Per-topic half-life overrides (longest matching prefix wins), each in 30..3650 days.",
    )
    activity_saturation: float = Field(
        50.0, ge=10, le=1000, description="A factor: number of reviews in 24 months at which A reaches 1."
    )
    activity_window_days: float = Field(
        730.0, ge=30, le=3650, description="A factor: look-back window for counting a reviewer's reviews, days."
    )
    topic_inheritance_decay: float = Field(
        0.8, ge=0.5, le=1.0, description="T factor: multiplier per step up the topic tree."
    )
    min_weight: float = Field(
        0.01, ge=0.0, le=0.2, description="Reviews whose weight w = T*H*A*R is below this do not contribute."
    )
    max_depth_t: int = Field(5, ge=1, le=10, description="Maximum trust-path length (edges) for T.")
    max_depth_h: int = Field(3, ge=1, le=10, description="Maximum trust-path length for voter trust inside H.")
    helpfulness_neutral: float = Field(
        0.5, ge=0.3, le=0.7, description="H when the reviewer's prior reviews have no trusted votes."
    )
    helpfulness_floor: float = Field(0.1, ge=0.0, le=0.5, description="Lower bound of H when votes exist.")
    recency_floor: float = Field(0.3, ge=0.0, le=1.0, description="R never goes below this.")
    confidence_full_weight: float = Field(
        5.0, gt=0, le=1000, description="QRP-0002: total weight at which confidence saturates."
    )
    confidence_full_contributors: int = Field(
        10, ge=1, le=10000, description="QRP-0002: contributors at which confidence saturates."
    )
    polarization_split_threshold: float = Field(
        0.3, ge=0.0, le=1.0, description="Polarization at or above which trusted sources are shown as 'split'."
    )
    baseline_observer_id: str = Field(
        "operator", min_length=1, max_length=256, description="QRP-0002 baseline observer (operator root)."
    )
    moderator_trust_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Observer trust in a moderator at which its FLAGs count."
    )
    moderation_domain: str = Field("reviews.moderation", description="Trust domain of moderators.")
    flag_penalty_per_severity: float = Field(
        0.25, ge=0.0, le=1.0, description="Weight multiplier loss per unit of flag severity (1 - p*s, floored at 0)."
    )
    verified_purchase_bootstrap: float = Field(
        0.3, ge=0.0, le=1.0, description="Verified purchase raises T to at least this x trust in the retailer."
    )
    edge_decay_half_life_days: float | None = Field(
        None, ge=30, le=36500, description="Optional decay of old trust edges (None = off)."
    )
    cache_ttl_seconds: float = Field(300.0, ge=0, le=86400, description="Per-(observer, domain) search cache TTL.")
    cache_max_entries: int = Field(
        4096, ge=0, le=10_000_000, description="Most cached (observer, domain) searches kept (LRU); 0 = no cache."
    )

    @field_validator("topic_half_life_days")
    @classmethod
    def _check_topic_half_lives(cls, value: dict[str, float]) -> dict[str, float]:
        for topic, days in value.items():
            if not 30 <= float(days) <= 3650:
                raise ValueError(f"topic_half_life_days[{topic!r}] = {days} is outside 30..3650")
        return value

    def half_life_for(self, topic: str) -> float:
        """Recency half-life for ``topic``: the longest configured prefix, else the default."""
        best, best_len = self.recency_half_life_days, -1
        for prefix, days in self.topic_half_life_days.items():
            if topic_within(topic, prefix) and len(prefix) > best_len:
                best, best_len = float(days), len(prefix)
        return best


class ReliabilitySettings(_Section):
    """Seed 000's reliability model: r_ui = x_i + b_u + e, e ~ N(0, 1/alpha_u) (docs/reliability.md).

    All values are on the normalised rating scale [0, 1]. A hyperparameter set to None is estimated by
    empirical Bayes between sweeps (when ``empirical_bayes`` is true). The defaults are weakly informative
    priors fixed on principle (docs/reliability.md, "Priors"), not tuned on any labels.
    """

    backend: str = Field("vb", pattern="^(vb|torch)$", description="'vb' (closed form) or 'torch' (seed's model).")
    weighting: str = Field(
        "cavity",
        pattern="^(cavity|meanfield)$",
        description="Weight of rater u in item i's update: 'cavity' = E[alpha_u] from u's OTHER ratings "
        "(a track record; fresh accounts count a0/b0), 'meanfield' = plain mean-field E[alpha_u].",
    )
    use_bias: bool = Field(False, description="Fit a per-rater bias b_u (harsh/lenient raters).")
    max_iter: int = Field(200, ge=1, le=10000, description="Maximum VB sweeps.")
    tol: float = Field(
        1e-5, gt=0, le=1e-1, description="Stop when the largest change of an item mean (normalised) is below this."
    )
    empirical_bayes: bool = Field(
        True, description="Re-estimate the hyperparameters left as None between sweeps (else None = fixed default)."
    )
    mu0: float | None = Field(None, ge=0.0, le=1.0, description="Prior mean of item quality; None = EB.")
    tau0: float | None = Field(
        1.0, gt=0, le=1e6, description="Prior precision of item quality (1 = sd of the whole scale); None = EB."
    )
    a0: float | None = Field(
        0.1, gt=0, le=1e6, description="Gamma shape of the rater precision prior (2*a0 pseudo-ratings); None = EB."
    )
    b0: float | None = Field(
        0.025,
        gt=0,
        le=1e6,
        description="Gamma rate of the rater precision prior (a0/b0 = 4: an unknown rater's noise sd is half "
        "the scale); None = EB.",
    )
    tau_b: float | None = Field(None, gt=0, le=1e8, description="Prior precision of rater bias; None = EB.")
    credible_level: float = Field(0.9, gt=0, lt=1, description="Mass of the reported reliability interval.")
    track_elbo: bool = Field(False, description="Record the ELBO after every sweep (costs one extra pass).")
    torch_epochs: int = Field(500, ge=1, le=100000, description="Seed recipe: epochs.")
    torch_batch_size: int = Field(16, ge=1, le=1_000_000, description="Seed recipe: batch size.")
    torch_lr: float = Field(1e-2, gt=0, le=10, description="Seed recipe: Adam learning rate.")
    torch_reg: float = Field(1e-3, ge=0, le=10, description="Seed recipe: L2 weight on x and log_alpha.")
    torch_threads: int = Field(1, ge=1, le=256, description="Seed recipe: torch CPU threads (1 = polite).")
    online_budget: int = Field(
        16, ge=0, le=1_000_000, description="Online: most of the rater's other items re-solved per new rating."
    )
    online_refresh: int = Field(
        2, ge=0, le=1_000_000, description="Online: items re-solved round-robin per new rating (rolling sweep)."
    )
    online_tol: float = Field(
        1e-4, ge=0, le=1.0, description="Online: re-solve a neighbour item only if its estimated change exceeds this."
    )
    online_bulk_ratio: float = Field(
        2000.0, ge=1, le=1e9,
        description="Online: a write of n >= 2 ratings is merged by one full sweep when n * this >= the ratings held "
                    "(a sweep costs about as much per rating held as an update per rating written / this).",
    )
    online_full_sweep_every: int = Field(
        100_000, ge=1, le=10**9, description="Online: ratings between periodic full sweeps that bound drift."
    )
    random_state: int = Field(0, ge=0, description="Seed for stochastic backends.")

    def with_overrides(self, **overrides: Any) -> ReliabilitySettings:
        """A copy with ``overrides`` applied and validated.

        Raises
        ------
        ValueError
            Naming each refused parameter, its value and the reason.
        """
        data = self.model_dump()
        data.update(overrides)
        try:
            return ReliabilitySettings(**data)
        except ValidationError as exc:
            parts = [f"{'.'.join(map(str, e['loc']))} = {e.get('input')!r}: {e['msg']}" for e in exc.errors()]
            raise ValueError("invalid reliability setting: " + "; ".join(parts)) from None


class TextSettings(_Section):
    """Review intelligence (seed 004): quality, fake probability, sentiment."""

    fake_transformer_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of the transformer model in the fake ensemble (seed: 0.5)."
    )
    batch_size: int = Field(256, ge=1, le=100_000, description="Reviews per scoring batch.")
    max_text_chars: int = Field(20_000, ge=100, le=1_000_000, description="Longer texts are truncated.")
    random_state: int = Field(0, ge=0, description="Seed for training.")
    max_tokens: int = Field(
        128, ge=16, le=512, description="Encoder truncation in word pieces (MiniLM was trained with 128)."
    )
    encoder_dtype: str = Field(
        "auto",
        pattern="^(auto|bfloat16|float32)$",
        description="Encoder weight precision; 'auto' = bfloat16 where the CPU has native bf16, else float32.",
    )
    encode_batch_size: int = Field(32, ge=1, le=4096, description="Texts per encoder forward pass.")
    encoder_workers: int = Field(
        0, ge=0, le=64, description="Encoder batches run concurrently, one thread each; 0 = one per core."
    )
    models_dir: Path | None = Field(
        None, description="Folder of trained text artifacts; None = the ones shipped in truescore/text/models."
    )
    quality_high: float = Field(0.7, ge=0.0, le=1.0, description="Quality at or above which a review is 'high'.")
    quality_low: float = Field(0.3, ge=0.0, le=1.0, description="Quality at or below which a review is 'low'.")
    calibrate_sentiment: bool = Field(
        True, description="truescore score fits the sentiment's calibration per topic from the store's stars "
                          "(4-5 of 5 positive, 1-2 negative; docs/text.md); False = the shipped head as it is."
    )
    calibration_min_labels: int = Field(
        50, ge=1, le=10**9, description="Star-labelled reviews a calibration needs (the store's, a topic's)."
    )
    calibration_prior_strength: float = Field(
        10.0, ge=0.0, le=1e6,
        description="Pull of the shipped head (for the store) and of the store's fit (for a topic), in labels.",
    )


class RankingSettings(_Section):
    """Fusion of the three engines into one quality per product, the love score and the ranking.

    A rating's precision in the fused estimate is ``alpha_ref * rho * kappa * a * tau * beta * w``
    (docs/ranking.md): rater reliability ``rho``, track record ``kappa``, authenticity ``a``, trust
    ``tau``, burst damping ``beta`` and a robust (Student-t) weight ``w``.
    """

    reliability_floor: float = Field(0.05, gt=0, le=1.0, description="Lowest relative reliability rho.")
    reliability_cap: float = Field(
        3.0, ge=1.0, le=100.0, description="Highest relative reliability rho (a too-perfect rater gains no more)."
    )
    unknown_rater_reliability: float = Field(
        1.0, ge=0.0, le=10.0, description="rho of a rater the reliability engine has not fitted (1 = typical)."
    )
    track_record_n0: float = Field(
        3.0, ge=0.0, le=1000.0, description="kappa = n/(n+n0), n = the rater's ratings of other items."
    )
    track_record_floor: float = Field(
        0.01, ge=0.0, le=1.0, description="kappa of a rater with no other ratings (a fresh account)."
    )
    unscored_fake_probability: float = Field(
        0.0, ge=0.0, le=1.0, description="Fake probability assumed for a review the text engine has not scored."
    )
    trust_unknown: float = Field(
        0.5, ge=0.0, le=1.0, description="tau of a reviewer the observer has no trust path to (tau = t0 + (1-t0) T)."
    )
    burst_window_hours: float = Field(48.0, gt=0, le=24 * 365, description="Window of the burst detector.")
    burst_min_ratings: int = Field(5, ge=2, le=100_000, description="Smallest number of ratings that is a burst.")
    burst_z: float = Field(
        4.0, ge=0.0, le=100.0, description="A window is a burst when count > expected + z*sqrt(expected)."
    )
    robust_nu: float = Field(
        4.0, gt=0, le=1000.0, description="Student-t degrees of freedom of the robust weight (large = Gaussian)."
    )
    robust_iterations: int = Field(5, ge=0, le=100, description="Reweighting passes of the robust estimate.")
    bayes_average_m: float = Field(
        5.0, ge=0.0, le=10_000.0, description="Bayesian average baseline: pseudo-ratings at the global mean."
    )
    lower_bound_z: float = Field(LOWER_BOUND_Z, ge=0.0, le=5.0,
                                 description="Rank by mean - z*sd (1.2816 = 90% lower).")
    love_weight_organic: float = Field(0.35, ge=0, le=1, description="Love score weight of organic quality.")
    love_weight_engagement: float = Field(0.15, ge=0, le=1, description="Love score weight of engagement quality.")
    love_weight_authenticity: float = Field(0.20, ge=0, le=1, description="Love score weight of authenticity.")
    love_weight_diversity: float = Field(0.15, ge=0, le=1, description="Love score weight of diversity.")
    love_weight_trend: float = Field(0.15, ge=0, le=1, description="Love score weight of trend.")
    love_prior_reviews: float = Field(
        5.0, ge=0, le=1000, description="Organic quality shrinks toward neutral 0.5 with this many pseudo-reviews."
    )
    genuine_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="A review is likely genuine when its fake probability is below this."
    )
    trend_recent_days: float = Field(180.0, ge=1, le=3650, description="Trend: reviews this recent count as recent.")
    trend_gain: float = Field(
        2.0, ge=0, le=100, description="Trend = 0.5 + 0.5 tanh(gain * (recent - older sentiment)), 0.5 = flat."
    )
    power_user_trust: float = Field(
        0.5, ge=0, le=1, description="Adjustment: baseline trust at or above which a reviewer is a trusted power user."
    )
    power_user_min_reviews: int = Field(10, ge=1, le=100_000, description="Adjustment: power users' review count.")
    power_user_boost: float = Field(5.0, ge=0, le=50, description="Love points added when >= 2 power users love it.")
    burst_penalty: float = Field(10.0, ge=0, le=50, description="Love points removed when a burst was damped.")
    flagged_penalty: float = Field(
        5.0, ge=0, le=50, description="Love points removed when moderators flagged >= 10% of its reviews."
    )
    tier_high: float = Field(70.0, ge=0, le=100, description="Love score (0-100) at or above which tier is High.")
    tier_medium: float = Field(40.0, ge=0, le=100, description="Love score at or above which tier is Medium.")
    tier_low: float = Field(15.0, ge=0, le=100, description="Love score at or above which tier is Low; below: Skip.")


class PersonalSettings(_Section):
    """The observer's personal estimate ``for_you`` (issue 13, ``truescore.trust.personal``).

    The shrinkage strengths are not here on purpose: they are empirical-Bayes estimates from the data
    (method of moments), so nothing is tuned per data set. These settings only bound the work and the
    extremes.
    """

    enabled: bool = Field(True, description="Compute for_you beside the seed's rating.")
    use_trust: bool = Field(
        True, description="Let the trusted reviewers' ratings move for_you (off: public estimate + calibration)."
    )
    pair_sample: int = Field(
        20_000,
        ge=100,
        le=10_000_000,
        description="Direct trust edges sampled (seeded) to estimate how trusted reviewers' deviations carry over.",
    )
    robust_nu: float = Field(
        4.0,
        gt=2.0,
        le=1000.0,
        description="Student-t degrees of freedom of the rating noise (as the fusion's robust_nu; large = Gaussian).",
    )
    robust_iterations: int = Field(5, ge=0, le=100, description="Reweighting passes of the robust offsets.")
    max_cached_fits: int = Field(
        4, ge=1, le=1000, description="Fits as of earlier clocks ('at') kept in memory (LRU), besides the current one."
    )
    max_hops: int = Field(5, ge=1, le=10, description="Trust-path lengths with their own shared-taste covariance.")
    hyper_refresh_events: int = Field(
        5_000,
        ge=0,
        le=1_000_000_000,
        description="Events (reviews, votes, flags) merged after which the trust covariances are re-estimated "
        "(0: on every change); until then a write refits only the offsets. The API server re-estimates them "
        "in a background rebuild (at its next store check), never on a read.",
    )
    hop_observers: int = Field(
        200, ge=1, le=100_000, description="Observers sampled (seeded) to estimate the covariance by path length."
    )
    hop_pairs: int = Field(
        100, ge=1, le=100_000, description="Users sampled per observer and path length for that estimate."
    )
    agreement_cap: float = Field(
        3.0, ge=1.0, le=100.0, description="Largest relative agreement of one trusted reviewer (1 = the average pair)."
    )
    max_shrinkage: float = Field(
        1e6, ge=1.0, le=1e12, description="Shrinkage strength used when a variance component is estimated as <= 0."
    )
    random_state: int = Field(0, ge=0, description="Seed of the trust-edge sample.")
class IntegritySettings(_Section):
    """Manipulation detection (docs/integrity.md): behaviour features, lockstep rings, cohorts, change
    points and near-duplicate texts, combined into one suspicion per review and per account.

    ``suspicion = behaviour_weight * b + (1 - behaviour_weight) * E``: ``b`` is the rank-normalised
    behavioural score (unsupervised, signs fixed on principle), ``E`` the noisy-OR of the detectors'
    evidence. Two weights of ``b`` (``disagreement_weight``, ``extremity_weight``) were chosen on the labelled
    data sets of eval/integrity_eval.py by their worst case, with leave-one-data-set-out figures beside them
    (docs/integrity.md); nothing else was tuned on labels.
    """

    behaviour_weight: float = Field(
        0.4, ge=0.0, le=1.0, description="Weight of the behavioural score b in the suspicion (the rest: detectors)."
    )
    flag_threshold: float = Field(
        0.6, gt=0.0, le=1.0, description="A review or account is flagged when its suspicion is at least this."
    )
    disagreement_weight: float = Field(
        3.0, ge=0.0, le=20.0,
        description="Weight of the disagreement features (rating deviation, low reliability) in the account's "
        "behavioural score, the activity features (few reviews, busiest-day share, short tenure) weighing 1.",
    )
    extremity_weight: float = Field(
        0.0, ge=0.0, le=20.0,
        description="Weight of the extremity feature in the account's behavioural score (activity weighing 1; "
        "0: its direction flips between platforms).",
    )
    ring_min_members: int = Field(5, ge=2, le=100_000, description="Smallest ring (accounts).")
    ring_min_lift: float = Field(
        50.0, ge=1.0, le=1e6,
        description="Two items are co-targeted when rating one makes rating the other this many times likelier "
        "(topic communities and co-purchases reach 10-30).",
    )
    ring_max_user_ratings: int = Field(
        500, ge=2, le=1_000_000, description="Accounts with more ratings are left out of the co-rating count."
    )
    ring_min_gap: float = Field(
        0.25, ge=0.0, le=1.0,
        description="Co-raters must differ from the item's other raters by this much (normalised scale) to be a ring.",
    )
    ring_max_window_days: float = Field(
        365.0, gt=0, le=36500,
        description="Lockstep: a ring's ratings of one target (central 80%) fall within this many days.",
    )
    consensus_z: float = Field(
        2.0, ge=0.0, le=100.0,
        description="A ring (on >= 2 targets) or an aged cohort must push the item against its independent "
        "raters' consensus by this z (one-sample test), so a community that agrees with everyone else is no ring.",
    )
    ring_max_rings: int = Field(200, ge=0, le=100_000, description="Most rings reported.")
    ring_peel_eps: float = Field(
        0.1, gt=0.0, le=1.0, description="FRAUDAR batch peeling: drop nodes within (1+eps) of the mean priority."
    )
    cohort_bucket_days: float = Field(14.0, gt=0, le=3650, description="Width of an account-creation cohort, days.")
    cohort_min_accounts: int = Field(5, ge=2, le=100_000, description="Smallest cohort on one item.")
    cohort_min_lift: float = Field(
        10.0, ge=1.0, le=1e6, description="A cohort is concentrated when it exceeds the platform's share this much."
    )
    cohort_min_age_days: float = Field(
        7.0, ge=0.0, le=3650, description="Only accounts at least this old at the review form aged cohorts."
    )
    change_z: float = Field(
        4.0, ge=0.0, le=100.0, description="Per-item CUSUM: a level shift is significant above this z."
    )
    change_min_ratings: int = Field(10, ge=4, le=1_000_000, description="Items with fewer ratings get no change test.")
    duplicate_threshold: float = Field(
        0.8, gt=0.0, le=1.0, description="Near-duplicate texts: estimated Jaccard of word 3-shingles at least this."
    )
    duplicate_min_accounts: int = Field(
        3, ge=2, le=100_000, description="A near-duplicate text counts when this many accounts share it on one item."
    )
    duplicate_min_lift: float = Field(
        20.0, ge=0.0, le=1e6,
        description="Near-duplicates: the text's share on the item over its share on the platform, at least.",
    )
    duplicate_min_words: int = Field(8, ge=1, le=10_000, description="Shorter texts are never near-duplicates.")
    burst_day_window_days: float = Field(1.0, gt=0, le=365, description="Window of the per-item day-burst feature.")
    fusion_evidence_floor: float = Field(
        0.02, ge=0.0, le=1.0, description="Fusion: smallest integrity factor 1 - E of a rating with detector evidence."
    )
    fusion_ring_max_share: float = Field(
        0.1, ge=0.0, le=1.0, description="A ring or cohort weighs at most this share of an item's other weight."
    )
    detector_rare_share: float = Field(
        0.1, ge=0.0, lt=1.0,
        description="A detector that fires on at most this share of the store's reviews keeps its full weight.",
    )
    detector_common_share: float = Field(
        0.5, gt=0.0, le=1.0,
        description="A detector that fires on at least this share of the store's reviews carries no weight (an "
        "anomaly that most reviews show is no anomaly); linear in between.",
    )

    @model_validator(mode="after")
    def _check_detector_shares(self) -> IntegritySettings:
        if self.detector_rare_share >= self.detector_common_share:
            raise ValueError(f"detector_rare_share ({self.detector_rare_share:g}) must be below "
                             f"detector_common_share ({self.detector_common_share:g})")
        return self


class ApiSettings(_Section):
    """The HTTP service (``truescore serve``, docs/api.md)."""

    host: str = Field("127.0.0.1", min_length=1, max_length=255, description="Bind address.")
    port: int = Field(8000, ge=1, le=65535, description="Bind port.")
    workers: int = Field(
        1, ge=1, le=64, description="Server processes; each keeps its own cached engine state (1 = one shared cache)."
    )
    access_log: bool = Field(True, description="Log every request (uvicorn's access log).")
    http: str = Field(
        "auto",
        pattern="^(auto|h11|httptools)$",
        description="uvicorn's HTTP parser: 'httptools' (C, fast; needs the httptools package), 'h11' (pure "
        "Python) or 'auto' (httptools when installed).",
    )
    require_key_for_reads: bool = Field(False, description="If true, reads need an API key too.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (CORS); empty = none."
    )
    max_body_bytes: int = Field(
        5_000_000, ge=1024, le=1_000_000_000, description="Largest accepted request body, bytes (larger: 413)."
    )
    max_batch: int = Field(10_000, ge=1, le=1_000_000, description="Largest batch of events in one POST (larger: 413).")
    max_page: int = Field(500, ge=10, le=100_000, description="Largest page size of list endpoints (limit).")
    refresh_seconds: float = Field(
        10.0,
        ge=0,
        le=86_400,
        description="How often the server checks the store for events written by other processes and rebuilds "
        "its cached engine state if there are any (0 = never).",
    )
    summary_ttl_seconds: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="Item-list summaries (counts, means, derived scores) are rebuilt at most this often, seconds.",
    )
    # --- abuse limits (issue 10, docs/security.md) ---
    rate_limit_requests: int = Field(
        600, ge=0, le=10_000_000,
        description="Requests one API key may make per rate window (0 = unlimited); more are answered 429 with "
        "Retry-After. A key's own limit (`keys create --rate`) overrides it.",
    )
    rate_window_seconds: int = Field(60, ge=1, le=86_400, description="Length of the rate-limit window, seconds.")
    rate_refusal_delay_seconds: float = Field(
        1.0, ge=0.0, le=30.0,
        description="A request refused for its rate (429) is answered after this delay (at most its Retry-After), "
        "so a client that ignores Retry-After holds its connection instead of turning cheap refusals into a flood "
        "that starves other keys; the wait costs the server no CPU (0 = answer at once).",
    )
    rate_burst_seconds: int = Field(
        1, ge=0, le=86_400,
        description="The window's allowance is also spread over slices of this many seconds: at most "
        "ceil(limit x slice / window) requests per slice, so one key cannot spend a whole window at once and stall "
        "other keys' reads (0 = no slicing; a slice >= the window has no effect).",
    )
    daily_event_quota: int = Field(
        50_000, ge=0, le=1_000_000_000,
        description="Events one API key may write per UTC day (0 = unlimited); a key's own quota "
        "(`keys create --quota`) overrides it.",
    )
    rate_backend: str = Field(
        "auto", pattern="^(auto|memory|database|redis)$",
        description="Where the counters live: 'redis' (api.redis_url), 'database' (the store: shared by every server "
        "of the store), 'memory' (this process only) or 'auto' (redis if redis_url is set, else database on "
        "PostgreSQL, memory on SQLite).",
    )
    redis_url: str | None = Field(None, max_length=1024, description="redis://host:port/db for the rate counters.")
    key_cache_seconds: float = Field(
        5.0, ge=0, le=3600,
        description="How long a server remembers a verified key before asking the store again (a revoked key "
        "works for at most this long).",
    )


class ModerationSettings(_Section):
    """Learning from moderation (issue 21 item 3, docs/integrity.md "Learning from moderation"): with
    moderators' verdicts in the store, ``truescore score`` trains gradient-boosted trees (LightGBM) on the
    integrity engine's features, their graph-neighbourhood aggregates and the unsupervised suspicion, cross-fit
    over ``folds`` author-grouped folds and Platt-calibrated, and the suspicion becomes the calibrated
    probability that the review (account) is fake. Without verdicts, or with fewer than
    ``min_labels_per_class`` labels of a class at a level, that level's suspicion is the unsupervised one."""

    min_labels_per_class: int = Field(
        10, ge=2, le=1_000_000,
        description="Fewest labelled rows of each class (fake, genuine) at a level (reviews, accounts) before the "
        "verdicts are learned from at that level; below it nothing changes and the report says why.",
    )
    folds: int = Field(5, ge=2, le=20, description="Cross-fitting folds (grouped by account): a labelled row is "
                       "scored by the model trained without its fold.")
    rounds: int = Field(200, ge=1, le=10_000, description="Boosting rounds of each fold's model.")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0, description="Boosting learning rate (shrinkage).")
    num_leaves: int = Field(8, ge=2, le=1024, description="Leaves per tree.")
    min_child_samples: int = Field(
        5, ge=1, le=100_000, description="Fewest labelled rows in a leaf (small label sets need small leaves)."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the fold assignment and of the boosting.")
    start_from_unsupervised: bool = Field(
        True, description="The boosting starts from the unsupervised suspicion (its logit as the base margin), so "
        "few labels adjust it rather than replace it.",
    )
    require_gain: bool = Field(
        True, description="Apply a level's learned probability only when, out of fold, it ranks the labelled rows "
        "better (AUC) than the unsupervised suspicion; else keep the unsupervised suspicion and say so.",
    )


class Settings(BaseSettings):
    """Every tunable of truescore. See the module docstring for where values come from."""

    model_config = SettingsConfigDict(
        env_prefix="TRUESCORE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the store.")
    data_dir: Path = Field(Path("../shared/data"), description="Folder holding the reference data sets.")
    import_batch_size: int = Field(
        5000, ge=1, le=1_000_000,
        description="Rows per insert statement of an import; an import of one file is one transaction whatever "
        "this is.",
    )
    max_text_bytes: int = Field(100_000, ge=100, le=10_000_000, description="Largest accepted review text.")
    max_id_length: int = Field(
        256, ge=1, le=256, description="Longest accepted id, characters (the store's id columns hold 256)."
    )
    allowed_scales: list[tuple[float, float]] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_SCALES),
        description="The rating scales (min_rating, max_rating) the platform accepts; a review on any other "
        "scale is refused at every door (docs/rules.md). 1..100 scales, each finite with "
        "-1e6 <= min_rating < max_rating <= 1e6. Default: 1..5, 1..10, 0..10, 0..5, 1..7, 0..100, 0.5..5, 0..1, "
        "-10..10, -100..100, 0.5..4.",
    )
    trust: TrustSettings = Field(default_factory=TrustSettings)
    reliability: ReliabilitySettings = Field(default_factory=ReliabilitySettings)
    text: TextSettings = Field(default_factory=TextSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    personal: PersonalSettings = Field(default_factory=PersonalSettings)
    integrity: IntegritySettings = Field(default_factory=IntegritySettings)
    moderation: ModerationSettings = Field(default_factory=ModerationSettings)

    @field_validator("allowed_scales")
    @classmethod
    def _check_scales(cls, value: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if not 1 <= len(value) <= MAX_ALLOWED_SCALES:
            raise ValueError(f"list 1..{MAX_ALLOWED_SCALES} scales, not {len(value)}")
        for lo, hi in value:
            if not (-MAX_RATING_MAGNITUDE <= lo < hi <= MAX_RATING_MAGNITUDE):
                raise ValueError(f"scale {lo:g}..{hi:g}: each scale needs -{MAX_RATING_MAGNITUDE:g} <= min_rating < "
                                 f"max_rating <= {MAX_RATING_MAGNITUDE:g}")
        return [(float(lo), float(hi)) for lo, hi in dict.fromkeys(value)]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = _toml_path()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


def _toml_path() -> Path | None:
    explicit = os.environ.get("TRUESCORE_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"TRUESCORE_CONFIG={explicit}: no such file")
        return path
    local = Path("truescore.toml")
    return local if local.is_file() else None


def _describe(err: Mapping[str, Any]) -> str:
    name = ".".join(str(p) for p in err["loc"])
    ctx = err.get("ctx") or {}
    bounds = []
    for key, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if key in ctx:
            bounds.append(f"{symbol} {ctx[key]}")
    rng = _field_range(err["loc"])
    detail = f"allowed range {rng}" if rng else (" and ".join(bounds) or err["msg"])
    value = err.get("input")
    return f"configuration parameter {name} = {value!r} is refused: {err['msg']} ({detail})"


def _field_range(loc: tuple[Any, ...]) -> str | None:
    """Return 'lo..hi' for a numeric field at ``loc`` from its declared constraints."""
    model: Any = Settings
    field = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return None
        field = fields[part]
        model = field.annotation
    if field is None:
        return None
    lo = hi = None
    for meta in field.metadata:
        lo = getattr(meta, "ge", None) if getattr(meta, "ge", None) is not None else lo
        lo = getattr(meta, "gt", None) if getattr(meta, "gt", None) is not None else lo
        hi = getattr(meta, "le", None) if getattr(meta, "le", None) is not None else hi
        hi = getattr(meta, "lt", None) if getattr(meta, "lt", None) is not None else hi
    if lo is None and hi is None:
        return None
    return f"{'-inf' if lo is None else lo}..{'inf' if hi is None else hi}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from defaults, TOML, environment and ``overrides`` (highest priority).

    Raises
    ------
    ConfigError
        If any value is malformed or out of range; the message names the parameter and its range.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(e) for e in exc.errors())) from None


def default_settings() -> Settings:
    """Every parameter at its documented default: no TOML file, no environment variable is read.

    What an engine uses when it is given no settings (the engines never read the process-wide
    :func:`get_settings`; the doors load those once and pass them). A fresh object on every call.
    """
    return Settings.model_construct()


_cached: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, loaded once on first use."""
    global _cached
    if _cached is None:
        _cached = load_settings()
    return _cached


def describe_settings(settings: Settings) -> list[tuple[str, Any, str, str]]:
    """Every parameter as (dotted name, current value, allowed range, description), for people."""
    rows: list[tuple[str, Any, str, str]] = []

    def walk(model: BaseModel, prefix: str) -> None:
        for name, info in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                walk(value, f"{prefix}{name}.")
                continue
            rng = _field_range((*prefix.rstrip(".").split(".")[: 1 if prefix else 0], name)) or ""
            rows.append((f"{prefix}{name}", value, rng, info.description or ""))

    walk(settings, "")
    return rows
