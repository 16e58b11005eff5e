"""`ioc demo` end to end: all three streams flow, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ioc.services.tansu import port_open
from tests.support.services import drop_database, free_port, new_database

pytestmark = pytest.mark.e2e


@pytest.fixture
def demo_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    url = new_database("ioc_demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(
        IOC_DATABASE_URL=url,
        IOC_EMBEDDED_BROKER_PORT=str(free_port()),
        IOC_METRICS_PORT=str(free_port()),
        IOC_STATE_DIR=str(tmp_path),
        COLUMNS="100",
    )
    yield env
    drop_database(url)


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,pgid="], capture_output=True, text=True)
    found = []
    for line in out.stdout.splitlines():
        p, ppid, pgid = (int(x) for x in line.split())
        if ppid == pid or pgid == pid:
            found.append(p)
    return found


def test_demo_shows_all_three_streams_stored_and_ctrl_c_stops_everything(
    demo_env: dict[str, str], tmp_path: Path
) -> None:
    out_path = tmp_path / "demo.out"
    with open(out_path, "wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli", "demo"],
            env=demo_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        port = int(demo_env["IOC_EMBEDDED_BROKER_PORT"])
        rows: dict[str, int] = {}
        deadline = time.monotonic() + 60  # the promise: flowing within 60 s
        while time.monotonic() < deadline and demo.poll() is None:
            time.sleep(2)
            text = out_path.read_text(errors="replace")
            for stream in ("dossier", "uptime", "security"):
                m = list(re.finditer(rf"│ {stream}\s+│\s+([\d,]+) │\s+([\d,]+) │", text))
                if m:
                    rows[stream] = int(m[-1].group(2).replace(",", ""))
            if len(rows) == 3 and all(v > 0 for v in rows.values()):
                break
        assert demo.poll() is None, out_path.read_text(errors="replace")[-3000:]
        assert rows.keys() == {"dossier", "uptime", "security"}, out_path.read_text()[-3000:]
        assert all(v > 0 for v in rows.values()), rows
        assert children_of(demo.pid), "the demo runs a worker and a broker"
        spawned = children_of(demo.pid)

        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        assert demo.wait(60) == 0
    finally:
        if demo.poll() is None:  # a failed assertion must not leave a demo running
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    time.sleep(0.5)
    alive = [p for p in spawned if Path(f"/proc/{p}").exists()]
    assert alive == [], f"processes left behind: {alive}"
    assert not port_open("127.0.0.1", port), "the embedded broker is still listening"
