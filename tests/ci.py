"""One answer, for every test, to "are we running in CI?", and what a missing dependency does there.

Outside CI a test whose real peer is missing (PostgreSQL, Chromium, multicast on the loopback
interface) is skipped with the reason; in CI it fails, so that a CI run cannot pass by skipping.
"In CI" means ``$CI`` is set to ``true``, ``1`` or ``yes`` in any case (CI services set one of
these; ``.ci/run`` sets ``true``). tests/pg.py, tests/web/conftest.py and
tests/marketdata/test_udpfeed.py all decide through :func:`skip_or_fail`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NoReturn

import pytest

__all__ = ["CI_VALUES", "in_ci", "skip_or_fail"]

CI_VALUES = frozenset({"true", "1", "yes"})
"""Values of ``$CI`` (compared in lower case, spaces stripped) that mean "in CI"."""


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``$CI`` (of ``environ``, by default the process's) says this is a CI run."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").strip().lower() in CI_VALUES


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the running test with ``reason``, or fail it when in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI={os.environ.get('CI')!r}: CI must provide it)", pytrace=False)
    pytest.skip(reason)
