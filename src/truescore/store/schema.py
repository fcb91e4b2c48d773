"""The tables of the store, as SQLAlchemy Core metadata.

Event tables (append-only, ids chosen by the caller): users, items, reviews, votes, trust, flags, verdicts.
Derived tables (written by the engines, one row per key, replaced on refit): item_quality,
user_reliability, review_scores, product_rankings; every derived row carries ``model_version`` and
``fitted_at``. Times are UTC seconds since the epoch (double precision), which keeps bulk snapshots
cheap on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "DERIVED_KEYS",
    "EVENT_TABLES",
    "api_keys",
    "audit",
    "changes",
    "flags",
    "item_quality",
    "items",
    "jobs",
    "metadata",
    "model_runs",
    "product_rankings",
    "rate_counters",
    "review_scores",
    "reviews",
    "rings",
    "store_meta",
    "trust",
    "user_reliability",
    "users",
    "verdicts",
    "votes",
]

ID = String(256)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("display_name", String(256)),
    Column("role", String(16), nullable=False, server_default="person"),
)

items = Table(
    "items",
    metadata,
    Column("id", ID, primary_key=True),
    Column("topic", String(512), nullable=False),
    Column("title", String(1024)),
    Column("created_at", Float, nullable=False),
    Index("ix_items_topic", "topic"),
)

reviews = Table(
    "reviews",
    metadata,
    Column("id", ID, primary_key=True),
    Column("item_id", ID, ForeignKey("items.id"), nullable=False),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("rating", Float, nullable=False),
    Column("min_rating", Float, nullable=False),
    Column("max_rating", Float, nullable=False),
    Column("title", String(1024)),
    Column("text", Text),
    Column("created_at", Float, nullable=False),
    Column("is_recommended", Boolean),
    Column("is_incentivized", Boolean),
    Column("verified_purchase", Boolean),
    Column("photo_count", Integer, nullable=False, server_default="0"),
    Column("supersedes", ID),
    Index("ix_reviews_item", "item_id"),
    Index("ix_reviews_user_time", "user_id", "created_at"),
    Index("ix_reviews_supersedes", "supersedes"),
    Index("ix_reviews_user_item", "user_id", "item_id", "created_at"),
)

votes = Table(
    "votes",
    metadata,
    Column("review_id", ID, ForeignKey("reviews.id"), primary_key=True),
    Column("voter_id", ID, primary_key=True),
    Column("helpful", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_votes_voter", "voter_id"),
)

trust = Table(
    "trust",
    metadata,
    Column("truster_id", ID, primary_key=True),
    Column("trustee_id", ID, primary_key=True),
    Column("domain", String(512), primary_key=True),
    Column("created_at", Float, primary_key=True),
    Column("level", Float, nullable=False),
    Column("valid_until", Float),
    Index("ix_trust_domain", "domain"),
)

flags = Table(
    "flags",
    metadata,
    Column("review_id", ID, ForeignKey("reviews.id"), primary_key=True),
    Column("flagger_id", ID, primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("severity", Float, nullable=False),
    Column("created_at", Float, nullable=False),
)

item_quality = Table(
    "item_quality",
    metadata,
    Column("item_id", ID, primary_key=True),
    Column("quality", Float, nullable=False),
    Column("quality_sd", Float, nullable=False),
    Column("n_ratings", Integer, nullable=False),
    Column("effective_weight", Float, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("fitted_at", Float, nullable=False),
)

user_reliability = Table(
    "user_reliability",
    metadata,
    Column("user_id", ID, primary_key=True),
    Column("reliability", Float, nullable=False),
    Column("reliability_lo", Float, nullable=False),
    Column("reliability_hi", Float, nullable=False),
    Column("bias", Float, nullable=False),
    Column("n_ratings", Integer, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("fitted_at", Float, nullable=False),
)

review_scores = Table(
    "review_scores",
    metadata,
    Column("review_id", ID, primary_key=True),
    # the text engine's scores: NULL for a review scored by the integrity engine only (no text, no models)
    Column("quality", Float),
    Column("fake_probability", Float),
    Column("sentiment", Float),
    Column("model_version", String(64), nullable=False),
    Column("fitted_at", Float, nullable=False),
)

product_rankings = Table(
    "product_rankings",
    metadata,
    Column("item_id", ID, primary_key=True),
    Column("topic", String(512), nullable=False),
    Column("fused_mean", Float),
    Column("fused_sd", Float),
    Column("n_eff", Float),
    Column("lower_bound", Float),
    Column("love_score", Float),
    Column("tier", String(16)),
    Column("plain_mean", Float),
    Column("n_reviews", Integer, nullable=False),
    Column("details", Text),
    Column("model_version", String(64), nullable=False),
    Column("fitted_at", Float, nullable=False),
    Index("ix_rankings_topic", "topic"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("revoked", Boolean, nullable=False, server_default="0"),
    # issue 10: a key is one user with scopes (NULL user and scopes: a key from before, treated as admin);
    # optional per-key overrides of api.rate_limit_requests / api.daily_event_quota (0 = unlimited)
    Column("user_id", ID),
    Column("scopes", String(64)),
    Column("rate_limit", Integer),
    Column("daily_quota", Integer),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("message", Text),
    Column("owner", String(128)),  # host:pid of the server process running it (issue 10)
)

# ---------------------------------------------------------------------------------------------- issue 10
#: one row per accepted write or erasure: which key, which user, when, which event keys (never content)
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("key_id", String(64)),
    Column("user_id", ID),
    Column("action", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("n", Integer, nullable=False),
    Column("refs", Text),
    Index("ix_audit_key", "key_id"),
    Index("ix_audit_user", "user_id"),
)

#: the store-wide change sequence: one row (id 1) whose ``seq`` every committed event write increments
changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
)

#: facts about the store itself: ``store_id``, a random id written when the store is created, by which a
#: process that holds the store open tells that the database under it was dropped and created anew
store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

#: request and event counters of the database rate limiter, per key, bucket and window start
rate_counters = Table(
    "rate_counters",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("bucket", String(8), primary_key=True),
    Column("win", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
)

EVENT_TABLES = ("users", "items", "reviews", "votes", "trust", "flags", "verdicts")

#: key column of each derived table
DERIVED_KEYS = {
    "item_quality": "item_id",
    "user_reliability": "user_id",
    "review_scores": "review_id",
    "product_rankings": "item_id",
    "rings": "ring_id",
}


# ---------------------------------------------------------------------------------------------- integrity (issue 11)
# Suspicion in [0, 1] with its reasons, written by `truescore score` (truescore.integrity); older stores get
# these columns from truescore.store.migrate.migrate_integrity_columns at open.
review_scores.append_column(Column("suspicion", Float))
review_scores.append_column(Column("suspicion_reasons", Text))
# the evidence the fusion reads (noisy-OR of ring, cohort and near-duplicate evidence) and the detected group
# of the review ("ring-3", "cohort-12"; NULL for none), so `truescore rank` uses what `truescore score` found
review_scores.append_column(Column("integrity_evidence", Float))
review_scores.append_column(Column("integrity_group", String(64)))
user_reliability.append_column(Column("suspicion", Float))
user_reliability.append_column(Column("suspicion_reasons", Text))

#: one row per job kind (fit, text, integrity, rank): the last run's model version, when it finished, the
#: store's change sequence when it read its inputs, and its details (JSON: e.g. the fit's hyperparameters);
#: a job that reads another's results compares the sequence with the store's to tell whether they are stale
model_runs = Table(
    "model_runs",
    metadata,
    Column("job", String(32), primary_key=True),
    Column("model_version", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("finished_at", Float, nullable=False),
    Column("details", Text),
)

rings = Table(
    "rings",
    metadata,
    Column("ring_id", String(64), primary_key=True),
    Column("direction", String(8), nullable=False),
    Column("n_members", Integer, nullable=False),
    Column("n_targets", Integer, nullable=False),
    Column("members", Text, nullable=False),
    Column("targets", Text, nullable=False),
    Column("window_start", Float),
    Column("window_end", Float),
    Column("strength", Float, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("fitted_at", Float, nullable=False),
)


# ---------------------------------------------------------------------------------------------- issue 21 item 3
#: moderators' verdicts: one per (target, target id, moderator), ``target`` "review" (``target_id`` a review
#: id) or "user" (an account id); ``moderator_id`` "" when none was given (the platform's verdict). A later
#: verdict (by ``created_at``) on the same target by the same moderator replaces the earlier one. Created by
#: ``metadata.create_all`` at open, so older stores get the table too.
verdicts = Table(
    "verdicts",
    metadata,
    Column("target", String(8), primary_key=True),
    Column("target_id", ID, primary_key=True),
    Column("moderator_id", ID, primary_key=True),
    Column("verdict", String(8), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_verdicts_moderator", "moderator_id"),
)
