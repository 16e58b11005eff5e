"""Every pipeline connection fails fast on a dead peer and runs without JIT, unless the
operator's URL says otherwise."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from ioc.storage.writer import with_connection_defaults


def test_defaults_fill_what_the_url_leaves_out() -> None:
    got = conninfo_to_dict(with_connection_defaults("postgresql://ioc@db.tinh.vn:5432/ioc"))
    assert got["connect_timeout"] == "10" and got["tcp_user_timeout"] == "30000"
    assert got["options"] == "-c jit=off"
    assert got["host"] == "db.tinh.vn" and got["dbname"] == "ioc"


def test_the_urls_own_values_win_and_its_options_are_kept() -> None:
    url = "postgresql://ioc@db/ioc?connect_timeout=3&options=-c%20statement_timeout%3D5000"
    got = conninfo_to_dict(with_connection_defaults(url))
    assert got["connect_timeout"] == "3"
    assert got["options"] == "-c statement_timeout=5000 -c jit=off"


def test_an_operator_who_wants_jit_keeps_it() -> None:
    got = conninfo_to_dict(with_connection_defaults("dbname=ioc options='-c jit=on'"))
    assert got["options"] == "-c jit=on"
