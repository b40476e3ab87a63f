"""A throwaway PostgreSQL cluster for the tests: initdb into a temp dir, random port, stopped after.

Root cannot run postgres, so the cluster runs as the `postgres` OS user when the tests run as root.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.storage_servers import free_ports


def find_pg_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if candidates and (candidates[-1] / "initdb").exists():
        return candidates[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise FileNotFoundError(
        "PostgreSQL server binaries not found: ./dev test installs them (apt-get install postgresql)"
    )


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a DSN (postgresql://postgres@127.0.0.1:PORT/postgres) to a fresh cluster.

    Its data lives in a new directory under the system temp dir, which the postgres user can reach
    (pytest's own temp dirs are private to root).
    """
    pg_bin = find_pg_bin()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data = workdir / "data"
    (port,) = free_ports(1)
    subprocess.run(
        [
            *as_user,
            str(pg_bin / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [
            *as_user,
            str(pg_bin / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(workdir / "log"),
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            options,
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(dsn: str, name: str) -> str:
    """A new empty database on the cluster; returns its DSN."""
    import asyncio

    import asyncpg

    async def create() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return dsn.rsplit("/", 1)[0] + f"/{name}"


def store_uri_for(request: Any, workdir: Path) -> str:
    """The metadata store a test module's `request.param` ("sqlite" or "postgresql") asks for: a SQLite file
    in `workdir`, or a new database on the session's cluster (the `postgres_dsn` fixture)."""
    if request.param == "sqlite":
        return f"sqlite:///{workdir / 'mlruns.db'}"
    return create_database(request.getfixturevalue("postgres_dsn"), f"db{uuid.uuid4().hex[:16]}")
