"""Shared fixtures. Integration fixtures start real services (see tests/support/services.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import Stack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A fresh embedded broker and a fresh migrated-on-demand database for one test module."""
    s = start_stack(Path(tmp_path_factory.mktemp("stack")))
    try:
        yield s
    finally:
        s.close()
