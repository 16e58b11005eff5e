"""Shared fixtures of the integration tests (each module gets its own instance)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ioc.storage.migrations import migrate
from tests.support.services import Stack, drop_database, new_database, start_stack


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh, migrated database for one test module, dropped afterwards."""
    url = new_database()
    migrate(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def kpi_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A broker and a database for worker tests that read KPIs: refreshes every second."""
    s = start_stack(Path(tmp_path_factory.mktemp("kpi")))
    s.extra_env["IOC_KPI_INTERVAL_SECONDS"] = "1"
    try:
        yield s
    finally:
        s.close()
