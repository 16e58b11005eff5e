"""The local PostgreSQL server for dev and tests: find it, start it, create our database.

Production points ``IOC_DATABASE_URL`` at its own server and none of this runs. Installing the
server (Debian's ``postgresql`` package) is the Makefile's job (``make services``), because it
needs apt; here we only start an installed cluster and create the database.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class DatabaseError(RuntimeError):
    pass


def server_reachable(url: str) -> bool:
    try:
        with psycopg.connect(admin_url(url), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def admin_url(url: str) -> str:
    """The same server, database ``postgres``: where CREATE DATABASE runs."""
    return make_conninfo(url, dbname="postgres")


def database_name(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname") or "postgres")


def start_local_cluster() -> None:
    """Start the Debian cluster(s) with ``pg_ctlcluster`` (what the machine image does)."""
    if shutil.which("pg_lsclusters") is None:
        raise DatabaseError(
            "PostgreSQL is not installed: run `make services` (installs Debian's postgresql) "
            "or set IOC_DATABASE_URL"
        )
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        version, cluster, _port, status, *_ = line.split()
        if status != "online":
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "start"],
                check=False,
            )


def ensure_database(url: str, *, timeout: float = 30.0) -> bool:
    """Make sure the server answers and the database exists; True if it was created."""
    if not server_reachable(url):
        start_local_cluster()
        deadline = time.monotonic() + timeout
        while not server_reachable(url):
            if time.monotonic() > deadline:
                raise DatabaseError(f"PostgreSQL did not come up at {_safe(url)}")
            time.sleep(0.5)
    name = database_name(url)
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(url: str) -> None:
    name = database_name(url)
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _safe(url: str) -> str:
    from ioc.config import mask_password

    return mask_password(url)
