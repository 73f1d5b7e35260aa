"""tests/ci.py: every fixture that may skip decides "in CI" the same way, and fails there."""

from __future__ import annotations

from pathlib import Path

import pytest

import ci

TESTS = Path(__file__).parent


@pytest.mark.parametrize("value", ["true", "TRUE", "True", "1", "yes", "YES", " true "])
def test_ci_values_mean_ci(value: str) -> None:
    assert ci.in_ci({"CI": value})


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off", "ture"])
def test_other_values_do_not(value: str) -> None:
    assert not ci.in_ci({"CI": value})


def test_no_ci_variable_is_not_ci() -> None:
    assert not ci.in_ci({})


@pytest.mark.parametrize("value", ["true", "1", "yes", "Yes"])
def test_in_ci_a_missing_dependency_fails(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="no peer here"):
        ci.skip_or_fail("no peer here")


def test_outside_ci_a_missing_dependency_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no peer here"):
        ci.skip_or_fail("no peer here")


@pytest.mark.parametrize("path", ["pg.py", "web/conftest.py", "marketdata/test_udpfeed.py"])
def test_the_tests_that_may_skip_decide_through_ci(path: str) -> None:
    """The PostgreSQL server, the browser and the multicast feed: no other reading of $CI."""
    text = (TESTS / path).read_text()
    assert "skip_or_fail(" in text
    assert '"CI"' not in text
    assert "pytest.skip(" not in text
