"""Review features in 8 categories, computed in bulk from a review frame.

Input: a pandas DataFrame with the columns of ``store.review_frame()`` (``id, item_id, user_id, rating,
min_rating, max_rating, title, text, created_at`` (epoch s), ``is_recommended, is_incentivized,
verified_purchase, photo_count``), any of which except ``text`` may be missing, plus optionally a vote frame
(``review_id, voter_id, helpful``). A feature whose inputs are missing is NaN (the tree models route NaN; the
linear models impute), so text-only data sets get the text categories and nothing breaks.

Categories (the full table with definitions is ``docs/features.md`` and :data:`FEATURES`):

``text``         text statistics (length, sentences, digits, punctuation, ...)
``style``        linguistic style (pronouns, superlatives, exclamations, capitals, lexical diversity,
                 readability, LIWC-like word classes, generation artefacts)
``rating``       rating behaviour (extremity, deviation from the item's leave-one-out consensus)
``consistency``  rating-text consistency (stars against VADER sentiment)
``history``      reviewer history (review count, mean and spread of ratings, share of extremes, account age)
``timing``       bursts on an item, the reviewer's inter-arrival times, many reviews in one day
``engagement``   helpful and unhelpful votes, photos
``duplication``  near-duplicate similarity (TF-IDF cosine) to other reviews of the item, of the user, of all
``disclosure``   incentivized, verified purchase, recommendation, incentive wording in the text

(``text`` and ``style`` together are the issue's first two categories; duplication and disclosure are the
last two, which makes 8 groups of the issue's list plus the split of text statistics from style.)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.text._common import check_texts

__all__ = [
    "CATEGORIES",
    "FEATURES",
    "GLOBAL_FEATURES",
    "ITEM_FEATURES",
    "ITEM_INPUTS",
    "REVIEW_FEATURES",
    "TEXT_FEATURES",
    "USER_FEATURES",
    "USER_INPUTS",
    "FeatureContext",
    "FeatureSpec",
    "compute_features",
    "document_terms",
    "exact_duplicate_count",
    "feature_context",
    "idf_table",
    "item_features",
    "normalized_text",
    "review_features",
    "text_features",
    "time_fill",
    "user_features",
    "vader_scores",
    "vote_totals",
]

_DAY = 86_400.0
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_VOWELS = re.compile(r"[aeiouy]+")

_FIRST_SING = frozenset("i me my mine myself i'm i've i'd i'll".split())
_FIRST_PLUR = frozenset("we us our ours ourselves we're we've we'd we'll".split())
_SECOND = frozenset("you your yours yourself yourselves you're you've you'll you'd".split())
_THIRD = frozenset("he she him her his hers they them their theirs it its himself herself themselves".split())
_SUPERLATIVE_WORDS = frozenset(
    "best worst most least greatest finest perfect amazing awesome incredible excellent fantastic outstanding "
    "ever never absolutely".split()
)
_NOT_SUPERLATIVE_EST = frozenset("est test rest best west nest guest honest interest forest chest request".split())
_SPATIAL = frozenset(
    "floor room bathroom bed location lobby view street block walk walking distance near nearby downtown corner "
    "window door elevator pool bar restaurant area located inside outside upstairs downstairs above below size "
    "small large tiny huge inch inches feet foot side top bottom left right front back".split()
)
_FAMILY_SOCIAL = frozenset(
    "husband wife family kids children son daughter friend friends boyfriend girlfriend mom dad mother father "
    "partner business conference trip vacation anniversary wedding honeymoon".split()
)
_TIME_WORDS = frozenset(
    "day days night nights week weeks month months year years hour hours minute minutes morning evening "
    "today yesterday tomorrow after before then when later ago since".split()
)
_EXCLUSIVE = frozenset("but except without although however though unless whereas yet".split())
_NEGATION = frozenset("not no never nothing nobody none nor cannot can't don't won't isn't wasn't didn't".split())
_TENTATIVE = frozenset("maybe perhaps might possibly probably seem seems seemed guess somewhat fairly".split())
_CERTAINTY = frozenset("always definitely certainly clearly absolutely totally completely sure really".split())
_FUNCTION = frozenset(
    "the a an and or of to in on at for with by from as is was are were be been it this that these those "
    "so if than too very just".split()
)
_INCENTIVE = re.compile(
    r"(free (?:of charge|in exchange|sample|product)|in exchange for|discount(?:ed)? (?:price|rate)? ?for|"
    r"honest (?:and unbiased )?review|received (?:this|the) (?:product|item)|sent (?:me )?(?:this|a) sample|"
    r"provided (?:to me )?(?:by|for)|complimentary)",
    re.I,
)


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """One feature: its column name, category and definition (as listed in ``docs/features.md``)."""

    name: str
    category: str
    definition: str


_F = FeatureSpec
FEATURES: tuple[FeatureSpec, ...] = (
    # -- text statistics --------------------------------------------------------------------------------
    _F("char_count", "text", "Characters in the text."),
    _F("log_char_count", "text", "log(1 + characters)."),
    _F("word_count", "text", "Words (letter runs, apostrophes and hyphens kept)."),
    _F("sentence_count", "text", "Sentences (split after . ! ? followed by space, and at newlines)."),
    _F("mean_word_length", "text", "Mean characters per word."),
    _F("mean_sentence_words", "text", "Mean words per sentence."),
    _F("sd_sentence_words", "text", "Standard deviation of words per sentence."),
    _F("long_word_ratio", "text", "Share of words with more than 6 letters."),
    _F("digit_ratio", "text", "Digits / characters."),
    _F("punctuation_ratio", "text", "Punctuation characters / characters."),
    _F("paragraph_count", "text", "Non-empty blocks separated by newlines."),
    _F("title_word_count", "text", "Words in the review title (NaN without a title column)."),
    # -- linguistic style -------------------------------------------------------------------------------
    _F("first_person_singular", "style", "Share of words that are I/me/my/mine/myself (and contractions)."),
    _F("first_person_plural", "style", "Share of words that are we/us/our/ours/ourselves."),
    _F("second_person", "style", "Share of words that are you/your/yours/yourself."),
    _F("third_person", "style", "Share of words that are he/she/they/it and their forms."),
    _F("superlative_ratio", "style", "Share of superlatives: words in -est (not a stop list) or best/most/ever..."),
    _F("exclamation_count", "style", "Number of '!'."),
    _F("exclamation_per_sentence", "style", "'!' per sentence."),
    _F("question_count", "style", "Number of '?'."),
    _F("capital_ratio", "style", "Upper-case letters / letters."),
    _F("all_caps_word_ratio", "style", "Share of words of 2+ letters written entirely in capitals."),
    _F("type_token_ratio", "style", "Distinct lower-cased words / words (lexical diversity)."),
    _F("hapax_ratio", "style", "Words used exactly once / distinct words."),
    _F("syllables_per_word", "style", "Mean syllables per word (vowel-group count)."),
    _F("flesch_reading_ease", "style", "206.835 - 1.015 words/sentence - 84.6 syllables/word."),
    _F("flesch_kincaid_grade", "style", "0.39 words/sentence + 11.8 syllables/word - 15.59."),
    _F("spatial_ratio", "style", "Share of spatial/detail words (room, floor, location, size, ...; LIWC-like)."),
    _F("family_social_ratio", "style", "Share of family/social/occasion words (husband, trip, ...; Ott 2011 cue)."),
    _F("time_word_ratio", "style", "Share of time words (day, night, after, before, ...)."),
    _F("exclusive_ratio", "style", "Share of exclusive words (but, except, without, ...; truthful cue)."),
    _F("negation_ratio", "style", "Share of negations (not, no, never, n't forms)."),
    _F("tentative_ratio", "style", "Share of tentative words (maybe, perhaps, might, ...)."),
    _F("certainty_ratio", "style", "Share of certainty words (always, definitely, really, ...)."),
    _F("function_word_ratio", "style", "Share of function words (the, a, of, to, ...)."),
    _F("adverb_ly_ratio", "style", "Share of words ending in -ly."),
    _F("vader_compound", "style", "VADER compound sentiment in [-1, 1]."),
    _F("vader_pos", "style", "VADER positive share."),
    _F("vader_neg", "style", "VADER negative share."),
    _F("ends_without_terminal", "style", "1 if the text does not end in . ! ? ) or a quote (truncated generation)."),
    _F("missing_space_after_period", "style", "Count of '.X' with X an upper-case letter (glued sentences)."),
    _F("repeated_trigram_ratio", "style", "Share of word trigrams that occur more than once in the text."),
    _F("repeated_sentence_ratio", "style", "Share of sentences that repeat an earlier sentence of the text."),
    # -- rating behaviour -------------------------------------------------------------------------------
    _F("rating_norm", "rating", "(rating - min) / (max - min), in [0, 1]."),
    _F("rating_extremity", "rating", "|2 rating_norm - 1|: 1 at either end of the scale, 0 in the middle."),
    _F("is_extreme_rating", "rating", "1 if the rating is the minimum or the maximum of its scale."),
    _F("item_consensus", "rating", "Leave-one-out mean normalised rating of the item (NaN if alone)."),
    _F("deviation_from_item", "rating", "rating_norm - item_consensus."),
    _F("abs_deviation_from_item", "rating", "|deviation_from_item|."),
    _F("item_rating_sd", "rating", "Standard deviation of the item's normalised ratings."),
    _F("item_review_count", "rating", "Reviews of the item in the frame."),
    # -- rating-text consistency ------------------------------------------------------------------------
    _F("sentiment_rating_gap", "consistency", "(vader_compound + 1) / 2 - rating_norm."),
    _F("abs_sentiment_rating_gap", "consistency", "|sentiment_rating_gap|."),
    _F("sentiment_rating_conflict", "consistency", "1 if stars and text point opposite ways (>= 4/5 vs < -0.3, ...)."),
    # -- reviewer history -------------------------------------------------------------------------------
    _F("user_review_count", "history", "Reviews by the same user in the frame."),
    _F("user_mean_rating", "history", "Mean normalised rating of the user's reviews."),
    _F("user_rating_sd", "history", "Standard deviation of the user's normalised ratings."),
    _F("user_extreme_share", "history", "Share of the user's ratings at an end of the scale."),
    _F("user_account_age_days", "history", "Days from the user's first review in the frame to this review."),
    _F("user_mean_words", "history", "Mean word count of the user's reviews."),
    _F("user_single_review", "history", "1 if the user has exactly one review."),
    # -- timing -----------------------------------------------------------------------------------------
    _F("item_reviews_same_day", "timing", "Reviews of the item within +-12 h of this one (excluding it)."),
    _F("item_burst_share", "timing", "Share of the item's reviews within +-3 days of this one."),
    _F("item_days_since_first", "timing", "Days since the item's first review."),
    _F("user_reviews_same_day", "timing", "The user's reviews within +-12 h of this one (excluding it)."),
    _F("user_min_gap_hours", "timing", "Hours to the user's nearest other review."),
    _F("user_median_gap_days", "timing", "Median days between the user's consecutive reviews."),
    _F("review_rank_on_item", "timing", "Rank of this review in time on its item / item reviews (0 = first)."),
    # -- engagement -------------------------------------------------------------------------------------
    _F("helpful_votes", "engagement", "Helpful votes on the review."),
    _F("unhelpful_votes", "engagement", "Unhelpful votes on the review."),
    _F("total_votes", "engagement", "All votes on the review."),
    _F("helpful_share", "engagement", "(helpful + 1) / (total + 2): smoothed helpful share."),
    _F("photo_count", "engagement", "Photos attached."),
    _F("has_photo", "engagement", "1 if photo_count > 0."),
    # -- duplication ------------------------------------------------------------------------------------
    _F("max_sim_item", "duplication", "Max TF-IDF cosine to another review of the same item."),
    _F("max_sim_user", "duplication", "Max TF-IDF cosine to another review by the same user."),
    _F("max_sim_any", "duplication", "Max TF-IDF cosine to any other review in the frame (MinHash-free, exact)."),
    _F("exact_duplicate_count", "duplication", "Other reviews whose normalised text is identical."),
    # -- disclosure -------------------------------------------------------------------------------------
    _F("is_incentivized", "disclosure", "Disclosed incentivized review (1/0; NaN if unknown)."),
    _F("verified_purchase", "disclosure", "Verified purchase (1/0; NaN if unknown)."),
    _F("is_recommended", "disclosure", "Reviewer recommends the product (1/0; NaN if unknown)."),
    _F("incentive_wording", "disclosure", "1 if the text uses incentive wording ('in exchange for', 'free sample')."),
)
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(f.category for f in FEATURES))
TEXT_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.category in ("text", "style"))


class _PolarityScorer(Protocol):
    """What VADER's ``SentimentIntensityAnalyzer`` offers (vaderSentiment ships no type information)."""

    def polarity_scores(self, text: str) -> dict[str, float]: ...


@lru_cache(maxsize=1)
def _vader() -> _PolarityScorer:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer: _PolarityScorer = SentimentIntensityAnalyzer()
    return analyzer


def vader_scores(texts: Iterable[str]) -> npt.NDArray[np.float64]:
    """VADER ``(compound, pos, neg, neu)`` per text, an ``(n, 4)`` array."""
    sia = _vader()
    rows = []
    for t in texts:
        s = sia.polarity_scores(t)
        rows.append((s["compound"], s["pos"], s["neg"], s["neu"]))
    return np.asarray(rows, dtype=float).reshape(-1, 4)


def _syllables(word: str) -> int:
    groups = _VOWELS.findall(word.lower())
    n = len(groups)
    if word.lower().endswith("e") and n > 1:
        n -= 1
    return max(1, n)


def _share(words: list[str], vocab: frozenset[str]) -> float:
    return sum(w in vocab for w in words) / len(words) if words else 0.0


def _one_text(text: str) -> list[float]:
    """Text statistics and style features of one text (in the order of TEXT_FEATURES, minus title/VADER)."""
    n_chars = len(text)
    raw_words = _WORD.findall(text)
    words = [w.lower() for w in raw_words]
    n_words = len(words)
    sentences = [s for s in _SENT_SPLIT.split(text.strip()) if _WORD.search(s)]
    sent_lens = np.array([len(_WORD.findall(s)) for s in sentences], dtype=float) if sentences else np.zeros(1)
    n_sent = max(1, len(sentences))
    letters = sum(c.isalpha() for c in text)
    uppers = sum(c.isupper() for c in text)
    digits = sum(c.isdigit() for c in text)
    punct = sum((not c.isalnum()) and (not c.isspace()) for c in text)
    syll = [_syllables(w) for w in words]
    spw = float(np.mean(syll)) if syll else 0.0
    wps = n_words / n_sent
    counts: dict[str, int] = {}
    for w in words:
        counts[w] = counts.get(w, 0) + 1
    trigrams = [tuple(words[i : i + 3]) for i in range(max(0, n_words - 2))]
    tri_counts: dict[tuple[str, ...], int] = {}
    for g in trigrams:
        tri_counts[g] = tri_counts.get(g, 0) + 1
    norm_sents = [" ".join(_WORD.findall(s.lower())) for s in sentences]
    seen: set[str] = set()
    rep_sent = 0
    for s in norm_sents:
        if s in seen:
            rep_sent += 1
        seen.add(s)
    superl = sum(
        (w in _SUPERLATIVE_WORDS) or (len(w) > 4 and w.endswith("est") and w not in _NOT_SUPERLATIVE_EST)
        for w in words
    )
    stripped = text.rstrip()
    return [
        float(n_chars),
        math.log1p(n_chars),
        float(n_words),
        float(len(sentences)),
        float(np.mean([len(w) for w in words])) if words else 0.0,
        float(sent_lens.mean()),
        float(sent_lens.std()),
        sum(len(w) > 6 for w in words) / n_words if n_words else 0.0,
        digits / n_chars if n_chars else 0.0,
        punct / n_chars if n_chars else 0.0,
        float(sum(1 for b in re.split(r"\n\s*\n|\n", text) if b.strip())),
        # style
        _share(words, _FIRST_SING),
        _share(words, _FIRST_PLUR),
        _share(words, _SECOND),
        _share(words, _THIRD),
        superl / n_words if n_words else 0.0,
        float(text.count("!")),
        text.count("!") / n_sent,
        float(text.count("?")),
        uppers / letters if letters else 0.0,
        sum(len(w) >= 2 and w.isupper() for w in raw_words) / n_words if n_words else 0.0,
        len(counts) / n_words if n_words else 0.0,
        sum(c == 1 for c in counts.values()) / len(counts) if counts else 0.0,
        spw,
        206.835 - 1.015 * wps - 84.6 * spw if n_words else 0.0,
        0.39 * wps + 11.8 * spw - 15.59 if n_words else 0.0,
        _share(words, _SPATIAL),
        _share(words, _FAMILY_SOCIAL),
        _share(words, _TIME_WORDS),
        _share(words, _EXCLUSIVE),
        sum((w in _NEGATION) or w.endswith("n't") for w in words) / n_words if n_words else 0.0,
        _share(words, _TENTATIVE),
        _share(words, _CERTAINTY),
        _share(words, _FUNCTION),
        sum(len(w) > 3 and w.endswith("ly") for w in words) / n_words if n_words else 0.0,
        float(bool(stripped) and stripped[-1] not in ".!?)\"'"),
        float(len(re.findall(r"[a-z][.!?][A-Z]", text))),
        sum(c for c in tri_counts.values() if c > 1) / len(trigrams) if trigrams else 0.0,
        rep_sent / len(norm_sents) if norm_sents else 0.0,
    ]


_TEXT_ONLY = [n for n in TEXT_FEATURES if n not in ("title_word_count", "vader_compound", "vader_pos", "vader_neg")]


def _as_texts(df: pd.DataFrame) -> list[str]:
    if "text" not in df.columns:
        raise ValueError("reviews frame has no 'text' column")
    return check_texts(df["text"].tolist(), name="text", allow_empty=True)


def text_features(
    texts: list[str], titles: list[str] | None = None, vader: npt.NDArray[np.float64] | None = None
) -> pd.DataFrame:
    """The ``text`` and ``style`` categories for a list of texts (no metadata needed).

    ``vader`` may pass precomputed :func:`vader_scores` to avoid computing them twice.
    """
    rows = [_one_text(t) for t in texts]
    out = pd.DataFrame(rows, columns=_TEXT_ONLY, dtype=float) if rows else pd.DataFrame(columns=_TEXT_ONLY, dtype=float)
    out["title_word_count"] = (
        [float(len(_WORD.findall(t or ""))) for t in titles] if titles is not None else np.nan
    )
    v = vader if vader is not None else vader_scores(texts)
    out["vader_compound"], out["vader_pos"], out["vader_neg"] = v[:, 0], v[:, 1], v[:, 2]
    return out[list(TEXT_FEATURES)]


def _col(df: pd.DataFrame, name: str) -> pd.Series | None:
    return df[name] if name in df.columns else None


def _bool_col(df: pd.DataFrame, name: str) -> npt.NDArray[np.float64]:
    s = _col(df, name)
    if s is None:
        return np.full(len(df), np.nan)
    flags = pd.to_numeric(s.map(lambda v: np.nan if v is None else float(bool(v)) if not isinstance(v, float) else v),
                          errors="coerce")
    return np.asarray(flags.to_numpy(dtype=float), dtype=np.float64)


def _rating_norm(df: pd.DataFrame) -> npt.NDArray[np.float64]:
    r = _col(df, "rating")
    if r is None:
        return np.full(len(df), np.nan)
    lo = pd.to_numeric(df["min_rating"], errors="coerce") if "min_rating" in df else pd.Series(1.0, index=df.index)
    hi = pd.to_numeric(df["max_rating"], errors="coerce") if "max_rating" in df else pd.Series(5.0, index=df.index)
    span = (hi - lo).where(lambda s: s > 0)
    return np.asarray(((pd.to_numeric(r, errors="coerce") - lo) / span).clip(0, 1).to_numpy(dtype=float),
                      dtype=np.float64)


def _window_counts(times: npt.NDArray[np.float64], half_width: float) -> npt.NDArray[np.float64]:
    """For sorted ``times``: number of OTHER events within +-half_width of each."""
    lo = np.searchsorted(times, times - half_width, side="left")
    hi = np.searchsorted(times, times + half_width, side="right")
    return (hi - lo - 1).astype(float)


def _group_timing(
    keys: npt.NDArray[np.int64], times: npt.NDArray[np.float64]
) -> dict[str, npt.NDArray[np.float64]]:
    n = len(keys)
    res = {k: np.full(n, np.nan) for k in ("same_day", "burst3", "since_first", "min_gap", "median_gap", "rank")}
    order = np.lexsort((times, keys))
    ks, ts = keys[order], times[order]
    bounds = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1], True])
    for a, b in pairwise(bounds):
        t = ts[a:b]
        idx = order[a:b]
        m = int(b - a)
        res["same_day"][idx] = _window_counts(t, _DAY / 2)
        res["burst3"][idx] = (_window_counts(t, 3 * _DAY) + 1) / m
        res["since_first"][idx] = (t - t[0]) / _DAY
        res["rank"][idx] = np.arange(m) / max(1, m - 1) if m > 1 else 0.0
        if m > 1:
            gaps = np.diff(t)
            left = np.r_[np.inf, gaps]
            right = np.r_[gaps, np.inf]
            res["min_gap"][idx] = np.minimum(left, right) / 3600.0
            res["median_gap"][idx] = float(np.median(gaps)) / _DAY
    return res


# -- where each feature's inputs live ---------------------------------------------------------------------
# Every feature is one of four kinds; :func:`compute_features` is composed from one function per kind, and
# the Spark job (truescore.spark.features) calls the same functions on one group's rows at a time.
ITEM_FEATURES: tuple[str, ...] = (
    "item_consensus", "deviation_from_item", "abs_deviation_from_item", "item_rating_sd", "item_review_count",
    "item_reviews_same_day", "item_burst_share", "item_days_since_first", "review_rank_on_item", "max_sim_item",
)
"""Need every review of the item (:func:`item_features`)."""
USER_FEATURES: tuple[str, ...] = (
    "user_review_count", "user_mean_rating", "user_rating_sd", "user_extreme_share", "user_account_age_days",
    "user_mean_words", "user_single_review", "user_reviews_same_day", "user_min_gap_hours",
    "user_median_gap_days", "max_sim_user",
)
"""Need every review of the reviewer (:func:`user_features`)."""
GLOBAL_FEATURES: tuple[str, ...] = ("max_sim_any", "exact_duplicate_count")
"""Need every review: all pairs (``max_sim_any``), or a count per normalised text (``exact_duplicate_count``)."""
REVIEW_FEATURES: tuple[str, ...] = tuple(
    f.name for f in FEATURES if f.name not in (*ITEM_FEATURES, *USER_FEATURES, *GLOBAL_FEATURES)
)
"""Need the review's own row only (its text, rating, metadata and vote totals: :func:`review_features`)."""
ITEM_INPUTS: tuple[str, ...] = ("item_id", "created_at", "text", "rating_norm")
"""Columns :func:`item_features` reads (``created_at`` optional)."""
USER_INPUTS: tuple[str, ...] = ("user_id", "created_at", "text", "rating_norm", "is_extreme_rating", "word_count")
"""Columns :func:`user_features` reads (``created_at`` optional)."""


@dataclass(frozen=True, slots=True)
class FeatureContext:
    """The global inputs of the group features, small enough to broadcast to every group.

    ``idf`` maps every word of the corpus (sklearn's default analyzer: lower case, ``\\b\\w\\w+\\b``) to
    its smoothed inverse document frequency ``idf(w) = ln((n + 1) / (df(w) + 1)) + 1`` over the ``n``
    texts (scikit-learn's ``TfidfVectorizer`` formula). ``time_fill`` replaces a missing ``created_at``
    in the timing features: the median of the known times; None when no time is known (timing is NaN).
    """

    idf: Mapping[str, float]
    time_fill: float | None


@lru_cache(maxsize=1)
def _analyzer() -> Callable[[str], list[str]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyzer: Callable[[str], list[str]] = TfidfVectorizer(sublinear_tf=True, min_df=1).build_analyzer()
    return analyzer


def document_terms(text: str) -> set[str]:
    """The distinct words of one text, as the TF-IDF vocabulary counts them (one document frequency each)."""
    return set(_analyzer()(text))


def idf_table(document_frequency: Mapping[str, int], n_documents: int) -> dict[str, float]:
    """``ln((n + 1) / (df + 1)) + 1`` per word, in scikit-learn's float64 operation order."""
    words = list(document_frequency)
    df = np.fromiter((document_frequency[w] for w in words), dtype=float, count=len(words)) + 1.0
    idf = np.full_like(df, fill_value=n_documents + 1, dtype=float)
    idf /= df
    np.log(idf, out=idf)
    idf += 1.0
    return dict(zip(words, idf.tolist(), strict=True))


def time_fill(times: npt.NDArray[np.float64] | None) -> float | None:
    """Median of the known times (the timing features' stand-in for a missing one); None if none is known."""
    if times is None or np.all(np.isnan(times)):
        return None
    return float(np.nanmedian(times))


def feature_context(texts: list[str], times: npt.NDArray[np.float64] | None) -> FeatureContext:
    """The :class:`FeatureContext` of a whole frame on one machine (document frequencies by one pass)."""
    df: Counter[str] = Counter()
    for t in texts:
        df.update(document_terms(t))
    return FeatureContext(idf=idf_table(df, len(texts)), time_fill=time_fill(times))


def _tfidf_rows(texts: list[str], idf: Mapping[str, float]) -> Any:
    """L2-normalised sublinear TF-IDF rows (CSR), the columns the texts' words in sorted order.

    ``w(t, d) = (1 + ln tf(t, d)) idf(t)``, each row divided by its norm: scikit-learn's
    ``TfidfVectorizer(sublinear_tf=True)`` fitted on the corpus of ``idf``, with the same float operations.
    A row's entries are in sorted word order (scikit-learn keeps the corpus's first-appearance order, which
    depends on the whole corpus; the cosines differ from it by <= 1e-15), so a text's row and its dot
    products are bit-identical whichever subset of the corpus (one item, one reviewer, all) is transformed.
    """
    from scipy.sparse import csr_matrix
    from sklearn.preprocessing import normalize

    analyze = _analyzer()
    counts = [Counter(analyze(t)) for t in texts]
    vocab = sorted(set().union(*counts))
    column = {w: j for j, w in enumerate(vocab)}
    indptr: list[int] = [0]
    indices: list[int] = []
    data: list[float] = []
    for c in counts:
        row = sorted((column[w], n) for w, n in c.items())
        indices.extend(j for j, _ in row)
        data.extend(float(n) for _, n in row)
        indptr.append(len(indices))
    X = csr_matrix((np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int64),
                    np.asarray(indptr, dtype=np.int64)), shape=(len(texts), len(vocab)))
    if not vocab:  # no words at all: zero rows, cosine 0 (as an empty vocabulary in scikit-learn)
        return X
    np.log(X.data, X.data)
    X.data += 1.0
    X.data *= np.array([idf[w] for w in vocab], dtype=float)[X.indices]
    return normalize(X, norm="l2", copy=False)


def _max_similarity(
    texts: list[str], groups: list[npt.NDArray[np.int64]], idf: Mapping[str, float], block: int = 2048
) -> npt.NDArray[np.float64]:
    """Max cosine of word TF-IDF vectors (:func:`_tfidf_rows`) to another text of the same group."""
    out = np.zeros(len(texts))
    groups = [g for g in groups if len(g) > 1]
    if not groups:
        return out
    X = _tfidf_rows(texts, idf)
    for g in groups:
        Xg = X[g]
        for s in range(0, len(g), block):
            sims = (Xg[s : s + block] @ Xg.T).toarray()
            rows = np.arange(sims.shape[0])
            sims[rows, rows + s] = 0.0
            out[g[s : s + block]] = sims.max(axis=1)
    return out


def _groups(codes: npt.NDArray[np.int64]) -> list[npt.NDArray[np.int64]]:
    order = np.argsort(codes, kind="stable")
    cs = codes[order]
    cuts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1], True])
    return [order[a:b] for a, b in pairwise(cuts) if b - a > 1]


def _filled_times(rows: pd.DataFrame, ctx: FeatureContext) -> npt.NDArray[np.float64] | None:
    if ctx.time_fill is None or "created_at" not in rows.columns:
        return None
    times = np.asarray(pd.to_numeric(rows["created_at"], errors="coerce").to_numpy(dtype=float), dtype=np.float64)
    return np.nan_to_num(times, nan=ctx.time_fill)


def vote_totals(ids: pd.Series, votes: pd.DataFrame) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Helpful votes and all votes per review id (0 without votes), from ``review_id, helpful`` rows."""
    if not {"review_id", "helpful"}.issubset(votes.columns):
        raise ValueError("votes frame needs columns 'review_id' and 'helpful'")
    hv = votes.assign(h=votes["helpful"].astype(bool).astype(float))
    agg = hv.groupby("review_id")["h"].agg(["sum", "count"])
    return ids.map(agg["sum"]).fillna(0).to_numpy(dtype=float), ids.map(agg["count"]).fillna(0).to_numpy(dtype=float)


def review_features(
    reviews: pd.DataFrame,
    texts: list[str],
    vader: npt.NDArray[np.float64],
    votes: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None,
) -> pd.DataFrame:
    """The :data:`REVIEW_FEATURES` of each row from that row alone (index = ``reviews.index``).

    ``votes`` = (helpful, total) per row (:func:`vote_totals`); without it the ``helpful_yes`` /
    ``helpful_total`` columns of ``reviews`` are used when present, else the vote features are NaN.
    """
    out = text_features(texts, _titles(reviews), vader)
    out.index = reviews.index
    # -- rating behaviour --
    z = _rating_norm(reviews)
    out["rating_norm"] = z
    out["rating_extremity"] = np.abs(2 * z - 1)
    out["is_extreme_rating"] = np.where(np.isnan(z), np.nan, ((z <= 1e-9) | (z >= 1 - 1e-9)).astype(float))
    # -- rating-text consistency --
    gap = (vader[:, 0] + 1) / 2 - z
    out["sentiment_rating_gap"] = gap
    out["abs_sentiment_rating_gap"] = np.abs(gap)
    conflict = ((z >= 0.75) & (vader[:, 0] < -0.3)) | ((z <= 0.25) & (vader[:, 0] > 0.3))
    out["sentiment_rating_conflict"] = np.where(np.isnan(z), np.nan, conflict.astype(float))
    # -- engagement --
    if votes is None and {"helpful_yes", "helpful_total"}.issubset(reviews.columns):
        votes = (pd.to_numeric(reviews["helpful_yes"], errors="coerce").to_numpy(dtype=float),
                 pd.to_numeric(reviews["helpful_total"], errors="coerce").to_numpy(dtype=float))
    yes, tot = votes if votes is not None else (np.full(len(reviews), np.nan),) * 2
    out["helpful_votes"] = yes
    out["unhelpful_votes"] = tot - yes
    out["total_votes"] = tot
    out["helpful_share"] = (yes + 1) / (tot + 2)
    pc = (pd.to_numeric(reviews["photo_count"], errors="coerce").to_numpy(dtype=float)
          if "photo_count" in reviews.columns else np.full(len(reviews), np.nan))
    out["photo_count"] = pc
    out["has_photo"] = np.where(np.isnan(pc), np.nan, (pc > 0).astype(float))
    # -- disclosure --
    out["is_incentivized"] = _bool_col(reviews, "is_incentivized")
    out["verified_purchase"] = _bool_col(reviews, "verified_purchase")
    out["is_recommended"] = _bool_col(reviews, "is_recommended")
    out["incentive_wording"] = [float(bool(_INCENTIVE.search(t))) for t in texts]
    return out[list(REVIEW_FEATURES)]


def _titles(reviews: pd.DataFrame) -> list[str] | None:
    if "title" not in reviews.columns:
        return None
    return ["" if not isinstance(t, str) else t for t in reviews["title"].tolist()]


def item_features(rows: pd.DataFrame, ctx: FeatureContext) -> pd.DataFrame:
    """The :data:`ITEM_FEATURES` of rows holding ALL reviews of their items (one item or several).

    Reads :data:`ITEM_INPUTS`. With ``z`` the normalised ratings of the item's ``c`` rated reviews:
    consensus = leave-one-out mean ``(sum z - z_i) / (c - 1)`` (NaN if ``c < 2``), sd = population sd of
    ``z``; timing on the item's times sorted (ties in row order); ``max_sim_item`` = max TF-IDF cosine to
    another review of the item with ``ctx.idf``. Row order matters only for ties in time and for the
    last bits of the sums: give the rows in ``(created_at, id)`` order, as ``truescore score`` does.
    """
    out = pd.DataFrame(index=rows.index)
    z = rows["rating_norm"].to_numpy(dtype=float)
    codes = pd.factorize(rows["item_id"])[0].astype(np.int64)
    g = pd.Series(z).groupby(codes)
    s, c = g.transform("sum").to_numpy(), g.transform("count").to_numpy(dtype=float)
    loo = np.where(c > 1, (s - np.nan_to_num(z)) / np.maximum(c - 1, 1), np.nan)
    out["item_consensus"] = loo
    out["deviation_from_item"] = z - loo
    out["abs_deviation_from_item"] = np.abs(z - loo)
    out["item_rating_sd"] = g.transform(lambda x: x.std(ddof=0)).to_numpy()
    out["item_review_count"] = pd.Series(codes).map(pd.Series(codes).value_counts()).to_numpy(dtype=float)
    t = _filled_times(rows, ctx)
    it = _group_timing(codes, t) if t is not None else {}
    nan = np.full(len(rows), np.nan)
    out["item_reviews_same_day"] = it.get("same_day", nan)
    out["item_burst_share"] = it.get("burst3", nan)
    out["item_days_since_first"] = it.get("since_first", nan)
    out["review_rank_on_item"] = it.get("rank", nan)
    out["max_sim_item"] = _max_similarity(rows["text"].tolist(), _groups(codes), ctx.idf)
    return out[list(ITEM_FEATURES)]


def user_features(rows: pd.DataFrame, ctx: FeatureContext) -> pd.DataFrame:
    """The :data:`USER_FEATURES` of rows holding ALL reviews of their reviewers (one or several).

    Reads :data:`USER_INPUTS`. Count, mean and population sd of the normalised ratings, share of extreme
    ratings, mean word count; account age = days since the reviewer's first known time; timing on the
    reviewer's times sorted; ``max_sim_user`` with ``ctx.idf``. Row order as in :func:`item_features`.
    """
    out = pd.DataFrame(index=rows.index)
    ucodes = pd.factorize(rows["user_id"])[0].astype(np.int64)
    us = pd.Series(ucodes)
    cnt = us.map(us.value_counts()).to_numpy(dtype=float)
    gz = pd.Series(rows["rating_norm"].to_numpy(dtype=float)).groupby(ucodes)
    out["user_review_count"] = cnt
    out["user_mean_rating"] = gz.transform("mean").to_numpy()
    out["user_rating_sd"] = gz.transform(lambda x: x.std(ddof=0)).to_numpy()
    ext = rows["is_extreme_rating"].to_numpy(dtype=float)
    out["user_extreme_share"] = pd.Series(ext).groupby(ucodes).transform("mean").to_numpy()
    wc = rows["word_count"].to_numpy(dtype=float)
    out["user_mean_words"] = pd.Series(wc).groupby(ucodes).transform("mean").to_numpy()
    out["user_single_review"] = (cnt == 1).astype(float)
    if "created_at" in rows.columns:
        times = pd.to_numeric(rows["created_at"], errors="coerce").to_numpy(dtype=float)
        first = pd.Series(times).groupby(ucodes).transform("min").to_numpy()
        out["user_account_age_days"] = (times - first) / _DAY
    else:
        out["user_account_age_days"] = np.nan
    t = _filled_times(rows, ctx)
    ut = _group_timing(ucodes, t) if t is not None else {}
    nan = np.full(len(rows), np.nan)
    out["user_reviews_same_day"] = ut.get("same_day", nan)
    out["user_min_gap_hours"] = ut.get("min_gap", nan)
    out["user_median_gap_days"] = ut.get("median_gap", nan)
    out["max_sim_user"] = _max_similarity(rows["text"].tolist(), _groups(ucodes), ctx.idf)
    return out[list(USER_FEATURES)]


def normalized_text(text: str) -> str:
    """The text's words, lower case, joined by single spaces (the key of ``exact_duplicate_count``)."""
    return " ".join(_WORD.findall(text.lower()))


def exact_duplicate_count(normalized: str, same_key_count: float) -> float:
    """Other reviews with the same normalised text: ``count - 1``, 0 for a text without words."""
    return same_key_count - 1 if normalized else 0.0


def compute_features(
    reviews: pd.DataFrame,
    votes: pd.DataFrame | None = None,
    *,
    vader: npt.NDArray[np.float64] | None = None,
    global_duplicates: bool = True,
) -> pd.DataFrame:
    """All features of :data:`FEATURES` for every review of ``reviews``, one row each, same order.

    Composed of :func:`review_features` (each row alone), :func:`item_features` and :func:`user_features`
    (over all rows, grouped inside) with the :func:`feature_context` of the whole frame, and the two
    :data:`GLOBAL_FEATURES`; ``truescore spark score`` runs the same functions per partition and per group.

    Parameters
    ----------
    reviews : DataFrame
        Review frame; only ``text`` is required. Missing metadata columns give NaN features.
    votes : DataFrame, optional
        ``review_id, voter_id, helpful``; votes join on ``reviews.id``. Without it, ``helpful_yes`` /
        ``helpful_total`` columns of ``reviews`` (if present) are used.
    vader : ndarray, optional
        Precomputed :func:`vader_scores` of ``reviews.text``.
    global_duplicates : bool, default=True
        Compute ``max_sim_any`` over the whole frame (quadratic in blocks; set False for huge frames).

    Returns
    -------
    DataFrame
        Columns in the order of :data:`FEATURES`, index = ``reviews.index``.

    Raises
    ------
    ValueError
        If ``reviews`` has no ``text`` column or a text is not a string.
    """
    if not isinstance(reviews, pd.DataFrame):
        raise ValueError("reviews must be a pandas DataFrame")
    texts = _as_texts(reviews)
    v = vader if vader is not None else vader_scores(texts)
    totals = vote_totals(reviews["id"], votes) if votes is not None and "id" in reviews.columns else None
    out = review_features(reviews, texts, v, totals)
    times = (pd.to_numeric(reviews["created_at"], errors="coerce").to_numpy(dtype=float)
             if "created_at" in reviews.columns else None)
    ctx = feature_context(texts, times)
    rows = pd.DataFrame({"text": texts, **{c: out[c].to_numpy() for c in ("rating_norm", "is_extreme_rating",
                                                                          "word_count")}}, index=reviews.index)
    for key in ("item_id", "user_id", "created_at"):
        if key in reviews.columns:
            rows[key] = reviews[key]
    parts = [out]
    for key, fn, names in (("item_id", item_features, ITEM_FEATURES), ("user_id", user_features, USER_FEATURES)):
        parts.append(fn(rows, ctx) if key in rows.columns
                     else pd.DataFrame(np.nan, index=reviews.index, columns=list(names)))
    out = pd.concat(parts, axis=1)
    out["max_sim_any"] = _max_similarity(texts, [np.arange(len(texts))], ctx.idf) if global_duplicates else np.nan
    normed = pd.Series([normalized_text(t) for t in texts])
    counts = normed.map(normed.value_counts()).to_numpy(dtype=float)
    out["exact_duplicate_count"] = [exact_duplicate_count(k, n) for k, n in zip(normed, counts, strict=True)]
    return out[[f.name for f in FEATURES]]
