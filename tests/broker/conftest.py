"""Fixtures of the broker tests: the database backend (SQLite file, or a real PostgreSQL server
started by scripts/postgres through tests/pg.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pg import empty_database, postgres_session


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This test process's PostgreSQL server (skipped without one, failed in CI)."""
    yield from postgres_session(tmp_path_factory)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest) -> str | None:
    """None (the stack's SQLite file in its data directory) or an empty PostgreSQL database."""
    if request.param == "sqlite":
        return None
    server: str = request.getfixturevalue("postgres_url")
    return await empty_database(server)
