"""A local Alertmanager (Debian's ``prometheus-alertmanager``) for tests, ``make demo`` and the
bench.

Loopback only, gossip off (``--cluster.listen-address=``), its own config and storage in a state
dir so it never touches ``/etc/prometheus`` or a system daemon on 9093. The config routes every
alert to a receiver that sends nothing: what Alertmanager notifies is its operators' business,
we need its v2 API to accept, group and show our alerts. ``group_wait: 0s`` and a 1 s
``group_interval`` make groups visible at once in tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ioc.services.processes import child_dies_with_parent
from ioc.services.tansu import port_open

BINARIES = ("prometheus-alertmanager", "alertmanager")

CONFIG = """\
# Written by ioc.services.alertmanager: a local Alertmanager that notifies nobody.
route:
  receiver: "null"
  group_by: ["alertname"]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 4h
receivers:
  - name: "null"
"""


class AlertmanagerError(RuntimeError):
    pass


def alertmanager_binary() -> str:
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    raise AlertmanagerError(
        "Alertmanager is not installed (neither prometheus-alertmanager nor alertmanager is on "
        "PATH): run `make alertmanager`"
    )


@dataclass
class LocalAlertmanager:
    """One Alertmanager process on ``127.0.0.1:port``."""

    port: int
    state_dir: Path
    host: str = "127.0.0.1"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"alertmanager-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"alertmanager-{self.port}.log"

    @property
    def config_file(self) -> Path:
        return self.state_dir / f"alertmanager-{self.port}.yml"

    @property
    def storage_dir(self) -> Path:
        return self.state_dir / f"alertmanager-{self.port}-data"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def pid(self) -> int | None:
        """The pid from the pid file, if that process is still an Alertmanager on our port."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if (
            not cmdline
            or b"alertmanager" not in Path(cmdline[0].decode(errors="replace")).name.encode()
        ):
            return None
        if f"--web.listen-address={self.host}:{self.port}".encode() not in cmdline:
            return None
        return pid

    def ready(self, timeout: float = 1.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=timeout) as r:
                return bool(r.status == 200)
        except OSError:  # refused, reset, timed out, HTTP error status
            return False

    def running(self) -> bool:
        return self.pid() is not None and self.ready()

    def start(self, *, tied_to_parent: bool = False, timeout: float = 15.0) -> int:
        """Start Alertmanager unless it already runs; returns its pid once it is ready."""
        existing = self.pid()
        if existing is not None and self.ready():
            return existing
        if port_open(self.host, self.port):
            raise AlertmanagerError(f"port {self.port} is taken by another process")
        binary = alertmanager_binary()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.storage_dir.mkdir(exist_ok=True)
        self.config_file.write_text(CONFIG)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_file}",
                    f"--storage.path={self.storage_dir}",
                    f"--web.listen-address={self.host}:{self.port}",
                    "--cluster.listen-address=",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=child_dies_with_parent if tied_to_parent else None,
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AlertmanagerError(
                    f"alertmanager exited with {proc.returncode}; see {self.log_file}"
                )
            if self.ready(timeout=0.5):
                return proc.pid
            time.sleep(0.05)
        self.stop()
        raise AlertmanagerError(f"alertmanager was not ready on {self.port} within {timeout}s")

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop it if it runs (SIGTERM, then SIGKILL); returns whether there was one."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and _alive(pid):  # reaps our own child
                time.sleep(0.02)
        self.pid_file.unlink(missing_ok=True)
        return True


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished:
            return False
    except ChildProcessError:  # not our child: someone else reaps it
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
