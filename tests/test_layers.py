"""The layers hold (import-linter, as scripts/test runs it) and docs/layers.md lists every
contract of pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def test_every_contract_is_documented() -> None:
    doc = (ROOT / "docs" / "layers.md").read_text()
    rows = [line.split("|")[1].strip() for line in doc.splitlines() if line.startswith("| ")]
    for contract in _contracts():
        name = str(contract["name"])
        assert any(name.startswith(row) for row in rows[1:] if row), name


def test_the_layers_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is a dev dependency"
    result = subprocess.run(
        [lint], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{len(_contracts())} kept, 0 broken" in result.stdout
