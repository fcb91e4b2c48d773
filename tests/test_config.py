"""The configuration object: seed 003's tuning table, overrides and range checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from truescore.config import ConfigError, describe_settings, load_settings

# (dotted name, default, a value below the range, a value above it) from seed 003's tuning table
TUNING_TABLE = [
    ("trust.recency_half_life_days", 730.0, 29, 3651),
    ("trust.activity_saturation", 50.0, 9, 1001),
    ("trust.topic_inheritance_decay", 0.8, 0.49, 1.01),
    ("trust.min_weight", 0.01, -0.01, 0.21),
    ("trust.max_depth_t", 5, 0, 11),
    ("trust.max_depth_h", 3, 0, 11),
    ("trust.helpfulness_neutral", 0.5, 0.29, 0.71),
]


def _get(settings: object, dotted: str) -> object:
    for part in dotted.split("."):
        settings = getattr(settings, part)
    return settings


@pytest.mark.parametrize(("name", "default", "low", "high"), TUNING_TABLE, ids=[t[0] for t in TUNING_TABLE])
def test_tuning_table_defaults_and_ranges(name: str, default: float, low: float, high: float) -> None:
    assert _get(load_settings(), name) == default
    section, field = name.split(".")
    for bad in (low, high):
        with pytest.raises(ConfigError, match=rf"{name} = {bad!r}.*allowed range"):
            load_settings(**{section: {field: bad}})


def test_qrp0002_defaults() -> None:
    s = load_settings()
    assert s.trust.confidence_full_weight == 5.0
    assert s.trust.confidence_full_contributors == 10
    assert s.trust.baseline_observer_id
    assert s.database_url == "sqlite:///truescore.db"


def test_environment_overrides_nested_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUESCORE_TRUST__RECENCY_HALF_LIFE_DAYS", "365")
    monkeypatch.setenv("TRUESCORE_DATABASE_URL", "sqlite:///elsewhere.db")
    s = load_settings()
    assert s.trust.recency_half_life_days == 365
    assert s.database_url == "sqlite:///elsewhere.db"


def test_environment_value_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUESCORE_TRUST__MAX_DEPTH_T", "12")
    with pytest.raises(ConfigError, match=r"trust\.max_depth_t.*1\.\.10"):
        load_settings()


def test_toml_file_and_per_topic_half_life(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "truescore.toml"
    toml.write_text(
        '[trust]\nrecency_half_life_days = 400\n'
        '[trust.topic_half_life_days]\n"reviews.public.food" = 180\n"reviews.public.books" = 1825\n'
    )
    monkeypatch.setenv("TRUESCORE_CONFIG", str(toml))
    s = load_settings()
    assert s.trust.half_life_for("reviews.public.food.restaurants") == 180
    assert s.trust.half_life_for("reviews.public.books") == 1825
    assert s.trust.half_life_for("reviews.public.foodstuff") == 400  # a prefix must end at a dot
    assert s.trust.half_life_for("reviews.public.technology") == 400


def test_environment_beats_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text("[trust]\nmin_weight = 0.05\n")
    monkeypatch.setenv("TRUESCORE_CONFIG", str(toml))
    monkeypatch.setenv("TRUESCORE_TRUST__MIN_WEIGHT", "0.1")
    assert load_settings().trust.min_weight == 0.1


def test_per_topic_half_life_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError, match="topic_half_life_days"):
        load_settings(trust={"topic_half_life_days": {"reviews.public.food": 5}})


def test_unknown_parameter_is_refused() -> None:
    with pytest.raises(ConfigError, match="recency_halflife"):
        load_settings(trust={"recency_halflife": 3})


def test_missing_config_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRUESCORE_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match=r"absent\.toml"):
        load_settings()


def test_every_parameter_is_described() -> None:
    rows = describe_settings(load_settings())
    names = {r[0] for r in rows}
    assert {"trust.min_weight", "database_url", "reliability.max_iter"} <= names
    undocumented = [r[0] for r in rows if not r[3]]
    assert undocumented == []
    ranges = dict((r[0], r[2]) for r in rows)
    assert ranges["trust.recency_half_life_days"] == "30..3650"
