"""Fixtures of the integration tests that need a database but no broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ioc.storage.migrations import migrate
from tests.support.services import drop_database, new_database


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh, migrated database for one test module, dropped afterwards."""
    url = new_database()
    migrate(url)
    yield url
    drop_database(url)
