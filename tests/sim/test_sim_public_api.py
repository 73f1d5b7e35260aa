"""The sim package exports what docs/simulation.md lists, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import tradingfloor.sim

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulation.md"


def documented_names() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Public API", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Za-z_]+)`", first_cell))
    return names


def test_public_api_matches_the_docs() -> None:
    assert set(tradingfloor.sim.__all__) == documented_names()
    for name in tradingfloor.sim.__all__:
        assert getattr(tradingfloor.sim, name) is not None
