"""The demo memory soak (``tradingfloor bench soak``): its growth figures from samples, and one
short run end to end against a real demo child (figures are printed, never checked)."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from tradingfloor.bench import serve_child, soak
from tradingfloor.bench.soak import SoakResult, SoakSample
from tradingfloor.cli import app

MB = 1_000_000


def _result(*samples: tuple[float, int, int], warmup: float = 1.0) -> SoakResult:
    r = SoakResult(minutes=4, speed=10, warmup_minutes=warmup)
    r.samples = [SoakSample(sec, cmds, rss) for sec, cmds, rss in samples]
    return r


def test_growth_is_measured_from_the_end_of_the_warm_up() -> None:
    r = _result(
        (0, 0, 100 * MB), (60, 1_000, 150 * MB), (120, 2_000, 151 * MB), (180, 3_000, 152 * MB)
    )
    assert r.after_warmup() == (r.samples[1], r.samples[3])
    assert r.bytes_per_command() == 1_000.0  # 2 MB over 2,000 commands, not the warm-up's 50 MB
    assert r.fitted_bytes_per_command() == 1_000.0
    assert r.rss_change_percent() == 100 * 2 / 150
    text = "\n".join(soak.report_lines(r))
    assert "RSS change: +1.3%" in text and "bytes per command (end points): 1,000.0" in text


def test_no_growth_figures_without_samples_after_the_warm_up() -> None:
    r = _result((0, 0, MB), (30, 10, MB), warmup=1.0)
    assert r.after_warmup() is None and r.bytes_per_command() is None
    assert "no samples after the warm-up" in "\n".join(soak.report_lines(r))


def test_rss_of_this_process_is_read_from_proc() -> None:
    assert serve_child.rss_bytes(os.getpid()) > MB
    assert serve_child.rss_bytes(2**22 + 12345) == 0  # no such process


def test_the_soak_runs_the_demo_and_counts_its_journaled_commands() -> None:
    result = CliRunner().invoke(
        app, ["bench", "soak", "--minutes", "0.3", "--interval", "5", "--warmup", "0.1"]
    )
    assert result.exit_code == 0, result.output
    assert "Demo memory soak: --speed 10 for 0.3 min" in result.output
    assert "bytes per command (end points):" in result.output
    rows = [line.split() for line in result.output.splitlines()]
    counts = [  # the table's rows: minute, commands, RSS MB
        int(row[1].replace(",", ""))
        for row in rows
        if len(row) >= 3 and row[0].replace(".", "").isdigit() and row[1][0].isdigit()
    ]
    assert counts[-1] > counts[0] > 0  # the participants traded and the journal grew
