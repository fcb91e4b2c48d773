"""Settings once (issue 19): the engines take their settings section as an argument and never read the
process-wide settings; the doors (CLI, API, jobs, Spark, demo) load them once and pass them.

A user's ``truescore.toml`` (or ``TRUESCORE_*`` variable) therefore reaches an engine through a door, and an
engine called without settings computes with the documented defaults.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

import truescore
import truescore.config as config_module
from truescore.config import (
    IntegritySettings,
    PersonalSettings,
    RankingSettings,
    Settings,
    TextSettings,
    TrustSettings,
    default_settings,
)
from truescore.domain import RatingSnapshot, Review, TrustEdge
from truescore.jobs import rater_from_store, run_fit
from truescore.reliability import fit
from truescore.store import Store
from truescore.trust import Rater

from conftest import run_cli

SRC = Path(truescore.__file__).resolve().parent
ENGINES = ("reliability", "trust", "text", "integrity", "ranking")


def _names(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            out.update(alias.name for alias in node.names)
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_no_engine_reads_the_process_settings(engine: str) -> None:
    offenders = [str(path.relative_to(SRC)) for path in sorted((SRC / engine).rglob("*.py"))
                 if "get_settings" in _names(ast.parse(path.read_text(encoding="utf-8")))]
    assert offenders == [], f"these engine modules call get_settings(): {offenders}"


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """A user's truescore.toml with a non-default value in every engine's section, as the process settings."""
    toml = tmp_path / "truescore.toml"
    toml.write_text("[reliability]\nuse_bias = true\n\n[trust]\nmin_weight = 0.05\n\n[personal]\nenabled = false\n\n"
                    "[ranking]\nburst_z = 7.0\n\n[integrity]\nflag_threshold = 0.7\n\n[text]\nmax_text_chars = 500\n")
    monkeypatch.setenv("TRUESCORE_CONFIG", str(toml))
    monkeypatch.setattr(config_module, "_cached", None)
    cfg = config_module.get_settings()
    assert cfg.reliability.use_bias and cfg.trust.min_weight == 0.05 and not cfg.personal.enabled
    return cfg


def _store(tmp_path: Path) -> Store:
    store = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    store.add_reviews([Review(f"r{k}", f"i{k % 4}", f"u{k % 9}", 1.0 + (k * 7) % 5, created_at=1.6e9 + k * 3600.0)
                       for k in range(60)])
    store.add_trust([TrustEdge("u0", "u1", "reviews", 0.9, created_at=1.6e9)])
    return store


def test_engines_without_settings_use_the_documented_defaults(configured: Settings) -> None:
    from truescore.text.embed import get_encoder
    from truescore.text.scorer import ReviewScorer, get_scorer

    snap = RatingSnapshot.from_arrays([0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 1], [4, 4, 5, 2, 2, 1],
                                      min_rating=1, max_rating=5)
    assert fit(snap).extras["use_bias"] is False
    assert fit(snap, configured).extras["use_bias"] is True
    rater = Rater.from_events(reviews=[Review("r1", "i1", "u1", 4.0, datetime(2025, 1, 1, tzinfo=UTC))])
    assert rater.settings == TrustSettings() and rater.personal_settings == PersonalSettings()
    assert ReviewScorer().max_text_chars == TextSettings().max_text_chars
    assert get_scorer(configured.text).max_text_chars == 500
    assert get_scorer(configured.text) is get_scorer(configured.text) is not get_scorer()
    assert get_encoder().max_tokens == TextSettings().max_tokens
    defaults = default_settings()
    assert defaults.ranking == RankingSettings() and defaults.integrity == IntegritySettings()
    assert defaults.trust == TrustSettings() and defaults.database_url == Settings.model_fields["database_url"].default


def test_the_jobs_pass_the_process_settings(configured: Settings, tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert run_fit(store).result.extras["use_bias"] is True  # the library's door: the process settings
    rater = rater_from_store(store)
    assert rater.settings.min_weight == 0.05 and rater.personal_settings.enabled is False
    only_trust = rater_from_store(store, TrustSettings(min_weight=0.02))
    assert only_trust.settings.min_weight == 0.02 and only_trust.personal_settings.enabled is False
    explicit = rater_from_store(store, default_settings())
    assert explicit.settings == TrustSettings() and explicit.personal_settings == PersonalSettings()


def test_the_cli_passes_the_users_toml(configured: Settings, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    store = _store(tmp_path)
    db = str(store.engine.url)
    code, _, err = run_cli(["fit", "--db", db, "--top", "0"], capsys)
    assert code == 0, err
    users = {r["user_id"]: r for r in store.read_derived("user_reliability")}
    assert any(abs(float(r["bias"])) > 0 for r in users.values())  # the configured use_bias = true reached the fit
    plain = fit(store.snapshot())
    assert np.allclose(plain.bias, 0.0)


def test_reference_data_folder_is_the_argument_else_the_environment(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from truescore.text.datasets import DataUnavailable, data_dir

    monkeypatch.setenv("TRUESCORE_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path.resolve()
    other = tmp_path / "other"
    other.mkdir()
    assert data_dir(other) == other.resolve()
    with pytest.raises(DataUnavailable, match="missing"):
        data_dir(tmp_path / "missing")


def test_the_integrity_detectors_defaults_are_the_settings_defaults() -> None:
    """Each detector's keyword default is read from IntegritySettings (one source), not written again."""
    import inspect

    from truescore.integrity.behaviour import behaviour_scores
    from truescore.integrity.changepoint import change_points
    from truescore.integrity.cohort import cohort_concentration
    from truescore.integrity.duplicates import duplicates_from_signatures, near_duplicates
    from truescore.integrity.rings import detect_rings

    s = IntegritySettings()
    expected = {
        near_duplicates: {"threshold": s.duplicate_threshold, "min_accounts": s.duplicate_min_accounts,
                          "min_words": s.duplicate_min_words, "min_lift": s.duplicate_min_lift},
        duplicates_from_signatures: {"threshold": s.duplicate_threshold, "min_accounts": s.duplicate_min_accounts,
                                     "min_lift": s.duplicate_min_lift},
        behaviour_scores: {"burst_window_days": s.burst_day_window_days},
        cohort_concentration: {"bucket_days": s.cohort_bucket_days, "min_accounts": s.cohort_min_accounts,
                               "min_lift": s.cohort_min_lift, "min_age_days": s.cohort_min_age_days},
        change_points: {"z0": s.change_z, "min_ratings": s.change_min_ratings},
        detect_rings: {"max_user_ratings": s.ring_max_user_ratings, "min_members": s.ring_min_members,
                       "min_lift": s.ring_min_lift, "min_gap": s.ring_min_gap, "eps": s.ring_peel_eps,
                       "max_rings": s.ring_max_rings, "max_window_days": s.ring_max_window_days,
                       "consensus_z_min": s.consensus_z},
    }
    for fn, defaults in expected.items():
        params = inspect.signature(fn).parameters
        assert {name: params[name].default for name in defaults} == defaults, fn.__name__
