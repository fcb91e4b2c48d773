"""A synthetic marketplace with planted ground truth, for tests, the demo and the benchmarks.

The world is deterministic for a given :class:`SynthConfig` (``seed`` included). It holds:

- **items** in a topic tree (``reviews.public.technology.laptops``, ...), each with a true quality
  ``q_i`` in stars, ``q_i = 1 + 4 * Beta(4, 2)``, and a power-law popularity;
- **raters** of five kinds: *honest* (star noise sd ``s_u ~ LogNormal(log 0.55, 0.35)``), *harsh* and
  *lenient* (honest noise plus a consistent bias of -/+ 0.5..1.2 stars), *careless* (sd 1.5..2.5 stars),
  and *bots* in rings that boost a low-quality target item with maximum ratings, either *fresh*
  accounts (created just before the attack, no other ratings) or *camouflaged* accounts that also rate
  ``camouflage_ratings`` other items honestly; a ring's ratings can arrive in a burst;
- **ratings** ``r_ui = round(clip(q_i + b_u + s_u * eps, 1, 5))``, eps ~ N(0, 1), over several years,
  with a templated review text (genuine texts follow the stars and name the item's aspects; bot texts
  are generic hype), disclosure and verified-purchase flags;
- **helpful / unhelpful votes** (genuine, detailed reviews attract helpful votes, bot reviews unhelpful);
- a **social trust graph** with topic communities, topic-scoped edges, an operator root that trusts
  established reviewers, a moderator that flags some bot reviews, and bot rings that trust each other.

On the normalised scale ``z = (stars - 1) / 4`` the planted rater precision is
``alpha_u = 1 / (s_u / 4)^2`` and the bias ``b_u / 4``; both are returned in :class:`SynthTruth`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.domain import RatingSnapshot

if TYPE_CHECKING:
    from truescore.store import Store

__all__ = ["StreamedRatings", "SynthConfig", "SynthTruth", "SynthWorld", "WorldSummary", "account_labels",
           "add_bot_attack", "add_genuine_change", "add_incentivised", "add_item", "add_ring_campaign",
           "add_sock_puppets", "campaign_text", "generate", "write_ratings_parquet"]

DAY = 86400.0
#: the synthetic world's "now": fixed so that every run is identical
SYNTH_NOW = datetime(2026, 6, 1, tzinfo=UTC).timestamp()

TOPICS = (
    "reviews.public.technology.laptops",
    "reviews.public.technology.phones",
    "reviews.public.technology.audio",
    "reviews.public.home.lamps",
    "reviews.public.home.kitchen",
    "reviews.public.books.fiction",
    "reviews.public.books.nonfiction",
    "reviews.public.food.restaurants",
)
_NOUNS = {
    "laptops": ("laptop", ("keyboard", "battery", "screen", "trackpad", "fan noise", "hinge")),
    "phones": ("phone", ("camera", "battery", "screen", "speaker", "signal", "charging")),
    "audio": ("headphones", ("bass", "noise cancelling", "comfort", "battery", "microphone", "pairing")),
    "lamps": ("lamp", ("base", "shade", "switch", "brightness", "cord", "finish")),
    "kitchen": ("pan", ("handle", "coating", "weight", "heat spread", "lid", "finish")),
    "fiction": ("novel", ("plot", "characters", "pacing", "ending", "prose", "dialogue")),
    "nonfiction": ("book", ("research", "writing", "examples", "structure", "index", "arguments")),
    "restaurants": ("place", ("service", "portions", "menu", "prices", "atmosphere", "dessert")),
}
_GOOD = ("is excellent", "works really well", "is better than I expected", "feels solid", "is great")
_MID = ("is fine", "is okay for the price", "is average", "does the job", "is decent but not special")
_BAD = ("is disappointing", "stopped working", "feels cheap", "is worse than advertised", "is poor")
_OPEN_GOOD = ("I have used this {noun} for {n} weeks now.", "Bought this {noun} {n} months ago.",
              "After {n} weeks with this {noun}, here is my take.")
_OPEN_BAD = ("I returned this {noun} after {n} days.", "I wanted to like this {noun}.",
             "Used this {noun} for {n} weeks.")
_CLOSE = {5: "Would buy again.", 4: "Recommended, with small caveats.", 3: "Mixed feelings overall.",
          2: "Would not buy again.", 1: "Avoid it."}
_HYPE = ("Best {noun} ever!!! Amazing quality, highly recommend to everyone!!!",
         "AMAZING {noun}!!! Five stars, perfect in every way, buy it now!",
         "Absolutely love it!!! The best purchase I have ever made. Perfect {noun}!!!",
         "Great great great {noun}! Excellent product, fast shipping, 100% recommend!!!",
         "Wow!!! This {noun} is perfect. Everyone should buy it. Best seller ever!!!")


@dataclass(frozen=True, slots=True)
class SynthConfig:
    """Size and composition of the synthetic marketplace (every share is of the honest population)."""

    n_users: int = 3000
    n_items: int = 400
    n_ratings: int = 40_000
    seed: int = 0
    years: float = 4.0
    share_harsh: float = 0.08
    share_lenient: float = 0.08
    share_careless: float = 0.10
    n_rings: int = 4
    ring_size: int = 25
    camouflage_ratings: int = 20
    burst_hours: float = 48.0
    with_text: bool = True
    votes_per_rating: float = 0.3
    trust_out_degree: float = 6.0
    share_incentivized: float = 0.05

    def __post_init__(self) -> None:
        if self.n_users < 10 or self.n_items < 5 or self.n_ratings < self.n_items:
            raise ValueError("SynthConfig needs n_users >= 10, n_items >= 5 and n_ratings >= n_items")
        if self.n_ratings > 0.5 * self.n_users * self.n_items:
            raise ValueError("SynthConfig: n_ratings exceeds half of all user-item pairs")


@dataclass(slots=True)
class SynthTruth:
    """The planted ground truth (see the module docstring for the scales)."""

    item_quality: npt.NDArray[np.float64]
    user_kind: npt.NDArray[np.object_]
    user_precision: npt.NDArray[np.float64]
    user_bias: npt.NDArray[np.float64]
    user_ring: npt.NDArray[np.int64]
    review_is_fake: npt.NDArray[np.bool_]
    target_items: npt.NDArray[np.int64]

    @property
    def item_quality_norm(self) -> npt.NDArray[np.float64]:
        return (self.item_quality - 1.0) / 4.0


class WorldSummary(TypedDict):
    """Counts of a planted world (:meth:`SynthWorld.summary`)."""

    users: int
    items: int
    ratings: int
    votes: int
    trust_edges: int
    flags: int
    #: users of each kind (honest, harsh, lenient, careless, bot_..., ...)
    user_kinds: dict[str, int]
    fake_ratings: int
    bot_rings: int
    #: the item index each ring targets
    target_items: list[int]


class StreamedRatings(TypedDict):
    """What :func:`write_ratings_parquet` wrote: the sizes, the seed and the planted truth (stars scale)."""

    n_ratings: int
    n_users: int
    n_items: int
    seed: int
    #: ``q_i`` of each item
    item_quality: npt.NDArray[np.float64]
    #: ``b_u`` of each user (0 for all but the harsh and lenient)
    user_bias: npt.NDArray[np.float64]
    #: ``s_u`` of each user
    user_noise_sd: npt.NDArray[np.float64]


@dataclass(slots=True)
class SynthWorld:
    """Events as column arrays, and the truth. Ids are ``u<k>``, ``i<k>``, ``r<k>``."""

    config: SynthConfig
    truth: SynthTruth
    users: dict[str, np.ndarray]      # kind, role, created_at
    items: dict[str, np.ndarray]      # topic, title, created_at
    ratings: dict[str, np.ndarray]    # user, item, stars, created_at, text_code, incentivized, verified
    votes: dict[str, np.ndarray]      # review, voter, helpful, created_at
    trust: dict[str, np.ndarray]      # truster, trustee, domain, level, created_at
    flags: dict[str, np.ndarray]      # review, flagger, severity, created_at
    extra_users: list[tuple[str, str]] = field(default_factory=list)  # (id, role) of non-indexed accounts

    @property
    def n_users(self) -> int:
        return int(self.truth.user_kind.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.truth.item_quality.shape[0])

    @property
    def n_ratings(self) -> int:
        return int(self.ratings["user"].shape[0])

    def snapshot(self) -> RatingSnapshot:
        """The ratings as engine arrays, normalised with the 1..5 star scale."""
        snap = RatingSnapshot.from_arrays(
            self.ratings["user"], self.ratings["item"], self.ratings["stars"],
            n_users=self.n_users, n_items=self.n_items, created_at=self.ratings["created_at"],
            min_rating=1.0, max_rating=5.0,
        )
        snap.user_ids = np.array([f"u{k}" for k in range(self.n_users)], dtype=object)
        snap.item_ids = np.array([f"i{k}" for k in range(self.n_items)], dtype=object)
        snap.review_ids = np.array([f"r{k}" for k in range(self.n_ratings)], dtype=object)
        snap.item_topic = self.items["topic"].astype(object)
        return snap

    def review_texts(self, start: int = 0, stop: int | None = None) -> list[str | None]:
        """Texts of ratings ``start:stop`` (built on demand from their template codes)."""
        stop = self.n_ratings if stop is None else stop
        if not self.config.with_text:
            return [None] * (stop - start)
        return [_text(int(code), int(stars), str(topic)) for code, stars, topic in zip(
            self.ratings["text_code"][start:stop], self.ratings["stars"][start:stop],
            self.items["topic"][self.ratings["item"][start:stop]], strict=True)]

    def write(self, store: Store, *, chunk: int = 50_000,
              progress: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
        """Write every event through ``store`` (a :class:`truescore.store.Store`); returns rows per table."""
        written: dict[str, int] = {}
        users = [{"id": f"u{k}", "created_at": float(t), "display_name": None, "role": str(role)}
                 for k, (t, role) in enumerate(zip(self.users["created_at"], self.users["role"], strict=True))]
        users += [{"id": uid, "created_at": SYNTH_NOW - 5 * 365 * DAY, "display_name": uid.capitalize(),
                   "role": role} for uid, role in self.extra_users]
        items = [{"id": f"i{k}", "topic": str(tp), "title": str(ti), "created_at": float(t)}
                 for k, (tp, ti, t) in enumerate(zip(self.items["topic"], self.items["title"],
                                                     self.items["created_at"], strict=True))]
        written["users"] = _write_chunks(store, "users", users, chunk, progress)
        written["items"] = _write_chunks(store, "items", items, chunk, progress)
        with store.bulk_load("reviews"):
            written["reviews"] = self._write_reviews(store, chunk, progress)
        v = self.votes
        votes = [{"review_id": f"r{rv}", "voter_id": f"u{vo}", "helpful": bool(h), "created_at": float(t)}
                 for rv, vo, h, t in zip(v["review"], v["voter"], v["helpful"], v["created_at"], strict=True)]
        written["votes"] = _write_chunks(store, "votes", votes, chunk, progress)
        t = self.trust
        edges = [{"truster_id": a, "trustee_id": b, "domain": str(d), "level": float(lv), "created_at": float(c),
                  "valid_until": None}
                 for a, b, d, lv, c in zip(t["truster"], t["trustee"], t["domain"], t["level"], t["created_at"],
                                           strict=True)]
        written["trust"] = _write_chunks(store, "trust", edges, chunk, progress)
        f = self.flags
        flags = [{"review_id": f"r{rv}", "flagger_id": str(fl), "reason": "FAKE", "severity": float(sv),
                  "created_at": float(c)}
                 for rv, fl, sv, c in zip(f["review"], f["flagger"], f["severity"], f["created_at"], strict=True)]
        written["flags"] = _write_chunks(store, "flags", flags, chunk, progress)
        return written

    def _write_reviews(self, store: Store, chunk: int, progress: Callable[[str, int, int], None] | None) -> int:
        """Insert the ratings as reviews in transactions of ``chunk`` rows; returns how many were new."""
        r = self.ratings
        n = self.n_ratings
        total = 0
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            part = slice(start, stop)
            stars = r["stars"][part]
            cols: dict[str, list[Any]] = {
                "id": [f"r{k}" for k in range(start, stop)],
                "item_id": [f"i{k}" for k in r["item"][part].tolist()],
                "user_id": [f"u{k}" for k in r["user"][part].tolist()],
                "rating": stars.tolist(),
                "min_rating": [1.0] * (stop - start),
                "max_rating": [5.0] * (stop - start),
                "text": self.review_texts(start, stop),
                "created_at": r["created_at"][part].tolist(),
                "is_recommended": (stars >= 4).tolist(),
                "is_incentivized": r["incentivized"][part].tolist(),
                "verified_purchase": r["verified"][part].tolist(),
                "photo_count": r["photos"][part].astype(int).tolist(),
            }
            with store.transaction() as conn:
                total += store.insert_columns("reviews", cols, conn=conn)
            if progress:
                progress("reviews", stop, n)
        return total

    def frames(self, with_text: bool = True) -> dict[str, pd.DataFrame]:
        """The events as DataFrames with the store's column names (``reviews`` as ``Store.review_frame``
        gives them, with the item's ``topic``), for engines that build from frames without a database."""
        r = self.ratings
        n = self.n_ratings
        reviews = pd.DataFrame({
            "id": [f"r{k}" for k in range(n)],
            "item_id": [f"i{k}" for k in r["item"].tolist()],
            "user_id": [f"u{k}" for k in r["user"].tolist()],
            "rating": r["stars"], "min_rating": 1.0, "max_rating": 5.0,
            "created_at": r["created_at"],
            "is_recommended": r["stars"] >= 4, "is_incentivized": r["incentivized"],
            "verified_purchase": r["verified"], "photo_count": r["photos"].astype(int),
            "supersedes": None, "topic": self.items["topic"][r["item"]],
        })
        if with_text:
            reviews.insert(6, "title", None)
            reviews.insert(7, "text", self.review_texts())
        users = pd.DataFrame({"id": [f"u{k}" for k in range(self.n_users)], "created_at": self.users["created_at"],
                              "display_name": None, "role": self.users["role"]})
        extra = pd.DataFrame({"id": [u for u, _ in self.extra_users], "created_at": SYNTH_NOW - 5 * 365 * DAY,
                              "display_name": [u.capitalize() for u, _ in self.extra_users],
                              "role": [role for _, role in self.extra_users]})
        v, t, f = self.votes, self.trust, self.flags
        return {
            "reviews": reviews,
            "users": pd.concat([users, extra], ignore_index=True),
            "items": pd.DataFrame({"id": [f"i{k}" for k in range(self.n_items)], "topic": self.items["topic"],
                                   "title": self.items["title"], "created_at": self.items["created_at"]}),
            "votes": pd.DataFrame({"review_id": [f"r{k}" for k in v["review"].tolist()],
                                   "voter_id": [f"u{k}" for k in v["voter"].tolist()],
                                   "helpful": v["helpful"], "created_at": v["created_at"]}),
            "trust": pd.DataFrame({"truster_id": t["truster"], "trustee_id": t["trustee"], "domain": t["domain"],
                                   "level": t["level"], "created_at": t["created_at"], "valid_until": np.nan}),
            "flags": pd.DataFrame({"review_id": [f"r{k}" for k in f["review"].tolist()], "flagger_id": f["flagger"],
                                   "reason": "FAKE", "severity": f["severity"], "created_at": f["created_at"]}),
        }

    def summary(self) -> WorldSummary:
        """Counts of the planted population, for people."""
        kinds, counts = np.unique(self.truth.user_kind.astype(str), return_counts=True)
        return {
            "users": self.n_users,
            "items": self.n_items,
            "ratings": self.n_ratings,
            "votes": int(self.votes["review"].shape[0]),
            "trust_edges": int(self.trust["truster"].shape[0]),
            "flags": int(self.flags["review"].shape[0]),
            "user_kinds": {str(k): int(c) for k, c in zip(kinds, counts, strict=True)},
            "fake_ratings": int(self.truth.review_is_fake.sum()),
            "bot_rings": int(self.truth.user_ring.max() + 1) if self.n_users else 0,
            "target_items": [int(t) for t in self.truth.target_items],
        }


def _write_chunks(store: Store, table: str, rows: list[dict[str, Any]], chunk: int,
                  progress: Callable[[str, int, int], None] | None) -> int:
    total = 0
    for start in range(0, len(rows), chunk):
        with store.transaction() as conn:
            total += store.insert_rows(table, rows[start : start + chunk], conn=conn)
        if progress:
            progress(table, min(len(rows), start + chunk), len(rows))
    return total


# ---------------------------------------------------------------------------------------------- text
def _text(code: int, stars: int, topic: str) -> str:
    """Review text from its template code: code < 0 is bot hype, else a genuine review."""
    noun, aspects = _NOUNS.get(topic.rsplit(".", 1)[-1], ("product", ("quality", "price", "design")))
    if code <= -100:
        return campaign_text(code, noun)
    if code < 0:
        return _HYPE[(-code - 1) % len(_HYPE)].format(noun=noun)
    a1 = aspects[code % len(aspects)]
    a2 = aspects[(code % len(aspects) + 1 + (code // 7) % (len(aspects) - 1)) % len(aspects)]
    n = 2 + code % 11
    if stars >= 4:
        opener, v1, v2 = _OPEN_GOOD[code % 3], _GOOD[code % 5], _GOOD[(code // 5) % 5]
    elif stars == 3:
        opener, v1, v2 = _OPEN_GOOD[code % 3], _MID[code % 5], _BAD[(code // 5) % 5]
    else:
        opener, v1, v2 = _OPEN_BAD[code % 3], _BAD[code % 5], _MID[(code // 5) % 5]
    sentences = [opener.format(noun=noun, n=n), f"The {a1} {v1}.", f"The {a2} {v2}.", _CLOSE[stars]]
    if code % 4 == 0:
        step = "up" if stars >= 3 else "down"
        sentences.insert(3, f"Compared with my previous {noun}, the {a1} is a clear step {step}.")
    return " ".join(sentences)


# ---------------------------------------------------------------------------------------------- generation
def _zipf_weights(rng: np.random.Generator, n: int, sigma: float) -> npt.NDArray[np.float64]:
    w = rng.lognormal(0.0, sigma, n)
    return w / w.sum()


def _first_occurrence(key: np.ndarray) -> np.ndarray:
    """Indices of the first occurrence of each distinct key, in their original order (hash based)."""
    return np.flatnonzero(~pd.Series(key).duplicated().to_numpy())


def _sample_pairs(rng: np.random.Generator, n: int, pu: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct (user, item) pairs drawn with user and item popularity ``pu``, ``pi``.

    Per-user and per-item counts come from one multinomial draw each (O(n)), then the item column
    is shuffled against the user column; repeated pairs are dropped and topped up.
    """
    n_items = pi.shape[0]
    users = np.empty(0, dtype=np.int64)
    items = np.empty(0, dtype=np.int64)
    need = n
    while need > 0:
        m = int(need * 1.1) + 16
        u = np.repeat(np.arange(pu.shape[0]), rng.multinomial(m, pu))
        i = np.repeat(np.arange(n_items), rng.multinomial(m, pi))
        rng.shuffle(u)
        rng.shuffle(i)
        users = np.concatenate([users, u])
        items = np.concatenate([items, i])
        first = _first_occurrence(users * n_items + items)
        users, items = users[first], items[first]
        need = n - users.shape[0]
    return users[:n], items[:n]


def generate(config: SynthConfig | None = None) -> SynthWorld:
    """Build the synthetic marketplace described in the module docstring."""
    cfg = config or SynthConfig()
    rng = np.random.default_rng(cfg.seed)
    t_end = SYNTH_NOW
    t_start = t_end - cfg.years * 365 * DAY

    # items
    n_items = cfg.n_items
    quality = 1.0 + 4.0 * rng.beta(4.0, 2.0, n_items)
    topic_idx = rng.integers(0, len(TOPICS), n_items)
    topics = np.array(TOPICS, dtype=object)[topic_idx]
    titles = np.array([f"{_NOUNS[t.rsplit('.', 1)[-1]][0].capitalize()} model {k}" for k, t in enumerate(topics)],
                      dtype=object)
    item_created = t_start + rng.random(n_items) * (t_end - t_start) * 0.5

    # honest population
    n_bots = cfg.n_rings * cfg.ring_size
    n_people = cfg.n_users - n_bots
    if n_people < 10:
        raise ValueError("SynthConfig: too many bots for n_users")
    kind = np.full(n_people, "honest", dtype=object)
    roll = rng.random(n_people)
    c1 = cfg.share_harsh
    c2 = c1 + cfg.share_lenient
    c3 = c2 + cfg.share_careless
    kind[roll < c1] = "harsh"
    kind[(roll >= c1) & (roll < c2)] = "lenient"
    kind[(roll >= c2) & (roll < c3)] = "careless"
    sd = rng.lognormal(math.log(0.55), 0.35, n_people)
    careless = kind == "careless"
    sd[careless] = rng.uniform(1.5, 2.5, careless.sum())
    bias = np.zeros(n_people)
    harsh, lenient = kind == "harsh", kind == "lenient"
    bias[harsh] = -rng.uniform(0.5, 1.2, harsh.sum())
    bias[lenient] = rng.uniform(0.5, 1.2, lenient.sum())

    # honest ratings
    n_cam = cfg.n_rings // 2 * cfg.ring_size * cfg.camouflage_ratings
    n_honest = max(cfg.n_ratings - n_bots - n_cam, n_items)
    pu = _zipf_weights(rng, n_people, 1.1)
    pi = _zipf_weights(rng, n_items, 1.0)
    u, i = _sample_pairs(rng, n_honest, pu, pi)
    stars = np.clip(np.rint(quality[i] + bias[u] + sd[u] * rng.standard_normal(u.shape[0])), 1, 5)
    first_t = np.maximum(item_created[i], t_start)
    times = first_t + rng.random(u.shape[0]) * (t_end - first_t)
    fake = np.zeros(u.shape[0], dtype=bool)

    # bot rings: half fresh, half camouflaged; each boosts one low-quality target
    low = np.flatnonzero(quality < 3.0)
    low = low if low.size >= cfg.n_rings else np.argsort(quality)[: max(cfg.n_rings, 1)]
    targets = rng.choice(low, size=cfg.n_rings, replace=False) if cfg.n_rings else np.empty(0, dtype=np.int64)
    all_kind = [kind]
    all_sd, all_bias = [sd], [bias]
    ring_of = [np.full(n_people, -1)]
    bot_u, bot_i, bot_t, bot_s, bot_fake = [], [], [], [], []
    next_user = n_people
    for ring, target in enumerate(targets):
        camo = ring % 2 == 1
        members = np.arange(next_user, next_user + cfg.ring_size)
        next_user += cfg.ring_size
        all_kind.append(np.full(cfg.ring_size, "bot_camouflaged" if camo else "bot_fresh", dtype=object))
        all_sd.append(np.full(cfg.ring_size, 0.3))
        all_bias.append(np.zeros(cfg.ring_size))
        ring_of.append(np.full(cfg.ring_size, ring))
        attack_at = t_end - rng.uniform(20, 200) * DAY
        window = cfg.burst_hours * 3600.0
        bot_u.append(members)
        bot_i.append(np.full(cfg.ring_size, target))
        bot_t.append(attack_at + rng.random(cfg.ring_size) * window)
        bot_s.append(np.full(cfg.ring_size, 5.0))
        bot_fake.append(np.ones(cfg.ring_size, dtype=bool))
        if camo:
            for m in members:
                others = rng.choice(np.setdiff1d(np.arange(n_items), [target]), cfg.camouflage_ratings, replace=False)
                bot_u.append(np.full(others.shape[0], m))
                bot_i.append(others)
                bot_t.append(attack_at - rng.random(others.shape[0]) * 300 * DAY)  # type: ignore[arg-type]
                bot_s.append(np.clip(np.rint(quality[others] + 0.3 * rng.standard_normal(others.shape[0])), 1, 5))
                bot_fake.append(np.zeros(others.shape[0], dtype=bool))
    n_users = next_user
    kind_all = np.concatenate(all_kind)
    sd_all = np.concatenate(all_sd)
    bias_all = np.concatenate(all_bias)
    ring_all = np.concatenate(ring_of)
    if bot_u:
        u = np.concatenate([u, *bot_u])
        i = np.concatenate([i, *bot_i])
        times = np.concatenate([times, *bot_t])
        stars = np.concatenate([stars, *bot_s])
        fake = np.concatenate([fake, *bot_fake])
    order = np.argsort(times, kind="stable")
    u, i, times, stars, fake = u[order], i[order], times[order], stars[order], fake[order]

    # accounts: created a little before their first rating (fresh bots: within days)
    first_rating = np.full(n_users, t_end)
    np.minimum.at(first_rating, u, times)
    lead = np.where(kind_all == "bot_fresh", rng.uniform(0.2, 3, n_users), rng.uniform(5, 400, n_users)) * DAY
    user_created = np.maximum(first_rating - lead, t_start - 400 * DAY)
    role = np.full(n_users, "person", dtype=object)

    n = u.shape[0]
    is_bot_rating = fake
    text_code = np.where(is_bot_rating, -(rng.integers(0, len(_HYPE), n) + 1), rng.integers(0, 10_000, n))
    incentivized = (~is_bot_rating) & (rng.random(n) < cfg.share_incentivized)
    verified = np.where(is_bot_rating, rng.random(n) < 0.1, rng.random(n) < 0.8)
    photos = np.where(is_bot_rating, 0, (rng.random(n) < 0.15) * rng.integers(1, 4, n))

    votes = _votes(rng, cfg, n, u, times, fake, text_code, n_people)
    trust = _trust(rng, cfg, n_people, n_users, kind_all, ring_all, u, i, topics, t_start, t_end)
    flagged = np.flatnonzero(fake)
    flagged = flagged[rng.random(flagged.shape[0]) < 0.3]
    flags = {"review": flagged, "flagger": np.full(flagged.shape[0], "moderator", dtype=object),
             "severity": np.full(flagged.shape[0], 2.0), "created_at": times[flagged] + 3 * DAY}

    truth = SynthTruth(
        item_quality=quality,
        user_kind=kind_all,
        user_precision=1.0 / (sd_all / 4.0) ** 2,
        user_bias=bias_all / 4.0,
        user_ring=ring_all.astype(np.int64),
        review_is_fake=fake,
        target_items=np.asarray(targets, dtype=np.int64),
    )
    return SynthWorld(
        config=cfg,
        truth=truth,
        users={"kind": kind_all, "role": role, "created_at": user_created},
        items={"topic": topics, "title": titles, "created_at": item_created},
        ratings={"user": u.astype(np.int64), "item": i.astype(np.int64), "stars": stars.astype(np.float64),
                 "created_at": times, "text_code": text_code, "incentivized": incentivized,
                 "verified": verified, "photos": photos},
        votes=votes,
        trust=trust,
        flags=flags,
        extra_users=[("operator", "operator"), ("moderator", "moderator"), ("retailer", "retailer")],
    )


def _votes(rng: np.random.Generator, cfg: SynthConfig, n: int, u: np.ndarray, times: np.ndarray,
           fake: np.ndarray, text_code: np.ndarray, n_people: int) -> dict[str, np.ndarray]:
    """Helpful votes from honest users: genuine detailed reviews mostly helpful, bot reviews mostly not."""
    m = int(n * cfg.votes_per_rating)
    review = rng.integers(0, n, m)
    voter = rng.integers(0, n_people, m)
    keep = voter != u[review]
    review, voter = review[keep], voter[keep]
    detailed = (text_code[review] >= 0) & (text_code[review] % 4 == 0)
    p_helpful = np.where(fake[review], 0.15, np.where(detailed, 0.9, 0.7))
    helpful = rng.random(review.shape[0]) < p_helpful
    first = _first_occurrence(review * (n_people + 1) + voter)
    review, voter, helpful = review[first], voter[first], helpful[first]
    created = times[review] + rng.uniform(0.1, 60, review.shape[0]) * DAY
    return {"review": review, "voter": voter, "helpful": helpful, "created_at": np.minimum(created, SYNTH_NOW)}


def _trust(rng: np.random.Generator, cfg: SynthConfig, n_people: int, n_users: int, kind: np.ndarray,
           ring: np.ndarray, u: np.ndarray, i: np.ndarray, topics: np.ndarray, t_start: float,
           t_end: float) -> dict[str, np.ndarray]:
    """Topic communities: people trust others who review the same top-level topic, in that topic's
    domain or the general ``reviews.public``; the operator trusts the most active honest reviewers;
    ring members vouch for each other; the operator trusts the moderator and the retailer."""
    top = np.array([".".join(t.split(".")[:3]) for t in topics], dtype=object)
    people = u < n_people
    fav = np.full(n_people, "reviews.public", dtype=object)
    counts = np.bincount(u[people], minlength=n_people)
    uniq_top, top_idx = np.unique(top, return_inverse=True)
    per = np.zeros((n_people, uniq_top.shape[0]))
    np.add.at(per, (u[people], top_idx[i[people]]), 1.0)
    has = counts > 0
    fav[has] = uniq_top[per[has].argmax(axis=1)]
    m = int(n_people * cfg.trust_out_degree)
    truster = rng.integers(0, n_people, m)
    # pick trustees in the same community with probability 0.8
    by_comm: dict[str, np.ndarray] = {c: np.flatnonzero(fav == c) for c in np.unique(fav)}
    trustee = rng.integers(0, n_people, m)
    same = rng.random(m) < 0.8
    for c, members in by_comm.items():
        sel = same & (fav[truster] == c)
        if members.size:
            trustee[sel] = members[rng.integers(0, members.size, sel.sum())]
    honest_target = np.isin(kind[trustee], ["honest", "harsh", "lenient"])
    level = np.where(honest_target, rng.beta(6, 2, m), rng.beta(2, 4, m))
    domain = np.where(rng.random(m) < 0.6, fav[truster], "reviews.public").astype(object)
    dom_code = pd.factorize(domain)[0]
    keep = np.zeros(m, dtype=bool)
    keep[_first_occurrence((truster * n_people + trustee) * (int(dom_code.max()) + 1) + dom_code)] = True
    keep &= truster != trustee
    truster_ids = np.array([f"u{k}" for k in truster[keep]], dtype=object)
    trustee_ids = np.array([f"u{k}" for k in trustee[keep]], dtype=object)
    domain, level = domain[keep], level[keep]
    # operator root: trusts the 5% most active honest reviewers
    honest = np.flatnonzero(np.isin(kind[:n_people], ["honest", "harsh", "lenient"]))
    top_honest = honest[np.argsort(-counts[honest])][: max(5, honest.size // 20)]
    op_trustee = np.array([f"u{k}" for k in top_honest], dtype=object)
    extra_a = ["operator"] * op_trustee.size + ["operator", "operator"]
    extra_b = [*op_trustee.tolist(), "moderator", "retailer"]
    extra_d = ["reviews.public"] * op_trustee.size + ["reviews.moderation", "reviews.public"]
    extra_l = [*rng.uniform(0.7, 0.95, op_trustee.size).tolist(), 0.9, 0.8]
    # rings vouch for each other
    for r in range(int(ring.max()) + 1 if ring.size else 0):
        members = np.flatnonzero(ring == r)
        for a in members:
            for b in rng.choice(members[members != a], min(3, members.size - 1), replace=False):
                extra_a.append(f"u{a}")
                extra_b.append(f"u{b}")
                extra_d.append("reviews.public")
                extra_l.append(1.0)
    truster_all = np.concatenate([truster_ids, np.array(extra_a, dtype=object)])
    trustee_all = np.concatenate([trustee_ids, np.array(extra_b, dtype=object)])
    all_domains = np.concatenate([domain, np.array(extra_d, dtype=object)])
    created = t_start + rng.random(truster_all.shape[0]) * (t_end - t_start) * 0.9
    # people's edges were de-duplicated above; operator and ring edges are distinct by construction
    return {
        "truster": truster_all,
        "trustee": trustee_all,
        "domain": all_domains,
        "level": np.concatenate([level, np.array(extra_l)]),
        "created_at": created,  # type: ignore[dict-item]
    }


# ---------------------------------------------------------------------------------------------- attacks
def add_item(world: SynthWorld, quality: float, n_honest: int, *, topic: str = TOPICS[0],
             seed: int = 0) -> tuple[SynthWorld, int]:
    """Add an item of true ``quality`` (stars) rated by ``n_honest`` distinct honest raters."""
    rng = np.random.default_rng(seed)
    honest = np.flatnonzero(world.truth.user_kind == "honest")
    raters = rng.choice(honest, size=n_honest, replace=False)
    k = world.n_items
    sd = 4.0 / np.sqrt(world.truth.user_precision[raters])
    stars = np.clip(np.rint(quality + sd * rng.standard_normal(n_honest)), 1, 5)
    times = SYNTH_NOW - rng.uniform(30, 700, n_honest) * DAY
    truth = replace(world.truth, item_quality=np.append(world.truth.item_quality, quality))
    items = {
        "topic": np.append(world.items["topic"], topic).astype(object),
        "title": np.append(world.items["title"], f"Target item {k}").astype(object),
        "created_at": np.append(world.items["created_at"], times.min() - DAY),
    }
    new = replace(world, truth=truth, items=items)
    return _append_ratings(new, raters, np.full(n_honest, k), stars, times, np.zeros(n_honest, bool),
                           rng.integers(0, 10_000, n_honest)), k


def add_bot_attack(world: SynthWorld, item_index: int, n_bots: int, *, variant: str = "fresh",
                   burst_hours: float | None = None, generated_text: bool = False, camouflage_ratings: int = 20,
                   rating: float = 5.0, seed: int = 0) -> SynthWorld:
    """A new world where ``n_bots`` new accounts give ``rating`` stars to ``item_index``.

    ``variant="fresh"``: accounts created days before the attack with no other ratings;
    ``"camouflaged"``: each also rates ``camouflage_ratings`` other items honestly (sd 0.3 stars)
    during the year before. ``burst_hours`` packs the attack into that window (else it spreads over
    180 days). ``generated_text`` gives the bot reviews generic hype text (else genuine-looking templates).
    """
    if variant not in ("fresh", "camouflaged"):
        raise ValueError(f"variant must be 'fresh' or 'camouflaged', not {variant!r}")
    rng = np.random.default_rng(seed)
    first = world.n_users
    bots = np.arange(first, first + n_bots)
    window = (burst_hours * 3600.0) if burst_hours else 180 * DAY
    attack_start = SYNTH_NOW - 10 * DAY - window
    t_attack = attack_start + rng.random(n_bots) * window
    codes = -(rng.integers(0, len(_HYPE), n_bots) + 1) if generated_text else rng.integers(0, 10_000, n_bots)
    au, ai, at, ast, afake, acode = [bots], [np.full(n_bots, item_index)], [t_attack], \
        [np.full(n_bots, float(rating))], [np.ones(n_bots, bool)], [codes]
    if variant == "camouflaged":
        pool = np.setdiff1d(np.arange(world.n_items), [item_index])
        for b in bots:
            others = rng.choice(pool, camouflage_ratings, replace=False)
            au.append(np.full(camouflage_ratings, b))
            ai.append(others)
            at.append(attack_start - rng.random(camouflage_ratings) * 365 * DAY)
            ast.append(np.clip(np.rint(world.truth.item_quality[others]
                                       + 0.3 * rng.standard_normal(camouflage_ratings)), 1, 5))
            afake.append(np.zeros(camouflage_ratings, bool))
            acode.append(rng.integers(0, 10_000, camouflage_ratings))
    u, i, t = np.concatenate(au), np.concatenate(ai), np.concatenate(at)
    lead = rng.uniform(0.2, 3, n_bots) * DAY if variant == "fresh" else rng.uniform(30, 90, n_bots) * DAY
    first_t = np.full(n_bots, np.inf)
    np.minimum.at(first_t, u - first, t)
    kind = "bot_fresh" if variant == "fresh" else "bot_camouflaged"
    ring_id = int(world.truth.user_ring.max()) + 1 if world.n_users else 0
    truth = replace(
        world.truth,
        user_kind=np.concatenate([world.truth.user_kind, np.full(n_bots, kind, dtype=object)]),
        user_precision=np.concatenate([world.truth.user_precision, np.full(n_bots, 1.0 / (0.3 / 4.0) ** 2)]),
        user_bias=np.concatenate([world.truth.user_bias, np.zeros(n_bots)]),
        user_ring=np.concatenate([world.truth.user_ring, np.full(n_bots, ring_id)]),
        target_items=np.unique(np.append(world.truth.target_items, item_index)),
    )
    users = {
        "kind": truth.user_kind,
        "role": np.concatenate([world.users["role"], np.full(n_bots, "person", dtype=object)]),
        "created_at": np.concatenate([world.users["created_at"], first_t - lead]),
    }
    new = replace(world, truth=truth, users=users)
    return _append_ratings(new, u, i, np.concatenate(ast), t, np.concatenate(afake), np.concatenate(acode))


def _append_ratings(world: SynthWorld, u: np.ndarray, i: np.ndarray, stars: np.ndarray, t: np.ndarray,
                    fake: np.ndarray, codes: np.ndarray) -> SynthWorld:
    r = world.ratings
    m = u.shape[0]
    ratings = {
        "user": np.concatenate([r["user"], u]).astype(np.int64),
        "item": np.concatenate([r["item"], i]).astype(np.int64),
        "stars": np.concatenate([r["stars"], stars]).astype(np.float64),
        "created_at": np.concatenate([r["created_at"], t]),
        "text_code": np.concatenate([r["text_code"], codes]),
        "incentivized": np.concatenate([r["incentivized"], np.zeros(m, bool)]),
        "verified": np.concatenate([r["verified"], ~fake & (np.arange(m) % 5 != 0)]),
        "photos": np.concatenate([r["photos"], np.zeros(m, dtype=r["photos"].dtype)]),
    }
    truth = replace(world.truth, review_is_fake=np.concatenate([world.truth.review_is_fake, fake]))
    return replace(world, ratings=ratings, truth=truth)


# ---------------------------------------------------------------------------------------------- realistic attacks
# (issue 11) Campaigns as review farms run them. Every function returns a new world; the campaign's
# ratings of its targets are labelled fake (``truth.review_is_fake``) and its accounts get a ``user_kind``
# (``ring_aged``, ``ring_fresh``, ``sock_puppet``) and a ``user_ring`` id; incentivised reviewers stay
# ``honest`` accounts whose sponsored ratings are labelled. Camouflage and organic ratings are not fake.
_PARAPHRASE = ("really", "truly", "so", "very", "just", "honestly", "seriously", "totally")


def _campaign_code(template: int, variant: int) -> int:
    """Text code of a campaign review: codes <= -100 are a campaign template, paraphrased by ``variant``."""
    return -(100 + template + 5 * variant)


def campaign_text(code: int, noun: str) -> str:
    """Text of a campaign code (:func:`_campaign_code`): the template with ``variant`` filler words swapped
    in, so paraphrases share most but not all word 3-shingles."""
    k = -code - 100
    template, variant = k % 5, k // 5
    words = _HYPE[template].format(noun=noun).split()
    if variant:
        r = np.random.default_rng(variant)
        for _ in range(1 + variant % 3):
            pos = int(r.integers(1, len(words)))
            words.insert(pos, _PARAPHRASE[int(r.integers(0, len(_PARAPHRASE)))])
    return " ".join(words)


def add_ring_campaign(world: SynthWorld, targets: list[int] | npt.NDArray[np.int64], n_accounts: int, *,
                      rating: float = 5.0, accounts: str = "aged", camouflage_ratings: int = 20,
                      spread_days: float = 180.0, gap_days: float = 45.0, created_together: bool = False,
                      text: str = "genuine", seed: int = 0) -> SynthWorld:
    """A paid ring of ``n_accounts`` accounts, reused on every item of ``targets`` (up: ``rating`` 5,
    review bombing: ``rating`` 1).

    ``accounts="fresh"``: created days before their first rating, nothing else rated.
    ``accounts="aged"``: created one to three years before the campaign (all within three days of each
    other when ``created_together``: a cohort), with ``camouflage_ratings`` organic-looking ratings each
    (honest noise, sd 0.4-0.8 stars, spread from creation until now).
    The campaign on target ``k`` starts ``gap_days`` after the one on target ``k-1`` and spreads its
    ratings uniformly over ``spread_days`` (slow; a few hours for a burst); the last one ends 10 days
    before :data:`SYNTH_NOW`. ``text``: ``"genuine"`` (ordinary templates), ``"templated"`` (one hype text
    per ring) or ``"paraphrased"`` (the ring's text with words swapped in per account).
    """
    if accounts not in ("fresh", "aged"):
        raise ValueError(f"accounts must be 'fresh' or 'aged', not {accounts!r}")
    if text not in ("genuine", "templated", "paraphrased"):
        raise ValueError(f"text must be 'genuine', 'templated' or 'paraphrased', not {text!r}")
    targets = np.asarray(targets, dtype=np.int64)
    rng = np.random.default_rng(seed)
    first = world.n_users
    members = np.arange(first, first + n_accounts)
    spread = spread_days * DAY
    n_t = targets.size
    end = SYNTH_NOW - 10 * DAY
    starts = end - spread - (n_t - 1 - np.arange(n_t)) * gap_days * DAY
    template = int(rng.integers(0, len(_HYPE)))
    au, ai, at, ast, afake, acode = [], [], [], [], [], []
    for k, target in enumerate(targets):
        au.append(members)
        ai.append(np.full(n_accounts, target))
        at.append(starts[k] + rng.random(n_accounts) * spread)
        ast.append(np.full(n_accounts, float(rating)))
        afake.append(np.ones(n_accounts, bool))
        if text == "genuine":
            acode.append(rng.integers(0, 10_000, n_accounts))
        elif text == "templated":
            acode.append(np.full(n_accounts, _campaign_code(template, 0)))
        else:
            acode.append(np.array([_campaign_code(template, 1 + m % 50) for m in range(n_accounts)]))
    campaign_start = float(starts.min())
    if accounts == "aged":
        if created_together:
            created = campaign_start - 400 * DAY + rng.random(n_accounts) * 3 * DAY
        else:
            created = campaign_start - rng.uniform(365, 3 * 365, n_accounts) * DAY
        pool = np.setdiff1d(np.arange(world.n_items), targets)
        sd = rng.uniform(0.4, 0.8, n_accounts)
        for m, b in enumerate(members):
            others = rng.choice(pool, camouflage_ratings, replace=False)
            au.append(np.full(camouflage_ratings, b))
            ai.append(others)
            at.append(created[m] + rng.random(camouflage_ratings) * (SYNTH_NOW - created[m]))
            ast.append(np.clip(np.rint(world.truth.item_quality[others]
                                       + sd[m] * rng.standard_normal(camouflage_ratings)), 1, 5))
            afake.append(np.zeros(camouflage_ratings, bool))
            acode.append(rng.integers(0, 10_000, camouflage_ratings))
        kind = "ring_aged"
    else:
        kind = "ring_fresh"
        created = np.full(n_accounts, np.inf)
        for k in range(n_t):
            created = np.minimum(created, at[k])
        created = created - rng.uniform(0.2, 3, n_accounts) * DAY
    new = _add_accounts(world, n_accounts, kind, created, sd=0.3)
    return _append_ratings(new, np.concatenate(au), np.concatenate(ai), np.concatenate(ast), np.concatenate(at),
                           np.concatenate(afake), np.concatenate(acode))


def add_sock_puppets(world: SynthWorld, n_people: int, accounts_each: int, items: list[int] | npt.NDArray[np.int64],
                     *, rating: float = 5.0, seed: int = 0) -> SynthWorld:
    """``n_people`` people, each running ``accounts_each`` accounts that all rate the same ``items``
    (e.g. their own shop's products) within a few weeks; accounts created on the same day per person."""
    rng = np.random.default_rng(seed)
    items = np.asarray(items, dtype=np.int64)
    n = n_people * accounts_each
    first = world.n_users
    accts = np.arange(first, first + n)
    person_t = SYNTH_NOW - rng.uniform(30, 300, n_people) * DAY
    t_acc = np.repeat(person_t, accounts_each)
    u = np.repeat(accts, items.size)
    i = np.tile(items, n)
    t = np.repeat(t_acc, items.size) + rng.uniform(0, 21, u.size) * DAY
    new = _add_accounts(world, n, "sock_puppet", t_acc - rng.uniform(0, 1, n) * DAY, sd=0.3,
                        ring=np.repeat(np.arange(n_people), accounts_each))
    return _append_ratings(new, u, i, np.full(u.size, float(rating)), t, np.ones(u.size, bool),
                           rng.integers(0, 10_000, u.size))


def add_incentivised(world: SynthWorld, items: list[int] | npt.NDArray[np.int64], n_reviewers: int, *,
                     bias: float = 1.0, seed: int = 0) -> SynthWorld:
    """``n_reviewers`` real honest users rate sponsored ``items`` with their honest opinion plus ``bias``
    stars, undisclosed (labelled fake; the accounts stay ``honest``: their other ratings are genuine)."""
    rng = np.random.default_rng(seed)
    items = np.asarray(items, dtype=np.int64)
    honest = np.flatnonzero(world.truth.user_kind == "honest")
    out = world
    for item in items:
        raters = rng.choice(honest, n_reviewers, replace=False)
        sd = 4.0 / np.sqrt(world.truth.user_precision[raters])
        stars = np.clip(np.rint(world.truth.item_quality[item] + bias + sd * rng.standard_normal(n_reviewers)), 1, 5)
        t = SYNTH_NOW - rng.uniform(10, 200, n_reviewers) * DAY
        out = _append_ratings(out, raters, np.full(n_reviewers, item), stars, t, np.ones(n_reviewers, bool),
                              rng.integers(0, 10_000, n_reviewers))
    return out


def add_genuine_change(world: SynthWorld, item: int, new_quality: float, n_ratings: int, *,
                       change_days_ago: float = 180.0, seed: int = 0) -> SynthWorld:
    """The item really changes: from ``change_days_ago`` days before now, ``n_ratings`` honest raters
    (established accounts) rate it at ``new_quality``, spread evenly until now. Nothing is fake."""
    rng = np.random.default_rng(seed)
    honest = np.flatnonzero(world.truth.user_kind == "honest")
    already = world.ratings["user"][world.ratings["item"] == item]
    raters = rng.choice(np.setdiff1d(honest, already), n_ratings, replace=False)
    sd = 4.0 / np.sqrt(world.truth.user_precision[raters])
    stars = np.clip(np.rint(new_quality + sd * rng.standard_normal(n_ratings)), 1, 5)
    t = SYNTH_NOW - change_days_ago * DAY + np.sort(rng.random(n_ratings)) * change_days_ago * DAY
    return _append_ratings(world, raters, np.full(n_ratings, item), stars, t, np.zeros(n_ratings, bool),
                           rng.integers(0, 10_000, n_ratings))


def _add_accounts(world: SynthWorld, n: int, kind: str, created: np.ndarray, *, sd: float,
                  ring: np.ndarray | None = None) -> SynthWorld:
    base = int(world.truth.user_ring.max()) + 1 if world.n_users else 0
    rings = np.full(n, base) if ring is None else base + np.asarray(ring)
    truth = replace(
        world.truth,
        user_kind=np.concatenate([world.truth.user_kind, np.full(n, kind, dtype=object)]),
        user_precision=np.concatenate([world.truth.user_precision, np.full(n, 1.0 / (sd / 4.0) ** 2)]),
        user_bias=np.concatenate([world.truth.user_bias, np.zeros(n)]),
        user_ring=np.concatenate([world.truth.user_ring, rings]).astype(np.int64),
    )
    users = {"kind": truth.user_kind,
             "role": np.concatenate([world.users["role"], np.full(n, "person", dtype=object)]),
             "created_at": np.concatenate([world.users["created_at"], created])}
    return replace(world, truth=truth, users=users)


def account_labels(world: SynthWorld) -> npt.NDArray[np.bool_]:
    """Per account: True when it wrote at least one planted fake rating (bots, rings, sock puppets and
    incentivised reviewers)."""
    out = np.zeros(world.n_users, dtype=bool)
    out[world.ratings["user"][world.truth.review_is_fake]] = True
    return out


# ----------------------------------------------------------------------------------- streamed Parquet
#: Columns of a streamed reviews file: the ``truescore export reviews`` layout without texts.
STREAM_COLUMNS = ("id", "item_id", "user_id", "rating", "min_rating", "max_rating", "created_at", "supersedes")


def _prefixed(prefix: str, values: npt.NDArray[np.int64]) -> Any:
    """``prefix + str(value)`` for every value, as an Arrow string array (vectorised in Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(pa.array(values), pa.string())
    return pc.binary_join_element_wise(pa.scalar(prefix), text, "")


def write_ratings_parquet(path: Any, n_ratings: int, *, n_users: int | None = None, n_items: int | None = None,
                          seed: int = 0, chunk: int = 2_000_000, years: float = 4.0,
                          progress: Callable[[int, int], None] | None = None) -> StreamedRatings:
    """Write ``n_ratings`` synthetic ratings to a reviews Parquet file, ``chunk`` rows at a time.

    The same rating model as :func:`generate` without rings or texts: item quality
    ``q_i = 1 + 4 Beta(4, 2)``, honest raters with star noise ``s_u ~ LogNormal(log 0.55, 0.35)``, 8% harsh
    and 8% lenient (bias -/+ 0.5..1.2 stars), 10% careless (sd 1.5..2.5), log-normal popularity of users
    and items; ``r_ui = round(clip(q_i + b_u + s_u eps, 1, 5))``. Only per-user and per-item arrays are
    held (O(users + items)); each chunk of ratings is drawn, written as a row group and dropped, so
    100 M ratings need no 100 M-row lists. A (user, item) pair may repeat (a second review of the same
    product), which the fit treats as another rating. Defaults: ``n_users = n_ratings / 20``,
    ``n_items = n_ratings / 200``. Returns the sizes and the planted truth's summary.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if n_ratings < 1 or chunk < 1:
        raise ValueError("n_ratings and chunk must be >= 1")
    n_users = int(n_users or max(10, n_ratings // 20))
    n_items = int(n_items or max(5, n_ratings // 200))
    rng = np.random.default_rng(seed)
    quality = 1.0 + 4.0 * rng.beta(4.0, 2.0, n_items)
    noise = rng.lognormal(np.log(0.55), 0.35, n_users)
    bias = np.zeros(n_users)
    roll = rng.random(n_users)
    harsh, lenient, careless = roll < 0.08, (roll >= 0.08) & (roll < 0.16), (roll >= 0.16) & (roll < 0.26)
    bias[harsh] = -rng.uniform(0.5, 1.2, int(harsh.sum()))
    bias[lenient] = rng.uniform(0.5, 1.2, int(lenient.sum()))
    noise[careless] = rng.uniform(1.5, 2.5, int(careless.sum()))
    cu = np.cumsum(_zipf_weights(rng, n_users, 1.0))
    ci = np.cumsum(_zipf_weights(rng, n_items, 1.2))
    t_end = SYNTH_NOW
    t_start = t_end - years * 365 * DAY
    schema = pa.schema([("id", pa.string()), ("item_id", pa.string()), ("user_id", pa.string()),
                        ("rating", pa.float64()), ("min_rating", pa.float64()), ("max_rating", pa.float64()),
                        ("created_at", pa.float64()), ("supersedes", pa.string())])
    written = 0
    with pq.ParquetWriter(str(path), schema, compression="snappy") as writer:
        while written < n_ratings:
            m = min(chunk, n_ratings - written)
            u = np.minimum(np.searchsorted(cu, rng.random(m)), n_users - 1)
            i = np.minimum(np.searchsorted(ci, rng.random(m)), n_items - 1)
            stars = np.clip(np.rint(quality[i] + bias[u] + noise[u] * rng.standard_normal(m)), 1.0, 5.0)
            times = t_start + (written + np.arange(m)) * ((t_end - t_start) / n_ratings)  # in id order
            ids = np.arange(written, written + m)
            table = pa.table({
                "id": _prefixed("r", ids), "item_id": _prefixed("i", i), "user_id": _prefixed("u", u),
                "rating": stars, "min_rating": np.ones(m), "max_rating": np.full(m, 5.0), "created_at": times,
                "supersedes": pa.nulls(m, pa.string()),
            }, schema=schema)
            writer.write_table(table)
            written += m
            if progress is not None:
                progress(written, n_ratings)
    return StreamedRatings(n_ratings=written, n_users=n_users, n_items=n_items, seed=seed, item_quality=quality,
                           user_bias=bias, user_noise_sd=noise)
