"""Runs the demo: `serve`'s exchange, broker and market data on the default venue, the demo
users, and simulated participants trading in real time, until Ctrl-C.

Everything lives in one data directory (journal, FIX stores, the broker's SQLite database),
so a restart recovers the same market: the participants are attached before the journal is
replayed and rebuild their resting orders from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tradingfloor.demo.users import DEMO_PASSWORD, DEMO_USERS, ensure_demo_users
from tradingfloor.node.serve import (
    ServeOptions,
    VenueServer,
    run_loop,
    serve_until_stopped,
)
from tradingfloor.sim.live import LiveSimulation
from tradingfloor.sim.population import build_participants

__all__ = ["DEMO_API_RATE_LIMIT", "DemoOptions", "demo_serve_options", "run_demo"]

#: Requests a minute per API key and per logged-in user in the demo: six times `serve`'s default
#: (Alpaca's 200), so that one person can run the terminal in several tabs and an alpaca-py
#: script at once on the demo's users without meeting 429 (docs/demo.md says so).
DEMO_API_RATE_LIMIT: Final = 1_200


@dataclass(slots=True)
class DemoOptions:
    data_dir: Path = Path("var/demo")
    host: str = "127.0.0.1"
    port: int = 8080  # the web terminal and the broker's API
    http_port: int = 8000  # the exchange's market data (WebSocket and REST)
    fix_port: int = 9878
    participants: bool = True
    seed: int = 1
    speed: float = 1.0  # simulated seconds per wall second for the participants
    truncate_journal_at: str | None = None  # see ServeOptions
    new_epoch_by: str | None = None  # the operator starting a new venue epoch (`--new-epoch`)
    full_replay: bool = False  # see ServeOptions
    announce: Callable[[str], None] = field(default=print)


def demo_serve_options(opts: DemoOptions) -> ServeOptions:
    """What the demo asks of `serve`: its ports, the demo's admin password and rate limit, no
    UDP feed."""
    return ServeOptions(
        data_dir=opts.data_dir,
        host=opts.host,
        fix_port=opts.fix_port,
        http_port=opts.http_port,
        broker_port=opts.port,
        admin_password=DEMO_PASSWORD,
        api_rate_limit=DEMO_API_RATE_LIMIT,
        udp_feed=None,
        truncate_journal_at=opts.truncate_journal_at,
        new_epoch_by=opts.new_epoch_by,
        full_replay=opts.full_replay,
        announce=opts.announce,
    )


class _Demo:
    def __init__(self, options: DemoOptions) -> None:
        self.options = options
        self.simulation: LiveSimulation | None = None

    def serve_options(self) -> ServeOptions:
        return demo_serve_options(self.options)

    def on_open(self, server: VenueServer) -> None:
        if not self.options.participants:
            return
        assert server.venue is not None
        participants = build_participants(server.config.instruments, seed=self.options.seed)
        self.simulation = LiveSimulation(server.venue, participants, speed=self.options.speed)
        self.simulation.attach()

    async def started(self, server: VenueServer) -> None:
        assert server.broker is not None
        created = await ensure_demo_users(server.broker)
        if created:
            self.options.announce(
                f"Created the demo users: {', '.join(u.username for u in created)}"
            )
        if self.simulation is not None:
            self.simulation.start()
            self.options.announce(
                f"{len(self.simulation.participants)} simulated participants are trading"
            )
        url = f"http://{self.options.host}:{server.broker_port}/"
        self.options.announce(f"Log in at {url} as:")
        for user in DEMO_USERS:
            self.options.announce(
                f"  {user.username:<7} / {DEMO_PASSWORD}  ({user.role.value}: {user.about})"
            )

    async def stopping(self, _server: VenueServer) -> None:
        if self.simulation is not None:
            await self.simulation.stop()


def run_demo(options: DemoOptions) -> None:
    """Run the demo until SIGINT/SIGTERM."""
    demo = _Demo(options)
    server = VenueServer(demo.serve_options(), on_open=demo.on_open)
    run_loop(serve_until_stopped(server, started=demo.started, stopping=demo.stopping))
