"""The FIX, market-data and broker benchmarks run end to end at toy sizes (figures are not
checked)."""

from __future__ import annotations

from tradingfloor.bench import broker_bench, fix_bench, marketdata_bench


def test_fix_benchmark_acknowledges_every_order() -> None:
    result = fix_bench.run(rate=200, seconds=1.5)
    assert result.sent == 300
    assert result.acked == result.sent and result.rejected == 0
    assert result.reports == 2 * result.sent  # new for each order, a fill for each pair side
    assert len(result.latencies_ns) > 0


def test_marketdata_benchmark_in_process_and_fan_out() -> None:
    r = marketdata_bench.inprocess(messages=2_000, subscribers=2)
    assert r["commands"] == 1_999 and r["udp_messages"] and r["ws_published"]
    f = marketdata_bench.fanout(clients=5, rate=20, seconds=1.0)
    assert f["received"] == f["expected"] == 5 * 10
    assert f["server"] == {"published": 10, "enqueued": 50, "drops": 0}


def test_broker_benchmark_places_every_order() -> None:
    result = broker_bench.run(rate=100, seconds=1.5)
    assert result.sent == 150
    assert result.ok == result.sent and result.errors == 0 and result.statuses == {"200": 150}
    assert len(result.latencies_ns) > 0
