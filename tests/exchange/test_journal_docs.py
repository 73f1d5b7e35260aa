"""The public names of the journal, snapshot, sequencer and recovery modules are documented."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "journal.md"
MODULES = [
    "journal",
    "snapshot",
    "snapshot_writer",
    "sequencer",
    "recovery",
    "retention",
    "state_machine",
    "checkpoint",
]


@pytest.mark.parametrize("name", MODULES)
def test_public_names_match_the_docs(name: str) -> None:
    module = importlib.import_module(f"tradingfloor.exchange.{name}")
    section = DOC.read_text().split("## Public API", 1)[1]
    entry = re.search(rf"- `tradingfloor\.exchange\.{name}`:(.*?)(?=\n- |\Z)", section, re.S)
    assert entry is not None, f"{name} is missing from docs/journal.md"
    documented = set(re.findall(r"`(\w+)`", entry.group(1)))
    exported = set(module.__all__)
    assert all(hasattr(module, n) for n in exported)
    assert exported <= documented, exported - documented
    undocumented_exports = {n for n in documented - exported if hasattr(module, n)}
    assert not undocumented_exports, f"documented but not in __all__: {undocumented_exports}"
