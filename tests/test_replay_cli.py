"""The ``tradingfloor`` CLI: offline engine replay, the book view, input errors, version."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from tradingfloor import __version__
from tradingfloor.cli import EXIT_INPUT_ERROR, app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "commands.jsonl"

runner = CliRunner()

ACME = '{"type":"add_instrument","symbol":"ACME","tick_size":"0.01"}\n'


def run(tmp_path: Path, commands: Path, name: str = "events.jsonl") -> bytes:
    out = tmp_path / name
    result = runner.invoke(app, ["engine", "run", "--input", str(commands), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "state hash" in result.stderr
    return out.read_bytes()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "commands.jsonl"
    path.write_text(text)
    return path


def test_example_replay_is_byte_identical(tmp_path: Path) -> None:
    first = run(tmp_path, EXAMPLE, "a.jsonl")
    second = run(tmp_path, EXAMPLE, "b.jsonl")
    assert first == second
    events = [msgspec.json.decode(line) for line in first.splitlines()]
    kinds = {event["type"] for event in events}
    assert {"instrument_added", "accepted", "trade", "rejected", "cancelled", "replaced"} <= kinds
    assert {"auction", "triggered", "phase"} <= kinds
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    codes = {event["code"] for event in events if event["type"] == "rejected"}
    assert 3004 in codes, "the example shows a duplicate client order id"
    prices = [event["price"] for event in events if event["type"] == "trade"]
    assert all(isinstance(price, str) and "." in price for price in prices)


def test_output_to_stdout_matches_file(tmp_path: Path) -> None:
    from_file = run(tmp_path, EXAMPLE)
    result = runner.invoke(app, ["engine", "run", "--input", str(EXAMPLE), "--output", "-"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == from_file
    assert "state hash" in result.stderr


def test_console_script_gives_the_same_bytes(tmp_path: Path) -> None:
    exe = shutil.which("tradingfloor", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("tradingfloor console script not installed")
    out = tmp_path / "cli.jsonl"
    subprocess.run(
        [exe, "engine", "run", "--input", str(EXAMPLE), "--output", str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == run(tmp_path, EXAMPLE)


def test_bad_line_stops_with_exit_code_2(tmp_path: Path) -> None:
    bad = ACME + (
        '{"type":"new_order","symbol":"ACME","member":"m","cl_ord_id":"1",'
        '"side":"buy","qty":10,"price":10.05}\n'
    )
    commands = write(tmp_path, bad)
    out = tmp_path / "events.jsonl"
    result = runner.invoke(app, ["engine", "run", "--input", str(commands), "--output", str(out)])
    assert result.exit_code == EXIT_INPUT_ERROR
    assert f"{commands}:2:" in result.stderr
    assert "not floats" in result.stderr
    assert not out.exists(), "no partial output file on invalid input"
    assert list(tmp_path.iterdir()) == [commands], "the temporary file is removed"


def test_skip_invalid_writes_input_error_records(tmp_path: Path) -> None:
    commands = write(tmp_path, ACME + '{"type":"nope"}\n\n{"type":"tick","ts":5}\n')
    out = tmp_path / "events.jsonl"
    result = runner.invoke(
        app,
        ["engine", "run", "-i", str(commands), "-o", str(out), "--skip-invalid"],
    )
    assert result.exit_code == 0, result.output
    assert f"{commands}:2:" in result.stderr
    records = [msgspec.json.decode(line) for line in out.read_bytes().splitlines()]
    errors = [r for r in records if r["type"] == "input_error"]
    assert len(errors) == 1
    assert errors[0]["line"] == 2 and "unknown command type 'nope'" in errors[0]["error"]


def test_missing_input_file(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["engine", "run", "--input", str(tmp_path / "no.jsonl"), "--output", "-"]
    )
    assert result.exit_code == EXIT_INPUT_ERROR
    assert "cannot read" in result.stderr


def test_input_from_stdin() -> None:
    result = runner.invoke(app, ["engine", "run", "-i", "-", "-o", "-"], input=ACME)
    assert result.exit_code == 0, result.output
    first = msgspec.json.decode(result.stdout_bytes.splitlines()[0])
    assert first["type"] == "instrument_added" and first["tick_size"] == "0.01"


def test_book_prints_levels(tmp_path: Path) -> None:
    orders = [("b1", "buy", 100, "9.98"), ("b2", "buy", 200, "9.99")]
    orders += [("b3", "buy", 300, "9.99"), ("s1", "sell", 400, "10.01")]
    lines = [ACME.strip()] + [
        msgspec.json.encode(
            {
                "type": "new_order",
                "symbol": "ACME",
                "member": "m",
                "cl_ord_id": cl_ord_id,
                "side": side,
                "qty": qty,
                "price": price,
            }
        ).decode()
        for cl_ord_id, side, qty, price in orders
    ]
    commands = write(tmp_path, "\n".join(lines) + "\n")
    result = runner.invoke(app, ["engine", "book", "--input", str(commands), "--symbol", "ACME"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "9.99" in out and "500" in out and "9.98" in out and "10.01" in out and "400" in out
    assert "phase: continuous" in out
    assert "last: -" in out


def test_book_of_example(tmp_path: Path) -> None:
    args = ["engine", "book", "-i", str(EXAMPLE), "-s", "ACME", "--depth", "5"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ACME order book" in result.stdout and "phase:" in result.stdout


def test_book_of_unlisted_symbol(tmp_path: Path) -> None:
    commands = write(tmp_path, ACME)
    result = runner.invoke(app, ["engine", "book", "-i", str(commands), "-s", "ZZZ"])
    assert result.exit_code == EXIT_INPUT_ERROR
    assert "'ZZZ' is not listed" in result.stderr


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tradingfloor {__version__}"
