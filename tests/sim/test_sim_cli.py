"""`tradingfloor simulate`: runs headless, prints a summary, writes it as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tradingfloor.cli import app

runner = CliRunner()


def test_simulate_writes_a_json_summary(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    args = ["simulate", "--minutes", "1", "--seed", "3", "--output", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "simulation summary" in result.stdout
    summary = json.loads(out.read_text())
    assert summary["seed"] == 3 and summary["minutes"] == "1.00"
    assert summary["trades"] > 0 and summary["orders_submitted"] > 0
    assert [s["symbol"] for s in summary["symbols"]] == ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA"]
    again = runner.invoke(app, [*args[:-1], str(tmp_path / "again.json")])
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "again.json").read_text())["event_hash"] == summary["event_hash"]


def test_simulate_json_to_stdout_and_a_venue_config(tmp_path: Path) -> None:
    config = tmp_path / "venue.toml"
    config.write_text(
        '[[instruments]]\nsymbol = "ACME"\ntick_size = "0.05"\nreference_price = 2000\n'
        "band_bps = 500\n"
    )
    result = runner.invoke(
        app, ["simulate", "--minutes", "0.5", "--config", str(config), "--output", "-"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [s["symbol"] for s in summary["symbols"]] == ["ACME"]
    assert "simulation summary" in result.stderr


def test_simulate_refuses_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "venue.toml"
    config.write_text("[[instruments]]\nsymbol = 3\n")
    result = runner.invoke(app, ["simulate", "--config", str(config)])
    assert result.exit_code == 2
    assert "bad venue config" in result.stderr
