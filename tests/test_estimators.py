"""Every estimator of the library honours the scikit-learn contract (CONTRIBUTING.md, "Estimators").

- ``clone``, ``get_params``/``set_params`` and the repr work; ``__init__`` only stores;
- each default is read from the settings object (one source);
- an iterative fit that stops at its limit warns with :class:`ConvergenceWarning`;
- the checks of ``sklearn.utils.estimator_checks`` that apply to an estimator whose ``fit`` does not take a
  numeric array ``X`` run and pass; the others are listed once, each with its reason (:data:`NOT_APPLICABLE`),
  and are not collected at all (so the skip count means something: only ``check_array_api_input`` skips
  itself, without ``SCIPY_ARRAY_API``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import estimator_checks_generator
from sklearn.utils.validation import check_is_fitted

import truescore.config as config_module
from truescore.config import ReliabilitySettings, Settings, TextSettings, get_settings
from truescore.domain import RatingSnapshot
from truescore.reliability import (
    OnlineReliability,
    TorchOptions,
    TorchReliability,
    VBOptions,
    VBReliability,
    fit,
    fit_torch,
    fit_vb,
)
from truescore.text.fake import FakeDetector
from truescore.text.features import compute_features
from truescore.text.quality import QualityModel
from truescore.text.sentiment import SentimentModel

ESTIMATORS: list[BaseEstimator] = [
    VBReliability(),
    TorchReliability(),
    OnlineReliability(),
    SentimentModel(),
    FakeDetector(),
    QualityModel(),
]
RELIABILITY = (VBReliability, TorchReliability, OnlineReliability)

# A parameter of each estimator and a valid non-default value, for set_params / clone round trips.
CHANGE: dict[type, tuple[str, Any]] = {
    VBReliability: ("tol", 1e-3),
    TorchReliability: ("torch_epochs", 7),
    OnlineReliability: ("settings", ReliabilitySettings(online_budget=3)),
    SentimentModel: ("blend", "fixed"),
    FakeDetector: ("combine", "mean"),
    QualityModel: ("use_votes", True),
}


def _snapshot(seed: int = 0, n_users: int = 40, n_items: int = 12, n_ratings: int = 300) -> RatingSnapshot:
    rng = np.random.default_rng(seed)
    q = rng.uniform(1, 5, n_items)
    u = rng.integers(0, n_users, n_ratings)
    i = rng.integers(0, n_items, n_ratings)
    key = np.unique(u * n_items + i)
    u, i = key // n_items, key % n_items
    r = np.clip(np.round(q[i] + rng.normal(0, 0.8, u.shape[0])), 1, 5)
    return RatingSnapshot.from_arrays(u, i, r, n_users=n_users, n_items=n_items, min_rating=1, max_rating=5)


# ------------------------------------------------------------------------------------------ scikit-learn checks

#: Why the checks that fit on a random numeric array ``X`` do not apply: no estimator here takes one.
_NOT_AN_ARRAY = ("it fits on a random numeric array X; fit takes a RatingSnapshot (sparse (user, item, rating) "
                 "triples with ids: a reliability model is neither a classifier, a regressor nor a transformer), "
                 "review texts (SentimentModel, FakeDetector: strings, with optional encoder layers) or three "
                 "inputs (QualityModel: feature frame, encoder layer embeddings, labels)")
_TEXT_REFUSED = " (the text heads refuse numeric rows with a ValueError naming the bad text, not sklearn's message)"
ALL = tuple(type(e) for e in ESTIMATORS)

#: The ONE table of the scikit-learn checks that do not apply: check name -> (the estimators it does not apply
#: to, why). Every other check that ``parametrize_with_checks`` / ``check_estimator`` would run on an estimator
#: runs (``APPLICABLE``) and must pass; ``test_not_applicable_is_every_generated_check_not_run`` holds the table
#: to exactly the generated checks minus those run, so a check a new scikit-learn adds runs (and fails if it
#: does not apply) instead of being skipped silently. What these checks would test (refit is idempotent, the
#: input is not changed, pickling round-trips, fitted state is what check_is_fitted sees) is tested on real
#: inputs in tests/test_reliability_*.py, tests/test_text_*.py and below.
NOT_APPLICABLE: dict[str, tuple[tuple[type, ...], str]] = {
    "check_fit_score_takes_y": (ALL, _NOT_AN_ARRAY),
    "check_estimators_overwrite_params": (ALL, _NOT_AN_ARRAY),
    "check_dont_overwrite_parameters": (ALL, _NOT_AN_ARRAY),
    "check_estimators_fit_returns_self": (ALL, _NOT_AN_ARRAY),
    "check_readonly_memmap_input": (ALL, _NOT_AN_ARRAY),
    "check_n_features_in_after_fitting": (ALL, _NOT_AN_ARRAY),
    "check_positive_only_tag_during_fit": (ALL, _NOT_AN_ARRAY),
    "check_estimators_dtypes": (ALL, _NOT_AN_ARRAY),
    "check_complex_data": (ALL, _NOT_AN_ARRAY + _TEXT_REFUSED),
    "check_dtype_object": (ALL, _NOT_AN_ARRAY),
    "check_estimators_empty_data_messages": (ALL, _NOT_AN_ARRAY + _TEXT_REFUSED),
    "check_pipeline_consistency": (ALL, _NOT_AN_ARRAY),
    "check_estimators_nan_inf": (ALL, _NOT_AN_ARRAY),
    "check_estimator_sparse_tag": (ALL, _NOT_AN_ARRAY),
    "check_estimator_sparse_array": (ALL, _NOT_AN_ARRAY),
    "check_estimator_sparse_matrix": (ALL, _NOT_AN_ARRAY),
    "check_estimators_pickle": (ALL, _NOT_AN_ARRAY),
    "check_f_contiguous_array_estimator": (ALL, _NOT_AN_ARRAY),
    "check_methods_sample_order_invariance": (ALL, _NOT_AN_ARRAY),
    "check_methods_subset_invariance": (ALL, _NOT_AN_ARRAY),
    "check_fit2d_1sample": (ALL, _NOT_AN_ARRAY + _TEXT_REFUSED),
    "check_fit2d_1feature": (ALL, _NOT_AN_ARRAY + _TEXT_REFUSED),
    "check_dict_unchanged": (ALL, _NOT_AN_ARRAY),
    "check_fit_idempotent": (ALL, _NOT_AN_ARRAY),
    "check_fit_check_is_fitted": (ALL, _NOT_AN_ARRAY),
    "check_n_features_in": (ALL, _NOT_AN_ARRAY),
    "check_fit2d_predict1d": (ALL, _NOT_AN_ARRAY),
    "check_fit1d": ((*RELIABILITY, QualityModel),
                    "it fits on a 1-d numeric array, and the input is not an array (the text heads run it: they "
                    "refuse 1-d input with a ValueError)"),
    "check_estimators_unfitted": ((QualityModel,),
                                  "predict takes two inputs (features, layers), so predict(X) fails on its signature "
                                  "before the fitted-state check (test_unfitted_estimators_say_so covers it)"),
}


def _check_name(check: Any) -> str:
    return str(getattr(check, "func", check).__name__)


def _not_applicable(estimator: BaseEstimator) -> dict[str, str]:
    """The rows of :data:`NOT_APPLICABLE` that concern ``estimator``: check name -> why."""
    return {name: why for name, (kinds, why) in NOT_APPLICABLE.items() if isinstance(estimator, kinds)}


def _generated(estimator: BaseEstimator) -> list[tuple[BaseEstimator, Any]]:
    """Every (estimator, check) pair scikit-learn runs on ``estimator``: the generator behind both
    ``parametrize_with_checks`` and ``check_estimator``."""
    return list(estimator_checks_generator(estimator))


#: The checks that apply, for every estimator: all it generates but the NOT_APPLICABLE ones.
APPLICABLE = [(est, check) for estimator in ESTIMATORS for est, check in _generated(estimator)
              if _check_name(check) not in _not_applicable(estimator)]


def _check_id(value: Any) -> str:
    if isinstance(value, BaseEstimator):
        return type(value).__name__
    keywords = ",".join(f"{k}={v}" for k, v in getattr(value, "keywords", {}).items())
    return f"{_check_name(value)}({keywords})" if keywords else _check_name(value)


@pytest.mark.parametrize(("estimator", "check"), APPLICABLE, ids=_check_id)
def test_sklearn_estimator_checks(estimator: BaseEstimator, check: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        check(estimator)


def test_not_applicable_is_every_generated_check_not_run() -> None:
    """NOT_APPLICABLE is exactly, for each estimator, the checks scikit-learn generates minus those that run;
    each row names estimators of ESTIMATORS and gives a reason."""
    for estimator in ESTIMATORS:
        generated = {_check_name(check) for _, check in _generated(estimator)}
        ran = {_check_name(check) for est, check in APPLICABLE if type(est) is type(estimator)}
        assert generated - ran == set(_not_applicable(estimator)), type(estimator).__name__
        assert ran, f"no check runs on {type(estimator).__name__}"
    for name, (kinds, why) in NOT_APPLICABLE.items():
        assert kinds and set(kinds) <= set(ALL), name
        assert why.strip(), f"{name}: no reason given"


# ------------------------------------------------------------------------------------------ clone and params


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_clone_get_params_set_params(estimator: BaseEstimator) -> None:
    name, value = CHANGE[type(estimator)]
    params = estimator.get_params(deep=True)
    assert name in params and params[name] != value
    changed = clone(estimator).set_params(**{name: value})
    assert changed.get_params()[name] == value
    copy = clone(changed)
    assert copy is not changed and type(copy) is type(changed)
    assert copy.get_params()[name] == value  # clone carries the changed parameter
    assert estimator.get_params()[name] == params[name]  # and the original is untouched
    assert f"{name}=" in repr(changed)  # the repr shows the non-default parameter
    with pytest.raises(ValueError, match="Invalid parameter"):
        clone(estimator).set_params(no_such_parameter=1)


def test_defaults_are_read_from_the_settings_object() -> None:
    rel = ReliabilitySettings()
    vb = VBReliability().get_params()
    assert vb == {name: getattr(rel, name) for name in VBOptions.__dataclass_fields__}
    assert VBOptions() == VBOptions.from_settings(rel)
    torch = TorchReliability().get_params()
    assert torch == {name: getattr(rel, name) for name in TorchOptions.__dataclass_fields__}
    assert TorchOptions() == TorchOptions.from_settings(rel)
    text = TextSettings()
    assert FakeDetector().transformer_weight == text.fake_transformer_weight
    assert FakeDetector().random_state == QualityModel().random_state == text.random_state


def test_invalid_parameter_refused_at_fit_not_init() -> None:
    est = VBReliability(tol=-1.0, weighting="median")  # stored as given
    assert est.tol == -1.0
    with pytest.raises(ValueError, match=r"tol = -1\.0.*weighting = 'median'|weighting = 'median'.*tol = -1\.0"):
        est.fit(_snapshot())
    with pytest.raises(ValueError, match="torch_lr"):
        TorchReliability(torch_lr=0.0).fit(_snapshot())
    with pytest.raises(ValueError, match="'blend' parameter of SentimentModel"):
        SentimentModel(blend="median").fit(["a"] * 10, np.zeros(10), layers=np.zeros((10, 4)))
    with pytest.raises(TypeError, match="RatingSnapshot"):
        VBReliability().fit(np.zeros((5, 3)))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ fit() == fit_vb()


def test_fit_and_fit_vb_agree_without_settings_and_ignore_the_process_settings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without settings the engine runs at the documented defaults, whatever the environment or TOML says: the
    process settings reach it only through a door (CLI, API, jobs), which passes them."""
    snap = _snapshot()
    monkeypatch.setenv("TRUESCORE_RELIABILITY__TOL", "0.01")
    monkeypatch.setenv("TRUESCORE_RELIABILITY__USE_BIAS", "true")
    monkeypatch.setattr(config_module, "_cached", None)
    a, b = fit(snap), fit_vb(snap)
    c = VBReliability.from_settings().fit(snap).result_
    pure = fit_vb(snap, VBOptions())
    for other in (b, c, pure):
        np.testing.assert_array_equal(a.item_mean, other.item_mean)
        np.testing.assert_array_equal(a.reliability, other.reliability)
        np.testing.assert_array_equal(a.bias, other.bias)
        assert a.n_iter == other.n_iter
    assert a.extras["use_bias"] is False  # the environment did not reach the engine
    passed = fit(snap, get_settings())  # as a door passes the loaded settings
    assert passed.extras["use_bias"] is True and not np.array_equal(passed.item_mean, a.item_mean)
    np.testing.assert_array_equal(passed.item_mean, fit_vb(snap, VBOptions.from_settings(get_settings().reliability))
                                  .item_mean)


def test_fit_and_fit_vb_agree_under_explicit_settings() -> None:
    snap = _snapshot(seed=1)
    settings = Settings(reliability=ReliabilitySettings(weighting="meanfield", tol=1e-4))
    a = fit(snap, settings)
    b = fit_vb(snap, VBOptions.from_settings(settings.reliability))
    c = VBReliability.from_settings(settings.reliability).fit(snap).result_
    for other in (b, c):
        np.testing.assert_array_equal(a.item_mean, other.item_mean)
        np.testing.assert_array_equal(a.reliability_hi, other.reliability_hi)


def test_fit_and_fit_torch_agree_under_the_settings_a_door_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    snap = _snapshot(n_ratings=80)
    monkeypatch.setenv("TRUESCORE_RELIABILITY__TORCH_EPOCHS", "3")
    monkeypatch.setattr(config_module, "_cached", None)
    section = get_settings().reliability
    a, b = fit(snap, section, backend="torch"), fit_torch(snap, TorchOptions.from_settings(section))
    assert a.n_iter == b.n_iter == 3
    np.testing.assert_array_equal(a.item_mean, b.item_mean)
    np.testing.assert_array_equal(a.reliability, b.reliability)
    # without settings: the documented defaults, not the environment
    assert TorchReliability.from_settings().torch_epochs == ReliabilitySettings().torch_epochs != 3
    assert TorchOptions.from_settings() == TorchOptions()


# ------------------------------------------------------------------------------------------ ConvergenceWarning


def test_vb_warns_when_it_stops_at_max_iter() -> None:
    snap = _snapshot()
    with pytest.warns(ConvergenceWarning, match=r"max_iter=1 .*tol=1e-05"):
        est = VBReliability(max_iter=1).fit(snap)
    assert est.converged_ is False and est.n_iter_ == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        done = VBReliability().fit(snap)
    assert done.converged_ and 1 < done.n_iter_ < done.max_iter


def test_online_warns_when_its_full_sweep_stops_at_max_iter() -> None:
    snap = _snapshot()
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        OnlineReliability(ReliabilitySettings(max_iter=1)).fit(snap)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        OnlineReliability().fit(snap)


def test_torch_runs_its_epochs_without_a_stopping_rule() -> None:
    """The seed's recipe has no convergence test (module docstring): it runs every epoch and never warns."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est = TorchReliability(torch_epochs=4).fit(_snapshot(n_ratings=80))
    assert est.n_iter_ == 4 and est.delta_history_.shape == (4,)


def _one_step_logistic(*args: Any, **kwargs: Any) -> LogisticRegression:
    """Stands in for LogisticRegression with max_iter forced to 1, so its solver stops at the limit."""
    kwargs["max_iter"] = 1
    return LogisticRegression(*args, **kwargs)


def _layers(n: int, signal: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 64))
    x[:, :8] += 3.0 * signal[:, None]
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_text_heads_pass_on_their_solvers_convergence_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The heads' iterative parts are scikit-learn solvers; a solver stopped at its limit is not hidden."""
    import sklearn.linear_model

    rng = np.random.default_rng(0)
    n = 60
    y = rng.integers(0, 2, n)
    df = pd.DataFrame({"text": [("great fine good " if t else "bad awful poor ") * (k % 3 + 1) for k, t in
                                enumerate(y)], "rating": rng.integers(1, 6, n).astype(float)})
    feats = compute_features(df, global_duplicates=False)
    lay = _layers(n, y * 2.0 - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        QualityModel(gbm_estimators=5).fit(feats, lay, y)
    monkeypatch.setattr(sklearn.linear_model, "LogisticRegression", _one_step_logistic)
    with pytest.warns(ConvergenceWarning):
        QualityModel(gbm_estimators=5).fit(feats, lay, y)
    with pytest.warns(ConvergenceWarning):
        FakeDetector(gbm_estimators=5, svm_features=500).fit(df, y, layers=lay, features=feats)


# ------------------------------------------------------------------------------------------ fitted state


def test_unfitted_estimators_say_so() -> None:
    for est in ESTIMATORS:
        with pytest.raises(NotFittedError):
            check_is_fitted(est)
    lay = np.zeros((1, 4))
    with pytest.raises(NotFittedError, match="SentimentModel"):
        SentimentModel().predict(["fine"], layers=lay, vader=np.zeros((1, 4)))
    with pytest.raises(NotFittedError, match="FakeDetector"):
        FakeDetector().predict_proba(["fine"], layers=lay, features=pd.DataFrame(index=[0]))
    with pytest.raises(NotFittedError, match="QualityModel"):
        QualityModel().predict(pd.DataFrame(index=[0]), lay)
    fitted = VBReliability().fit(_snapshot())
    check_is_fitted(fitted)
    assert all(hasattr(fitted, a) for a in ("item_mean_", "rater_precision_", "n_iter_", "converged_", "result_"))


def test_shipped_text_models_load_as_fitted_estimators() -> None:
    """The artifacts in src/truescore/text/models (pickled before the heads derived from BaseEstimator) load,
    are fitted, and clone to an unfitted copy with the same parameters."""
    from truescore.text._common import MODELS_DIR, load_artifact
    from truescore.text.scorer import ARTIFACTS

    kinds = {"sentiment": SentimentModel, "fake": FakeDetector, "quality": QualityModel}
    for task, name in ARTIFACTS.items():
        model = load_artifact(MODELS_DIR / name)
        assert type(model) is kinds[task]
        check_is_fitted(model)
        fresh = clone(model)
        assert fresh.get_params() == model.get_params()
        with pytest.raises(NotFittedError):
            check_is_fitted(fresh)
        assert repr(model).startswith(type(model).__name__ + "(")
