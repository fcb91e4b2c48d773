"""Learning from moderation (issue 21 item 3): moderators' verdicts turn the unsupervised suspicion into a
calibrated probability of being fake.

Pure, like the rest of the engine: arrays and frames in, arrays out. The score job
(:func:`truescore.jobs.score.run_integrity`) reads the verdicts from the store and passes them in;
docs/integrity.md ("Learning from moderation") has the math. In short:

1. **labels** (:func:`verdict_labels`): per review and per account, the verdicts on it (several
   moderators: the majority; a tie is no label). Propagation: a review without a verdict of its own
   inherits its author's *account* verdict; an account with a fake review verdict counts as fake.
2. **features** (:func:`review_design`, :func:`account_design`): the behaviour features and their ranks,
   the detectors' evidence, the unsupervised suspicion, and graph-neighbourhood aggregates of the
   unsupervised suspicion (per review: the mean and max over the item's *other* reviews, the mean over the
   author's other reviews; per account: the mean and max over its reviews, the mean over the items it rated
   of their other reviews' suspicion). Tree ensembles over neighbourhood aggregates are the strong baseline
   of GADBench (Tang et al., NeurIPS 2023).
3. **cross-fit** (:func:`cross_fit`): ``K`` folds over the labelled rows, grouped by account (a review's
   fold is its author's fold, at both levels), so **a labelled row is never scored with its own label**:
   its score comes from the model trained without its fold; an unlabelled row gets the mean of the ``K``
   fold models.
4. **calibration** (Platt): the labelled rows of fold ``k`` are calibrated by a logistic map fitted on
   the out-of-fold scores of the *other* folds; the unlabelled rows by the map fitted on every
   out-of-fold score. The result is a probability.

The boosting starts from the unsupervised suspicion (base margin ``logit(s)``), each labelled author weighs
the same in the review model, and a level is applied only when its out-of-fold AUC on the labelled rows beats
the unsupervised suspicion's (``moderation.require_gain``).

The final suspicion of a level is that calibrated probability, ``p = sigma(a + b * logit(f))`` (``f``
the boosted score); flags keep their threshold ``integrity.flag_threshold``, which then reads as "at
least this probable to be fake". A level with fewer than ``moderation.min_labels_per_class`` labels of
either class, or whose model does not beat the unsupervised suspicion out of fold, is left exactly as the
unsupervised engine scored it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from truescore.config import ModerationSettings
from truescore.integrity.suspicion import IntegrityResult

__all__ = ["LevelOutcome", "ModerationOutcome", "VerdictLabels", "account_design", "cross_fit",
           "learn_from_verdicts", "review_design", "verdict_labels"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_EPS = 1e-6


# ---------------------------------------------------------------------------------------------- labels
@dataclass(frozen=True, slots=True)
class VerdictLabels:
    """Training labels per review and per account: 1.0 fake, 0.0 genuine, NaN none.

    Attributes
    ----------
    review, account : float arrays
        After propagation (see the module docstring).
    n_verdicts, n_review_verdicts, n_account_verdicts : int
        Verdicts that name a review or account of the snapshot (others are not counted).
    n_fake_verdicts, n_genuine_verdicts : int
    """

    review: FloatArray
    account: FloatArray
    n_verdicts: int
    n_review_verdicts: int
    n_account_verdicts: int
    n_fake_verdicts: int
    n_genuine_verdicts: int


def _majority(target_idx: IntArray, fake: FloatArray, n: int) -> FloatArray:
    """Per target 0..n-1: 1 when most of its verdicts say fake, 0 when most say genuine, NaN for none or a tie."""
    out = np.full(n, np.nan)
    if target_idx.size == 0:
        return out
    votes = np.bincount(target_idx, minlength=n).astype(float)
    fakes = np.bincount(target_idx, weights=fake, minlength=n)
    has = votes > 0
    share = np.divide(fakes, votes, out=np.zeros(n), where=has)
    out[has & (share > 0.5)] = 1.0
    out[has & (share < 0.5)] = 0.0
    return out


def verdict_labels(verdicts: pd.DataFrame, review_ids: npt.ArrayLike, user_ids: npt.ArrayLike,
                   user_idx: npt.ArrayLike) -> VerdictLabels:
    """The labels of the snapshot's reviews and accounts from ``verdicts`` (columns ``target`` "review" |
    "user", ``target_id``, ``verdict`` "fake" | "genuine"; ``moderator_id`` optional, one verdict each).

    ``review_ids`` (one per review row), ``user_ids`` (one per account) and ``user_idx`` (per review row,
    the author's account index) are the snapshot's. Verdicts naming a review or an account that is not in
    the snapshot (a superseded review, say) are left out.
    """
    rid = pd.Index(np.asarray(review_ids, dtype=object))
    uid = pd.Index(np.asarray(user_ids, dtype=object))
    uix = np.asarray(user_idx, dtype=np.int64)
    n_r, n_u = len(rid), len(uid)
    if len(verdicts) == 0:
        return VerdictLabels(np.full(n_r, np.nan), np.full(n_u, np.nan), 0, 0, 0, 0, 0)
    target = verdicts["target"].astype(str).to_numpy()
    tid = verdicts["target_id"].to_numpy(object)
    fake = (verdicts["verdict"].astype(str).str.lower().to_numpy() == "fake").astype(float)
    is_r = target == "review"
    r_pos = rid.get_indexer(tid[is_r]) if is_r.any() else np.empty(0, dtype=np.int64)
    u_pos = uid.get_indexer(tid[~is_r]) if (~is_r).any() else np.empty(0, dtype=np.int64)
    r_ok, u_ok = r_pos >= 0, u_pos >= 0
    review = _majority(r_pos[r_ok].astype(np.int64), fake[is_r][r_ok], n_r)
    account = _majority(u_pos[u_ok].astype(np.int64), fake[~is_r][u_ok], n_u)
    used_fake = np.r_[fake[is_r][r_ok], fake[~is_r][u_ok]]
    # propagation: an account with a fake review verdict counts as fake; a review without a verdict of its
    # own inherits its author's account verdict (the explicit one, before the first rule)
    explicit_account = account.copy()
    fake_authors = np.unique(uix[review == 1.0])
    account[fake_authors] = 1.0
    inherit = np.isnan(review) & ~np.isnan(explicit_account[uix])
    review[inherit] = explicit_account[uix][inherit]
    return VerdictLabels(review, account, int(r_ok.sum() + u_ok.sum()), int(r_ok.sum()), int(u_ok.sum()),
                         int(used_fake.sum()), int(used_fake.size - used_fake.sum()))


# ---------------------------------------------------------------------------------------------- features
def _group_loo(values: FloatArray, group: IntArray, n_groups: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per row: the mean and the max of ``values`` over the *other* rows of its group (NaN when alone), and
    the group's size."""
    cnt = np.bincount(group, minlength=n_groups).astype(float)
    tot = np.bincount(group, weights=values, minlength=n_groups)
    others = cnt[group] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(others > 0, (tot[group] - values) / np.maximum(others, 1), np.nan)
    # max over the others: the group's top value unless the row is it, then the second
    order = np.lexsort((-values, group))
    g_sorted = group[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = g_sorted[1:] != g_sorted[:-1]
    top1 = np.full(n_groups, np.nan)
    top2 = np.full(n_groups, np.nan)
    top_row = np.full(n_groups, -1, dtype=np.int64)
    top1[g_sorted[first]] = values[order[first]]
    top_row[g_sorted[first]] = order[first]
    second = np.zeros(order.size, dtype=bool)
    second[1:] = ~first[1:] & first[:-1]
    top2[g_sorted[second]] = values[order[second]]
    rows = np.arange(values.size)
    mx = np.where(top_row[group] == rows, top2[group], top1[group])
    return mean, mx, cnt[group]


def _prefixed(prefix: str, columns: dict[str, FloatArray], rows: np.ndarray | None = None) -> dict[str, FloatArray]:
    """``columns`` as float arrays named ``prefix + name``, taken at ``rows`` when given (an account's
    value for each of its reviews)."""
    out: dict[str, FloatArray] = {}
    for name, values in columns.items():
        arr = np.asarray(values, float)
        out[prefix + name] = arr if rows is None else arr[rows]
    return out


def review_design(result: IntegrityResult) -> pd.DataFrame:
    """One row per review: the features the review model learns from (see the module docstring)."""
    inp = result.inputs
    u, i = np.asarray(inp.user_idx, dtype=np.int64), np.asarray(inp.item_idx, dtype=np.int64)
    b = result.behaviour
    cols: dict[str, FloatArray] = {
        **_prefixed("r_", b.review_features), **_prefixed("r_rank_", b.review_ranks),
        **_prefixed("a_", b.account_features, u), **_prefixed("a_rank_", b.account_ranks, u),
        **_prefixed("ev_", result.review_evidence),
    }
    s = np.asarray(result.review_suspicion, float)
    cols["suspicion"] = s
    cols["behaviour"] = np.asarray(result.review_behaviour, float)
    cols["author_suspicion"] = np.asarray(result.account_suspicion, float)[u]
    cols["item_others_mean"], cols["item_others_max"], cols["item_n"] = _group_loo(s, i, int(inp.n_items))
    cols["author_others_mean"], cols["author_others_max"], cols["author_n"] = _group_loo(s, u, int(inp.n_users))
    return pd.DataFrame(cols)


def account_design(result: IntegrityResult) -> pd.DataFrame:
    """One row per account: the features the account model learns from (see the module docstring)."""
    inp = result.inputs
    u, i = np.asarray(inp.user_idx, dtype=np.int64), np.asarray(inp.item_idx, dtype=np.int64)
    n_u = int(inp.n_users)
    b = result.behaviour
    cols: dict[str, FloatArray] = {
        **_prefixed("a_", b.account_features), **_prefixed("a_rank_", b.account_ranks),
        **_prefixed("ev_", result.account_evidence),
    }
    s = np.asarray(result.review_suspicion, float)
    cols["suspicion"] = np.asarray(result.account_suspicion, float)
    cnt = np.bincount(u, minlength=n_u).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["reviews_mean"] = np.bincount(u, weights=s, minlength=n_u) / cnt
        mx = np.full(n_u, -np.inf)
        np.maximum.at(mx, u, s)
        cols["reviews_max"] = np.where(np.isfinite(mx), mx, np.nan)
        cols["n_reviews"] = cnt
        item_mean, _, _ = _group_loo(s, i, int(inp.n_items))
        ok = np.isfinite(item_mean)
        n_ok = np.bincount(u[ok], minlength=n_u).astype(float)
        cols["items_others_mean"] = np.where(n_ok > 0, np.bincount(u[ok], weights=item_mean[ok], minlength=n_u)
                                             / np.maximum(n_ok, 1), np.nan)
    return pd.DataFrame(cols)


# ---------------------------------------------------------------------------------------------- cross-fit
def _folds(group: IntArray, y: FloatArray, n_groups: int, k: int, seed: int) -> IntArray:
    """Fold of every group: the groups with labelled rows shuffled and dealt round-robin, those with a fake
    label first (so each fold has both classes when there are enough); other groups get folds at random."""
    rng = np.random.default_rng(seed)
    labelled = ~np.isnan(y)
    fold = rng.integers(0, k, n_groups).astype(np.int64)
    has_fake = np.zeros(n_groups, dtype=bool)
    has_fake[group[labelled & (y == 1.0)]] = True
    has_label = np.zeros(n_groups, dtype=bool)
    has_label[group[labelled]] = True
    order = []
    for sel in (has_label & has_fake, has_label & ~has_fake):
        g = np.flatnonzero(sel)
        order.append(g[rng.permutation(g.size)])
    dealt = np.concatenate(order) if order else np.empty(0, dtype=np.int64)
    start = int(rng.integers(0, k))
    fold[dealt] = (start + np.arange(dealt.size)) % k
    return fold


def _boost(x: FloatArray, y: FloatArray, cfg: ModerationSettings, weight: FloatArray | None = None,
           init: FloatArray | None = None) -> Any:
    import lightgbm as lgb

    model = lgb.LGBMClassifier(
        n_estimators=cfg.rounds, learning_rate=cfg.learning_rate, num_leaves=cfg.num_leaves,
        min_child_samples=cfg.min_child_samples, min_child_weight=1e-3, subsample=1.0, colsample_bytree=1.0,
        reg_lambda=1.0, random_state=cfg.seed, n_jobs=1, deterministic=True, force_row_wise=True, verbose=-1,
    )
    model.fit(x, y.astype(int), sample_weight=weight, init_score=init)
    return model


def _predict(model: Any, x: FloatArray, init: FloatArray | None) -> FloatArray:
    """The boosted probability; with ``init`` (the base margin the boosting started from) added back."""
    if init is None:
        return np.asarray(model.predict_proba(x)[:, 1], float)
    margin = np.asarray(model.predict(x, raw_score=True), float) + init
    return np.asarray(1.0 / (1.0 + np.exp(-margin)), float)


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, _EPS, 1 - _EPS)
    return np.asarray(np.log(q / (1 - q)), float)


def _platt(score: FloatArray, y: FloatArray) -> tuple[float, float]:
    """``(a, b)`` of ``P(fake) = sigma(a + b * logit(score))`` fitted by (lightly regularised) maximum
    likelihood; the identity map when one class is missing. The map never reverses the model's order: a
    fitted ``b < 0`` (scores that rank backwards out of fold) becomes ``b = 0``, the base rate."""
    from sklearn.linear_model import LogisticRegression

    if np.unique(y).size < 2:
        return 0.0, 1.0
    lr = LogisticRegression(C=100.0, solver="lbfgs", max_iter=1000)
    lr.fit(_logit(score)[:, None], y.astype(int))
    a, b = float(lr.intercept_[0]), float(lr.coef_[0, 0])
    if b < 0:
        rate = float(np.clip(np.mean(y), _EPS, 1 - _EPS))
        return float(np.log(rate / (1 - rate))), 0.0
    return a, b


def _apply_platt(ab: tuple[float, float], score: FloatArray) -> FloatArray:
    a, b = ab
    return np.asarray(1.0 / (1.0 + np.exp(-(a + b * _logit(score)))), float)


@dataclass(frozen=True, slots=True)
class CrossFit:
    """What :func:`cross_fit` gives: per row the calibrated probability (``prob``), the uncalibrated
    out-of-fold (labelled) or fold-mean (unlabelled) boosted score (``raw``), and each row's fold."""

    prob: FloatArray
    raw: FloatArray
    fold: IntArray
    labelled: npt.NDArray[np.bool_]


def cross_fit(x: pd.DataFrame, y: FloatArray, group: IntArray, n_groups: int, cfg: ModerationSettings,
              weight: FloatArray | None = None, base: FloatArray | None = None) -> CrossFit:
    """Cross-fitted, calibrated probabilities of every row of ``x`` (see the module docstring): ``y`` 1/0/NaN,
    ``group`` the row's account (its fold's unit), ``weight`` the training weight of each row (default 1)."""
    xa = x.to_numpy(float)
    y = np.asarray(y, float)
    labelled = ~np.isnan(y)
    k = int(cfg.folds)
    gfold = _folds(group, y, n_groups, k, cfg.seed)
    fold = gfold[group]
    raw = np.zeros(len(xa))
    unl = ~labelled
    rate = float(np.nanmean(y)) if labelled.any() else 0.5
    init = None if base is None else _logit(np.asarray(base, float))
    for f in range(k):
        train = labelled & (fold != f)
        if np.unique(y[train]).size < 2:
            pred = np.full(len(xa), rate if not train.any() else float(y[train].mean()))
        else:
            w = None if weight is None else np.asarray(weight, float)[train]
            model = _boost(xa[train], y[train], cfg, w, None if init is None else init[train])
            pred = _predict(model, xa, init)
        test = labelled & (fold == f)
        raw[test] = pred[test]
        raw[unl] += pred[unl] / k
    prob = np.zeros(len(xa))
    for f in range(k):
        test = labelled & (fold == f)
        if test.any():
            other = labelled & (fold != f)
            prob[test] = _apply_platt(_platt(raw[other], y[other]), raw[test])
    if unl.any():
        prob[unl] = _apply_platt(_platt(raw[labelled], y[labelled]), raw[unl])
    return CrossFit(prob=prob, raw=raw, fold=fold, labelled=labelled)


# ---------------------------------------------------------------------------------------------- the learner
@dataclass(slots=True)
class LevelOutcome:
    """What the verdicts did at one level (reviews or accounts)."""

    level: str
    applied: bool
    reason: str
    n_fake: int
    n_genuine: int
    #: out-of-fold AUC on the labelled rows: the unsupervised suspicion, and the learned probability
    auc_unsupervised: float | None = None
    auc_learned: float | None = None
    #: rows whose flag (suspicion >= flag_threshold) the learning changed: now flagged, no longer flagged
    newly_flagged: int = 0
    unflagged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "reason": self.reason, "labels_fake": self.n_fake,
                "labels_genuine": self.n_genuine, "auc_unsupervised_oof": self.auc_unsupervised,
                "auc_learned_oof": self.auc_learned, "newly_flagged": self.newly_flagged,
                "unflagged": self.unflagged}


@dataclass(slots=True)
class ModerationOutcome:
    """The result of :func:`learn_from_verdicts`: the suspicion to store and what the verdicts changed."""

    review_suspicion: FloatArray
    account_suspicion: FloatArray
    labels: VerdictLabels
    reviews: LevelOutcome
    accounts: LevelOutcome
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def applied(self) -> bool:
        return self.reviews.applied or self.accounts.applied

    def details(self) -> dict[str, Any]:
        """The ``moderation`` entry of the integrity run's ``model_runs`` details (JSON)."""
        lab = self.labels
        return {"verdicts": lab.n_verdicts, "review_verdicts": lab.n_review_verdicts,
                "account_verdicts": lab.n_account_verdicts, "fake_verdicts": lab.n_fake_verdicts,
                "genuine_verdicts": lab.n_genuine_verdicts, "applied": self.applied,
                "reviews": self.reviews.as_dict(), "accounts": self.accounts.as_dict(), "settings": self.settings}


def _auc(y: FloatArray, score: FloatArray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if np.unique(y).size < 2:
        return None
    return float(roc_auc_score(y.astype(int), score))


def _level(level: str, x: pd.DataFrame, y: FloatArray, group: IntArray, n_groups: int, unsup: FloatArray,
           threshold: float, cfg: ModerationSettings, weight: FloatArray | None = None
           ) -> tuple[FloatArray, LevelOutcome]:
    labelled = ~np.isnan(y)
    n_fake, n_gen = int((y[labelled] == 1).sum()), int((y[labelled] == 0).sum())
    need = int(cfg.min_labels_per_class)
    if n_fake < need or n_gen < need:
        reason = (f"not learned: {n_fake} fake and {n_gen} genuine labelled {level}; at least "
                  f"{need} of each are needed (setting moderation.min_labels_per_class)")
        return unsup, LevelOutcome(level, False, reason, n_fake, n_gen)
    fit = cross_fit(x, y, group, n_groups, cfg, weight, base=unsup if cfg.start_from_unsupervised else None)
    new = fit.prob
    out = LevelOutcome(level, True, f"learned from {n_fake} fake and {n_gen} genuine labelled {level}", n_fake,
                       n_gen, auc_unsupervised=_auc(y[labelled], unsup[labelled]),
                       auc_learned=_auc(y[labelled], fit.raw[labelled]))
    if cfg.require_gain and (out.auc_learned or 0.0) <= (out.auc_unsupervised or 0.0):
        out.applied = False
        out.reason = (f"not applied: learned from {n_fake} fake and {n_gen} genuine labelled {level}, but out of "
                      f"fold it ranks them no better than the unsupervised suspicion (AUC {out.auc_learned or 0:.3f} "
                      f"vs {out.auc_unsupervised or 0:.3f}; setting moderation.require_gain)")
        return unsup, out
    before, after = unsup >= threshold, new >= threshold
    out.newly_flagged, out.unflagged = int((after & ~before).sum()), int((before & ~after).sum())
    return new, out


def learn_from_verdicts(result: IntegrityResult, labels: VerdictLabels, cfg: ModerationSettings | None = None
                        ) -> ModerationOutcome:
    """The suspicion of every review and account after learning from ``labels`` (:func:`verdict_labels` of
    the stored verdicts); a level without enough labels keeps the unsupervised suspicion, bit for bit."""
    cfg = cfg if cfg is not None else ModerationSettings()
    inp = result.inputs
    u = np.asarray(inp.user_idx, dtype=np.int64)
    n_u = int(inp.n_users)
    thr = float(result.flag_threshold)
    rev_unsup = np.asarray(result.review_suspicion, float)
    acc_unsup = np.asarray(result.account_suspicion, float)
    need = int(cfg.min_labels_per_class)
    # the design matrices are built only for a level that has the labels to learn
    def enough(y: FloatArray) -> bool:
        return int(np.sum(y == 1)) >= need and int(np.sum(y == 0)) >= need

    x_r = review_design(result) if enough(labels.review) else pd.DataFrame(index=range(rev_unsup.size))
    # each labelled author weighs the same in the review model, however many reviews it wrote (else a few
    # prolific accounts are the whole training set, and the model learns who they are)
    lab_r = ~np.isnan(labels.review)
    per_author = np.bincount(u[lab_r], minlength=n_u).astype(float)
    w_r = np.where(lab_r, 1.0 / np.maximum(per_author[u], 1.0), 0.0)
    w_r = w_r * (lab_r.sum() / max(w_r.sum(), _EPS))
    rev, rev_out = _level("reviews", x_r, labels.review, u, n_u, rev_unsup, thr, cfg, w_r)
    x_a = account_design(result) if enough(labels.account) else pd.DataFrame(index=range(acc_unsup.size))
    acc, acc_out = _level("accounts", x_a, labels.account, np.arange(n_u, dtype=np.int64), n_u, acc_unsup, thr, cfg)
    return ModerationOutcome(rev, acc, labels, rev_out, acc_out, settings=cfg.model_dump())
