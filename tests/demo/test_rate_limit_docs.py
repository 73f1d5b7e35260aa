"""The API rate limits the docs state are the ones the code applies: `serve`'s default (Alpaca's
200 a minute, per API key or per logged-in user) and the demo's higher limit."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from tradingfloor import cli
from tradingfloor.broker.identity.apikeys import DEFAULT_KEY_RATE_LIMIT_PER_MINUTE
from tradingfloor.demo.runner import DEMO_API_RATE_LIMIT, DemoOptions, demo_serve_options
from tradingfloor.node.serve import ServeOptions

DOCS = Path(__file__).resolve().parents[2] / "docs"


def number(text: str) -> int:
    return int(text.replace(",", ""))


def doc(name: str) -> str:
    return " ".join((DOCS / name).read_text(encoding="utf-8").split())  # lines joined


def test_the_code_applies_one_default_and_one_demo_limit() -> None:
    assert DEFAULT_KEY_RATE_LIMIT_PER_MINUTE == 200
    assert ServeOptions().api_rate_limit == DEFAULT_KEY_RATE_LIMIT_PER_MINUTE
    serve_default = inspect.signature(cli.serve).parameters["api_rate_limit"].default
    assert serve_default == DEFAULT_KEY_RATE_LIMIT_PER_MINUTE
    assert demo_serve_options(DemoOptions()).api_rate_limit == DEMO_API_RATE_LIMIT


def test_the_docs_state_the_limits_of_the_code() -> None:
    api = doc("broker-api.md")
    found = re.search(r"\*\*Rate limits:\*\* ([\d,]+) requests a minute", api)
    assert found and number(found[1]) == DEFAULT_KEY_RATE_LIMIT_PER_MINUTE
    found = re.search(r"The demo \(docs/demo.md\) allows ([\d,]+) requests a minute", api)
    assert found and number(found[1]) == DEMO_API_RATE_LIMIT

    demo = doc("demo.md")
    found = re.search(r"The demo allows ([\d,]+) API requests a minute", demo)
    assert found and number(found[1]) == DEMO_API_RATE_LIMIT
    found = re.search(r"`serve`'s default of ([\d,]+)", demo)
    assert found and number(found[1]) == DEFAULT_KEY_RATE_LIMIT_PER_MINUTE

    web = doc("web-terminal.md")
    found = re.search(r"allows ([\d,]+) requests a minute per user by default \(([\d,]+) in", web)
    assert found and number(found[1]) == DEFAULT_KEY_RATE_LIMIT_PER_MINUTE
    assert number(found[2]) == DEMO_API_RATE_LIMIT


def test_no_other_rate_is_stated() -> None:
    allowed = {DEFAULT_KEY_RATE_LIMIT_PER_MINUTE, DEMO_API_RATE_LIMIT}
    readme = Path(__file__).resolve().parents[2] / "README.md"
    for path in [*DOCS.glob("*.md"), readme]:
        text = " ".join(path.read_text(encoding="utf-8").split())
        for found in re.finditer(r"([\d,]*\d) (?:API )?requests (?:a|per) minute", text):
            assert number(found[1]) in allowed, (path.name, found[0])
