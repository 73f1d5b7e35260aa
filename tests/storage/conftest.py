"""Fixtures of the storage tests: a real PostgreSQL server (tests/pg.py) and per-test databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pg import empty_database, postgres_session


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of this test process's PostgreSQL server (skipped without one, failed in CI)."""
    yield from postgres_session(tmp_path_factory)


@pytest.fixture
async def postgres_db_url(postgres_url: str) -> str:
    """An empty database on that server (this process's scratch database, emptied)."""
    return await empty_database(postgres_url)
