"""`scripts/demo` installs only the runtime dependencies: an editable install of the checkout
without extras, into `.venv` (made if missing, reused if there, so a development venv keeps its
tools), then runs `tradingfloor demo` with the arguments. Run against a stand-in `.venv` whose
python and tradingfloor record how they are called."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo"

RECORDER = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$(dirname "$0")/../calls"
"""


def test_demo_script_installs_the_runtime_only_and_runs_the_demo(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts" / "demo")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "tradingfloor"):
        (bin_dir / name).write_text(RECORDER)
        (bin_dir / name).chmod(0o755)

    result = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "demo"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / ".venv" / "calls").read_text().splitlines()
    assert calls == ["python -m pip install -q -e .", "tradingfloor demo --port 0"]
