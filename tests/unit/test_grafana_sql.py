"""The test-side model of Grafana's PostgreSQL macro and variable expansion reproduces
Grafana's own expectations (``macros_test.go``, ``interpolationTruthTable.test.ts``), so the
panel tests run the SQL a real Grafana would send."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.support.grafana_sql import (
    MacroError,
    Range,
    Variable,
    expand_macros,
    grafana_sql,
    interpolate_variables,
)

WHEN = Range(datetime(2018, 4, 12, 18, 0, tzinfo=UTC), datetime(2018, 4, 12, 18, 5, tzinfo=UTC))

MACROS_TEST_GO = [
    ("select $__time(time_column)", 'select time_column AS "time"'),
    ("select min($__time(time_column))", 'select min(time_column AS "time")'),
    (
        "WHERE $__timeFilter(time_column)",
        "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
    ),
    ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
    ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
    (
        "SELECT $__timeGroup(time_column,'5m'), value",
        'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value',
    ),
    (
        "SELECT $__timeGroup(time_column,'5m') as time, value",
        "SELECT floor(extract(epoch from time_column)/300)*300 as time, value",
    ),
    (
        "SELECT $__timeGroupAlias(time_column,'5m')",
        'SELECT floor(extract(epoch from time_column)/300)*300 AS "time"',
    ),
    ("$__timeGroup(time_column , '5m')", "floor(extract(epoch from time_column)/300)*300"),
    ("select $__unixEpochFilter(time)", "select time >= 1523556000 AND time <= 1523556300"),
]

MACROS_TEST_GO_TIMESCALE = [
    ("GROUP BY $__timeGroup(time_column,'5m')", "GROUP BY time_bucket('300.000s',time_column)"),
    (
        "GROUP BY $__timeGroup(time_column , '12d')",
        "GROUP BY time_bucket('1036800.000s',time_column)",
    ),
    ("GROUP BY $__timeGroup(time_column , '20ms')", "GROUP BY time_bucket('0.020s',time_column)"),
]


@pytest.mark.parametrize(("sql", "expected"), MACROS_TEST_GO)
def test_macros_expand_as_grafanas_go_tests_expect(sql: str, expected: str) -> None:
    assert expand_macros(sql, WHEN) == expected


@pytest.mark.parametrize(("sql", "expected"), MACROS_TEST_GO_TIMESCALE)
def test_timescale_form_uses_time_bucket(sql: str, expected: str) -> None:
    assert expand_macros(sql, WHEN, timescale=True) == expected


def test_long_intervals_print_in_gos_float_format() -> None:
    assert expand_macros("$__timeGroup(t,'12d')", WHEN) == (
        "floor(extract(epoch from t)/1.0368e+06)*1.0368e+06"
    )


def test_fractional_seconds_keep_only_their_digits() -> None:
    when = Range(
        datetime(1960, 2, 1, 7, 0, 0, 500000, tzinfo=UTC),
        datetime(1980, 2, 3, 8, 0, 0, 500000, tzinfo=UTC),
    )
    assert expand_macros("$__timeFilter(t)", when) == (
        "t BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'"
    )


def test_unknown_macros_and_bad_intervals_fail_the_panel() -> None:
    with pytest.raises(MacroError, match="unknown macro"):
        expand_macros("SELECT $__table()", WHEN)
    with pytest.raises(MacroError, match="interval"):
        expand_macros("SELECT $__timeGroup(t, 'soon')", WHEN)


def test_interval_follows_the_range_and_the_one_minute_floor() -> None:
    day = Range(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), 1000)
    assert (day.interval, day.interval_ms) == ("1m", 60_000)  # 86.4 s rounds to 1 min
    year = Range(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), 1000)
    assert (year.interval, year.interval_ms) == ("6h", 21_600_000)
    assert expand_macros("$__timeGroupAlias(b, $__interval)", year) == (
        'floor(extract(epoch from b)/21600)*21600 AS "time"'
    )


# interpolationTruthTable.test.ts (current PostgreSQL override) and the legacy SqlDatasource.
def test_single_values_are_escaped_but_not_quoted() -> None:
    host = {"host": Variable("server01"), "user": Variable("O'Brien")}
    assert interpolate_variables("host = $host", host, WHEN) == "host = server01"
    assert interpolate_variables("name = '$user'", host, WHEN) == "name = 'O''Brien'"


def test_multi_values_become_a_quoted_list() -> None:
    v = {"host": Variable(["srv1", "srv2"], multi=True)}
    assert interpolate_variables("IN ($host)", v, WHEN) == "IN ('srv1','srv2')"
    users = {"users": Variable(["O'Brien", "D'Angelo"], multi=True)}
    assert interpolate_variables("IN ($users)", users, WHEN) == "IN ('O''Brien','D''Angelo')"


def test_all_without_an_all_value_is_every_option() -> None:
    v = {"a": Variable([], multi=True, include_all=True, options=("x", "y"), all_selected=True)}
    assert interpolate_variables("IN (${a:sqlstring})", v, WHEN) == "IN ('x','y')"


def test_legacy_grafana_quotes_a_single_string_of_a_multi_variable() -> None:
    v = {"a": Variable("x", multi=True)}
    assert interpolate_variables("IN ($a)", v, WHEN, legacy=True) == "IN ('x')"
    assert interpolate_variables("IN ($a)", v, WHEN) == "IN (x)"
    assert interpolate_variables("IN (${a:sqlstring})", v, WHEN) == "IN ('x')"


def test_browser_then_backend() -> None:
    v = {"bucket": Variable("5m")}
    assert grafana_sql("SELECT $__timeGroup(ts, $bucket), 1", v, WHEN) == (
        'SELECT floor(extract(epoch from ts)/300)*300 AS "time", 1'
    )
