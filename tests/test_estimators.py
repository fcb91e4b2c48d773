"""Every estimator of the library honours the scikit-learn contract (CONTRIBUTING.md, "Estimators").

- ``clone``, ``get_params``/``set_params`` and the repr work; ``__init__`` only stores;
- each default is read from the settings object (one source);
- an iterative fit that stops at its limit warns with :class:`ConvergenceWarning`;
- the checks of ``sklearn.utils.estimator_checks`` that apply to an estimator whose ``fit`` does not take a
  numeric array ``X`` pass; the others are skipped, each with its reason (:func:`_not_applicable`).
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
from sklearn.utils.estimator_checks import parametrize_with_checks
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

#: The checks that fit on a numeric array ``X``: none of our estimators takes one (see _not_applicable).
_ARRAY_FIT_CHECKS = (
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_complex_data", "check_dtype_object",
    "check_estimators_empty_data_messages", "check_pipeline_consistency", "check_estimators_nan_inf",
    "check_estimator_sparse_tag", "check_estimator_sparse_array", "check_estimator_sparse_matrix",
    "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d",
)


def _not_applicable(estimator: BaseEstimator) -> dict[str, str]:
    """The scikit-learn checks that do not apply to ``estimator``, each with the reason (skipped).

    What runs and passes for every estimator: check_estimator_cloneable, check_estimator_tags_renamed,
    check_valid_tag_types, check_estimator_repr, check_no_attributes_set_in_init,
    check_do_not_raise_errors_in_init_or_set_params, check_mixin_order, check_parameters_default_constructible,
    check_get_params_invariance, check_set_params; also check_estimators_unfitted (all but QualityModel) and
    check_fit1d (the text heads: they refuse 1-d input with a ValueError). check_array_api_input skips itself.
    """
    if isinstance(estimator, RELIABILITY):
        why = ("fit takes a RatingSnapshot (sparse (user, item, rating) triples with ids), not a numeric array X; "
               "a reliability model is neither a classifier, a regressor nor a transformer")
        names = [n for n in _ARRAY_FIT_CHECKS if n != "check_fit1d"] + ["check_fit1d"]
    elif isinstance(estimator, QualityModel):
        why = "fit takes three inputs (feature frame, encoder layer embeddings, labels), not (X, y)"
        names = [*_ARRAY_FIT_CHECKS, "check_fit1d"]
    else:
        why = "fit takes review texts (strings, with optional encoder layers), not a numeric array X"
        names = list(_ARRAY_FIT_CHECKS)
    out = dict.fromkeys(names, why)
    if isinstance(estimator, QualityModel):
        out["check_estimators_unfitted"] = ("predict takes two inputs (features, layers), so predict(X) fails on its "
                                            "signature before the fitted-state check (test_unfitted_estimators_say_so "
                                            "covers it)")
    if isinstance(estimator, SentimentModel | FakeDetector):
        # these refuse numeric rows with a ValueError that names the bad text, not sklearn's own message
        for name in ("check_complex_data", "check_estimators_empty_data_messages", "check_fit2d_1sample",
                     "check_fit2d_1feature"):
            out[name] = why + " (numeric input is refused with a ValueError naming the bad text)"
    return out


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator: BaseEstimator, check: Any) -> None:
    # Skipped, not marked as expected failures (``expected_failed_checks``): pytest formats the traceback of
    # every expected failure through sklearn's 5,000-line check module, which costs ~0.5 s each (90 s here).
    name = getattr(check, "func", check).__name__
    reason = _not_applicable(estimator).get(name)
    if reason is not None:
        pytest.skip(f"not applicable: {reason}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        check(estimator)


def test_every_not_applicable_check_exists() -> None:
    """The skip list names real checks (a typo would silently skip nothing)."""
    import sklearn.utils.estimator_checks as checks

    for est in ESTIMATORS:
        for name in _not_applicable(est):
            assert callable(getattr(checks, name, None)), name


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
