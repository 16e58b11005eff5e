"""``ioc demo``: the whole pipeline on one machine, with a live terminal view.

Starts what is missing (database, embedded broker, a local Alertmanager), migrates, runs one
worker as a child process and the province simulator in this process, and redraws a table
every second from the worker's own ``/metrics``, so what you see is what Prometheus would
scrape. Ctrl-C stops the simulator, then the worker (gracefully, then by force), then what
the demo started; children also die with this process if it is killed (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ioc.config import Settings, mask_password
from ioc.services.processes import child_dies_with_parent
from ioc.simulator.runner import SimulationPlan, SimulationStats, run_simulation
from ioc.streams import STREAMS

if TYPE_CHECKING:
    from ioc.services.alertmanager import LocalAlertmanager

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
DEMO_ALERTMANAGER_PORT = 19093  # beside the embedded broker's 19092
ALERT_SEVERITIES = ("critical", "high", "medium", "low", "info")


def scrape(port: int, timeout: float = 0.5) -> Samples | None:
    """Current samples of a ``/metrics`` endpoint, or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            text = r.read().decode()
    except OSError:
        return None
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def per_stream(samples: Samples, name: str) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for (metric, labels), value in samples.items():
        if metric == name:
            totals[dict(labels).get("stream", "")] += value
    return totals


@dataclass
class LiveView:
    """Turns successive scrapes into rates and latencies per stream."""

    started: float = field(default_factory=time.monotonic)
    previous: Samples | None = None
    previous_at: float = 0.0

    def render(
        self,
        samples: Samples | None,
        stats: SimulationStats,
        worker_alive: bool,
        settings: Settings,
    ) -> Group:
        now = time.monotonic()
        table = Table(title="IOC pipeline — live", expand=True)
        for col in ("stream", "produced", "stored", "dups", "dead", "stored/s", "write ms"):
            table.add_column(col, justify="left" if col == "stream" else "right")
        cur = samples or {}
        prev = self.previous or {}
        dt = max(now - self.previous_at, 1e-6)
        stored, dups, dead = (
            per_stream(cur, n)
            for n in (
                "ioc_events_stored_total",
                "ioc_events_duplicate_total",
                "ioc_events_dead_lettered_total",
            )
        )
        stored_prev = per_stream(prev, "ioc_events_stored_total")
        wsum, wcount = (
            per_stream(cur, n)
            for n in ("ioc_batch_write_seconds_sum", "ioc_batch_write_seconds_count")
        )
        wsum_p, wcount_p = (
            per_stream(prev, n)
            for n in ("ioc_batch_write_seconds_sum", "ioc_batch_write_seconds_count")
        )
        for s in STREAMS:
            n = s.name
            rate = (stored.get(n, 0) - stored_prev.get(n, 0)) / dt if self.previous else 0.0
            batches = wcount.get(n, 0) - wcount_p.get(n, 0)
            latency = ((wsum.get(n, 0) - wsum_p.get(n, 0)) / batches * 1000) if batches else None
            table.add_row(
                n,
                f"{stats.produced[n]:,}",
                f"{int(stored.get(n, 0)):,}",
                f"{int(dups.get(n, 0)):,}",
                f"{int(dead.get(n, 0)):,}",
                f"{rate:,.0f}",
                f"{latency:.1f}" if latency is not None else "–",
            )
        if samples is not None:
            self.previous, self.previous_at = samples, now
        db = cur.get(("ioc_database_up", ()))
        status = Text.assemble(
            ("worker ", "bold"),
            (
                "up" if worker_alive and samples else "starting…" if worker_alive else "DOWN",
                "green" if samples else "yellow",
            ),
            ("   database ", "bold"),
            ("up" if db == 1 else "down" if db == 0 else "–", "green" if db == 1 else "red"),
            ("   simulated time ", "bold"),
            (stats.sim_time.strftime("%Y-%m-%d %H:%M UTC") if stats.sim_time else "–", ""),
            (f"   elapsed {now - self.started:,.0f}s", "dim"),
        )
        open_alerts = {
            labels[0][1]: int(v)
            for (name, labels), v in cur.items()
            if name == "ioc_alerts_open" and labels
        }
        if open_alerts:
            status.append_text(
                Text.assemble(
                    ("\nopen alerts ", "bold"),
                    (
                        "  ".join(f"{sev} {open_alerts.get(sev, 0)}" for sev in ALERT_SEVERITIES),
                        "red" if open_alerts.get("critical") else "",
                    ),
                )
            )
        foot = Text(
            f"broker {settings.kafka_bootstrap} · db {mask_password(settings.database_url)}"
            f" · metrics http://127.0.0.1:{settings.metrics_port}/metrics · Ctrl-C stops",
            style="dim",
        )
        return Group(status, table, foot)


def run_demo(settings: Settings, *, speedup: float = 720.0, duration: float | None = None) -> int:
    from ioc.broker import ensure_topics
    from ioc.services.postgres import ensure_database
    from ioc.services.tansu import TansuBroker
    from ioc.storage.migrations import migrate

    console = Console()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    console.print("[bold]Starting the database…[/]")
    ensure_database(settings.database_url)
    broker = None
    if settings.embedded_broker:
        candidate = TansuBroker(port=settings.first_broker[1], state_dir=settings.state_dir)
        if not candidate.running():
            console.print(f"[bold]Starting the embedded broker on {settings.kafka_bootstrap}…[/]")
            candidate.start(tied_to_parent=True)
            broker = candidate
    mode, _ = migrate(settings.database_url)
    asyncio.run(ensure_topics(settings))
    alertmanager, env = _start_alertmanager(settings, console)
    log_path = settings.state_dir / "demo-worker.log"
    console.print(f"[bold]Storage mode: {mode}. Starting the worker (log: {log_path})…[/]")
    with open(log_path, "ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli", "worker"],
            env={**os.environ, **env, "IOC_METRICS_PORT": str(settings.metrics_port)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=child_dies_with_parent,
        )
    try:
        asyncio.run(_live(settings, worker, speedup, duration, console))
    except KeyboardInterrupt:
        pass
    finally:
        console.print("[bold]Stopping…[/]")
        _stop(worker)
        if alertmanager is not None:
            alertmanager.stop()
        if broker is not None:
            broker.stop()
    return 0


def _start_alertmanager(
    settings: Settings, console: Console
) -> tuple[LocalAlertmanager | None, dict[str, str]]:
    """A local Alertmanager for the alerts the demo's rules raise, unless the environment
    names one (``IOC_ALERTMANAGER_URL``) or the binary is missing (``make alertmanager``)."""
    from ioc.services.alertmanager import AlertmanagerError, LocalAlertmanager

    if os.environ.get("IOC_ALERTMANAGER_URL"):
        return None, {}
    am = LocalAlertmanager(port=DEMO_ALERTMANAGER_PORT, state_dir=settings.state_dir / "am")
    try:
        if not am.running():
            am.start(tied_to_parent=True)
    except AlertmanagerError as exc:
        console.print(f"[yellow]No Alertmanager ({exc}); alerts are stored, not delivered.[/]")
        return None, {}
    console.print(f"[bold]Alertmanager on {am.url} (alerts: {am.url}/#/alerts)[/]")
    return am, {"IOC_ALERTMANAGER_URL": am.url}


async def _live(
    settings: Settings,
    worker: subprocess.Popen[bytes],
    speedup: float,
    duration: float | None,
    console: Console,
) -> None:
    stats = SimulationStats()
    stop = asyncio.Event()
    plan = SimulationPlan(speedup=speedup, duration_seconds=duration)
    sim = asyncio.create_task(run_simulation(settings, plan, stats, stop=stop))
    view = LiveView()
    loop = asyncio.get_running_loop()
    # On a terminal the table redraws in place; piped to a file or CI log, a snapshot is
    # printed every few seconds instead (rich's Live would print only the last one).
    live = Live(console=console, refresh_per_second=2) if console.is_terminal else None
    tick = 0
    try:
        if live:
            live.start()
        while True:
            samples = await loop.run_in_executor(None, scrape, settings.metrics_port)
            frame = view.render(samples, stats, worker.poll() is None, settings)
            if live:
                live.update(frame)
            elif sim.done() or tick % 5 == 0:
                console.print(frame)
            if sim.done():
                break
            if worker.poll() is not None:
                console.print(f"[red]worker exited with {worker.returncode}; see its log[/]")
                break
            tick += 1
            await asyncio.sleep(1.0)
    finally:
        if live:
            live.stop()
        stop.set()
        await asyncio.gather(sim, return_exceptions=True)


def _stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
