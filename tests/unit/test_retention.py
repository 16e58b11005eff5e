"""Retention per table (``IOC_RETENTION``): what an operator writes is what each table keeps,
and a typo is an error at start-up, never silently "forever"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.config import ConfigError, Settings
from ioc.retention import BY_NAME, KEPT, Retention, RetentionError, parse_overrides


def test_defaults_keep_raw_streams_their_days_dossiers_and_daily_rollups_forever() -> None:
    r = Settings.from_env({"IOC_RETENTION_DAYS": "200", "IOC_KPI_HISTORY_DAYS": "30"}).retention
    assert r.days("security_events") == r.days("uptime_checks") == 200
    assert r.days("security_5m") == r.days("uptime_1h") == 200  # summaries follow raw rows
    assert r.days("dossier_events") is None
    assert r.days("uptime_1d") is r.days("security_targets_1d") is None
    assert r.days("kpi_snapshots") == 30
    assert r.days("gateway_audit") == r.days("dead_letters") == 200
    assert r.days("alerts") is None


def test_an_override_of_a_raw_table_carries_to_its_summaries_unless_they_have_their_own() -> None:
    r = Retention(400, 90, parse_overrides("security_events=90, security_1h=365d"))
    assert r.days("security_events") == 90
    assert r.days("security_5m") == r.days("security_targets_1h") == 90
    assert r.days("security_1h") == 365
    assert r.days("uptime_5m") == 400


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("security_event=30", "unknown table 'security_event'"),
        ("security_events", "not table=days"),
        ("security_events=", "not table=days"),
        ("security_events=a month", "'a month' is not a number of days"),
        ("security_events=0", "keep at least 1 day"),
    ],
)
def test_a_malformed_setting_names_the_part_that_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(RetentionError, match=message):
        parse_overrides(raw)
    with pytest.raises(ConfigError, match=f"IOC_RETENTION: .*{message}"):
        Settings.from_env({"IOC_RETENTION": raw})


@given(
    st.dictionaries(
        st.sampled_from(sorted(BY_NAME)),
        st.none() | st.integers(min_value=1, max_value=100_000),
    )
)
def test_any_written_plan_reads_back_as_written(wanted: dict[str, int | None]) -> None:
    raw = ",".join(f"{k}={'forever' if v is None else v}" for k, v in wanted.items())
    assert parse_overrides(raw) == wanted
    plan = dict((t.name, d) for t, d in Retention(400, 90, wanted).plan())
    assert {k: plan[k] for k in wanted} == wanted
    assert list(plan) == [t.name for t in KEPT]


def test_only_finished_alert_history_is_ever_deleted() -> None:
    history = ("alerts", "alert_events", "notifications", "alert_actions")
    assert all(BY_NAME[t].finished for t in history)
    assert Retention(400, 90, parse_overrides("alerts=365")).days("alerts") == 365


def test_recompute_may_not_rebuild_where_raw_rows_are_gone() -> None:
    now = datetime(2026, 11, 22, 10, tzinfo=UTC)
    r = Retention(400, 90, parse_overrides("uptime_checks=30"))
    assert r.rebuildable_from(now) == now - timedelta(days=29)  # the oldest day is partial
    everything = parse_overrides("uptime_checks=forever,security_events=forever")
    assert Retention(400, 90, everything).rebuildable_from(now) is None


def test_kpi_recompute_refuses_a_range_past_retention() -> None:
    from typer.testing import CliRunner

    from ioc.cli import app

    result = CliRunner().invoke(
        app,
        ["kpi", "recompute", "--from", "2020-01-01T00:00+00:00", "--to", "2020-01-02T00:00+00:00"],
        env={"IOC_RETENTION_DAYS": "400"},
    )
    assert result.exit_code == 2
    assert "past retention" in result.output


def test_kpi_recompute_will_not_store_a_snapshot_of_the_future() -> None:
    from typer.testing import CliRunner

    from ioc.cli import app

    soon = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    result = CliRunner().invoke(
        app,
        [
            "kpi",
            "recompute",
            "--from",
            (soon - timedelta(hours=2)).isoformat(),
            "--to",
            soon.isoformat(),
            "--at",
            (soon + timedelta(days=1)).isoformat(),
            "--write",
        ],
        env={},
    )
    assert result.exit_code == 2
    assert "in the future" in result.output


def test_every_bucketed_summary_and_event_table_has_a_retention_rule() -> None:
    """The retention table names the storage layer's tables: a summary added later without a
    rule here would grow forever, and one following the wrong raw table would be trimmed
    before ``ioc kpi recompute`` could re-derive it."""
    from ioc.storage.summaries import SUMMARY_TABLES
    from ioc.storage.tables import EVENT_TABLES

    assert set(EVENT_TABLES) <= set(BY_NAME)
    for t in SUMMARY_TABLES:
        if t.bucket is None:
            continue  # per-key state (last check of a service): no time axis to trim
        kept = BY_NAME[t.name]
        assert kept.column == "bucket"
        if t.bucket == "1 day":
            assert kept.default == "forever", t.name
        else:
            assert (kept.default, kept.follows) == ("follows", t.stream_table), t.name
