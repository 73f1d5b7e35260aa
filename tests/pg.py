"""A throwaway PostgreSQL server for the tests, run by ``scripts/postgres`` (Debian's package).

Any test package can use it; its conftest re-exports the fixtures::

    import pytest
    from pg import empty_database, postgres_session

    @pytest.fixture(scope="session")
    def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
        yield from postgres_session(tmp_path_factory)

    @pytest.fixture
    async def postgres_db_url(postgres_url: str) -> str:
        return await empty_database(postgres_url)

One server runs per test process (each pytest-xdist worker starts its own, on its own free port
and in its own temporary directory); all conftests that re-export ``postgres_url`` share it,
and it is destroyed when the last of them is torn down. A watchdog process destroys it too if
the test process dies without tearing down. Without the PostgreSQL binaries the tests that need
the server are skipped, unless in CI (tests/ci.py: ``$CI`` true, 1 or yes): then they fail.

``empty_database`` gives a test an empty database: the process's scratch database with its
``public`` schema dropped and created again (some 0.03 s; sessions still connected to it are
ended first). ``new_database`` creates another database (0.1 to 0.5 s with fsync on; dropping
one forces a checkpoint, so they stay until the server goes).
"""

from __future__ import annotations

import glob
import itertools
import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from ci import skip_or_fail

__all__ = [
    "SCRIPT",
    "empty_database",
    "free_port",
    "new_database",
    "postgres_installed",
    "postgres_session",
    "start_postgres",
]

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "postgres"
_START_ATTEMPTS = 3
_SCRIPT_TIMEOUT = 120  # seconds; a start takes about 2 s (initdb included)

# The server shared by the conftests of this process: (url, stop) and how many fixtures use it.
_shared: tuple[str, Callable[[], None]] | None = None
_users = 0
_names = itertools.count()
# Server URL -> URL of this process's scratch database on it.
_scratch: dict[str, str] = {}


def postgres_installed() -> bool:
    """Whether the PostgreSQL server binaries scripts/postgres looks for are there."""
    bindir = os.environ.get("PG_BINDIR")
    if bindir:
        return os.access(os.path.join(bindir, "initdb"), os.X_OK)
    return any(os.access(path, os.X_OK) for path in glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the kernel's pick: never 5432)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=_SCRIPT_TIMEOUT,
        check=False,
    )


def _watchdog(directory: Path) -> subprocess.Popen[bytes]:
    """A process that destroys the server once this process is gone (killed, crashed)."""
    code = 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec bash "$2" destroy "$3"'
    return subprocess.Popen(
        ["bash", "-c", code, "pg-watchdog", str(os.getpid()), str(SCRIPT), str(directory)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def start_postgres(tmp_dir: Path) -> tuple[str, Callable[[], None]]:
    """Start a server with its data in ``tmp_dir``; return its URL and a function to destroy it.

    The URL is ``postgresql://tradingfloor@127.0.0.1:PORT/tradingfloor`` (trust auth, superuser).
    A free port is picked, and picked again if another process took it in the meantime.
    Raises RuntimeError when the server does not start.
    """
    if not postgres_installed():
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    errors: list[str] = []
    for _attempt in range(_START_ATTEMPTS):
        port = str(free_port())
        started = _script("start", str(tmp_dir), port)
        if started.returncode == 0:
            break
        errors.append(f"port {port}: {started.stdout}{started.stderr}")
        _script("destroy", str(tmp_dir))
    else:
        raise RuntimeError("scripts/postgres start failed:\n" + "\n".join(errors))
    url = _script("url", str(tmp_dir), port).stdout.strip()
    watchdog = _watchdog(tmp_dir)

    def stop() -> None:
        watchdog.kill()
        watchdog.wait()
        destroyed = _script("destroy", str(tmp_dir))
        if destroyed.returncode != 0:
            raise RuntimeError(f"scripts/postgres destroy failed: {destroyed.stderr}")

    return url, stop


def postgres_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The body of a session fixture: yields this process's server URL (started on first use).

    Skips the test without the PostgreSQL binaries, or fails it in CI (tests/ci.py).
    """
    global _shared, _users
    if _shared is None:
        if not postgres_installed():
            skip_or_fail("PostgreSQL is not installed (apt-get install postgresql)")
        _shared = start_postgres(tmp_path_factory.mktemp("postgres"))
    url, stop = _shared
    _users += 1
    try:
        yield url
    finally:
        _users -= 1
        if _users == 0:
            _shared = None
            _scratch.pop(url, None)
            stop()


async def new_database(server_url: str) -> str:
    """Create an empty database on the server of ``server_url``; return its URL."""
    name = f"test_{os.getpid()}_{next(_names)}_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await connection.close()
    base, _, _database = server_url.rpartition("/")
    return f"{base}/{name}"


async def empty_database(server_url: str) -> str:
    """The URL of this process's scratch database on the server, emptied for the caller.

    Ends the other sessions on it (a leaked engine must not block the reset), then drops the
    ``public`` schema with everything in it and creates it again.
    """
    url = _scratch.get(server_url)
    if url is None:
        url = _scratch[server_url] = await new_database(server_url)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await connection.execute("SET lock_timeout = '10s'")
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()
    return url
