"""A real Alertmanager for tests and the bench, on a free loopback port, stopped afterwards.

In a test module: ``from tests.support.alertmanager import alertmanager_fixture  # noqa: F401``
then ask for the ``alertmanager`` fixture (one process per module). Elsewhere (the bench):
``with running_alertmanager(tmp_dir) as am: ... am.url``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ioc.services.alertmanager import LocalAlertmanager
from tests.support.services import free_port


def start_alertmanager(state_dir: Path) -> LocalAlertmanager:
    """Started and ready; it dies with this process even if the run is killed."""
    am = LocalAlertmanager(port=free_port(), state_dir=state_dir)
    am.start(tied_to_parent=True)
    return am


@contextmanager
def running_alertmanager(state_dir: Path) -> Iterator[LocalAlertmanager]:
    am = start_alertmanager(state_dir)
    try:
        yield am
    finally:
        am.stop()


@pytest.fixture(scope="module", name="alertmanager")
def alertmanager_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAlertmanager]:
    """A fresh Alertmanager for one test module (no alerts, no silences)."""
    with running_alertmanager(Path(tmp_path_factory.mktemp("alertmanager"))) as am:
        yield am
