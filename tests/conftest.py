"""Shared fixtures. Integration fixtures start real services (see tests/support/services.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import Stack, start_stack


@pytest.fixture(scope="module", params=["batch", "agents"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A fresh embedded broker and database for one test module, once per ingest engine
    (the batched consumer and the Faust agents must give the same answers)."""
    s = start_stack(Path(tmp_path_factory.mktemp("stack")))
    s.extra_env["IOC_INGEST_ENGINE"] = request.param
    try:
        yield s
    finally:
        s.close()
