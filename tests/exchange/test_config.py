"""Venue configuration: the packaged default, password forms, and bad files named by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradingfloor.exchange.config import ConfigError, hash_password, load_config, parse_config


def test_the_packaged_default_loads() -> None:
    config = load_config()
    assert config.name == "TFEX"
    assert [i.symbol for i in config.instruments] == ["AAPL", "MSFT", "GOOG", "AMZN", "TSLA"]
    member = config.member("MEMBER1")
    assert member is not None and member.check_password("member1-secret")
    assert not member.check_password("wrong")
    assert config.member("NOBODY") is None
    assert str(config.tick_sizes()["AAPL"]) == "0.01"


def test_a_hashed_password_is_checked_without_the_plain_text(tmp_path: Path) -> None:
    digest = hash_password("s3cret", salt="HF1")
    path = tmp_path / "venue.toml"
    path.write_text(f'[[members]]\ncomp_id = "HF1"\npassword_pbkdf2 = "{digest}"\n')
    member = load_config(path).member("HF1")
    assert member is not None and member.password == ""
    assert member.check_password("s3cret") and not member.check_password("s3cret ")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"extra": 1}, "unknown top-level keys"),
        ({"members": [{"comp_id": "A"}]}, r"members\[0\]: set password"),
        ({"members": [{"comp_id": "A", "password": "p", "oops": 1}]}, "unknown keys"),
        (
            {"members": [{"comp_id": "A", "password": "p", "throttle_per_second": 0}]},
            "throttle_per_second",
        ),
        ({"members": [{"comp_id": "TFEX", "password": "p"}]}, "venue's own name"),
        (
            {"members": [{"comp_id": "A", "password": "p"}, {"comp_id": "A", "password": "q"}]},
            "listed twice",
        ),
        ({"instruments": [{"symbol": "A", "tick_size": "0"}]}, "tick_size"),
        ({"instruments": [{"symbol": "A", "tick_size": "x"}]}, "tick_size"),
        ({"instruments": [{"symbol": "A", "lot_size": 0}]}, "lot_size"),
        ({"instruments": [{"symbol": "A"}, {"symbol": "A"}]}, "listed twice"),
        ({"instruments": [{"symbol": "A", "nope": 1}]}, r"instruments\[0\]"),
        ({"venue": {"heartbeat_seconds": 0}}, "heartbeat_seconds"),
    ],
)
def test_bad_configs_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[members]\n")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_config(path)
