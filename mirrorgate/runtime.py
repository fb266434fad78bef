"""Running the gateway: files -> snapshot -> translate -> routing table -> sockets, until a signal.

Owns: wiring the control plane (``providers.files``, ``translate``) to the data plane, binding one
listening socket per IR ``Server`` (address, port), and graceful shutdown.

Rules:
1. Library code: it raises (``StartupError``) and never exits; ``cli.py`` turns that into an exit
   code (STYLE §3.7).
2. Shutdown, in order (STYLE §3.8): stop accepting; close idle client connections (busy ones
   close after their current exchange); let in-flight exchanges finish within ``grace``; cancel
   the rest; close the upstream pool.
3. ``port_overrides`` maps an IR server port to the port actually bound (``0`` = ephemeral); the
   matcher still sees the IR key, so routing is unchanged. Tests use it; so can users running as
   non-root on a laptop.
"""

import asyncio
import logging
import signal
from collections.abc import Mapping, Sequence
from functools import partial
from random import Random

import msgspec
import uvloop

from mirrorgate.dataplane.matcher import ServerKey, compile
from mirrorgate.dataplane.protocol import HttpProtocol
from mirrorgate.dataplane.state import GatewayState
from mirrorgate.errors import MirrorgateError
from mirrorgate.ir.table import RoutingTable
from mirrorgate.providers.files import load_paths
from mirrorgate.translate import TranslateOptions, translate
from mirrorgate.upstream.pool import Pool, PoolConfig

log = logging.getLogger("mirrorgate")


class StartupError(MirrorgateError):
    """The gateway cannot start: invalid configuration or a socket that cannot be bound."""


class RunConfig(msgspec.Struct, frozen=True, kw_only=True):
    paths: tuple[str, ...]
    bind: str = "0.0.0.0"
    port_overrides: dict[int, int] = msgspec.field(default_factory=dict)
    grace: float = 10.0  # seconds in-flight exchanges get on shutdown
    access_log_json: bool = False


def load_table(paths: Sequence[str], bind: str) -> RoutingTable:
    """Load and translate; any load error is a ``StartupError`` listing every problem."""
    result = load_paths(paths)
    for note in result.notes:
        log.info("%s", note)
    if result.errors:
        raise StartupError("\n".join(str(e) for e in result.errors))
    return translate(result.snapshot, TranslateOptions(bind=bind)).table


class Gateway:
    """The data plane of one process: listening sockets plus the shared state."""

    def __init__(
        self,
        table: RoutingTable,
        *,
        port_overrides: Mapping[int, int] | None = None,
        pool_config: PoolConfig | None = None,
        rng: Random | None = None,
        access_log_json: bool = False,
    ) -> None:
        self.table = table
        self.port_overrides = dict(port_overrides or {})
        self.state = GatewayState(compile(table), Pool(pool_config), rng=rng, access_log_json=access_log_json)
        self.servers: list[asyncio.Server] = []
        self.bound: dict[ServerKey, int] = {}  # IR server key -> bound port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for server in self.table.servers:
                key = (server.address, server.port)
                port = self.port_overrides.get(server.port, server.port)
                srv = await loop.create_server(
                    partial(HttpProtocol, self.state, key), server.address, port, backlog=1024, reuse_address=True
                )
                self.servers.append(srv)
                self.bound[key] = int(srv.sockets[0].getsockname()[1])
                log.info("listening on %s:%d (%d listener(s))", server.address, self.bound[key], len(server.listeners))
        except OSError as exc:
            await self.shutdown(0)
            raise StartupError(f"cannot listen: {exc}") from exc

    def port(self, ir_port: int, address: str | None = None) -> int:
        """The bound port of the server with this IR port (tests)."""
        for (addr, p), bound in self.bound.items():
            if p == ir_port and (address is None or addr == address):
                return bound
        raise KeyError(ir_port)

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let busy connections finish their exchange (closing after it), wait up
        to ``grace`` seconds, then abort what is left and close the pool."""
        for srv in self.servers:
            srv.close()
        for conn in list(self.state.connections):
            conn.shutdown()
        try:
            async with asyncio.timeout(grace):
                await self.state.no_connections.wait()
        except TimeoutError:
            log.warning("grace period over: aborting %d connection(s)", len(self.state.connections))
        for conn in list(self.state.connections):
            conn.abort()
        tasks = set(self.state.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self.state.pool.close()
        for srv in self.servers:
            await srv.wait_closed()
        self.servers = []


async def serve(config: RunConfig, stop: asyncio.Event) -> None:
    """Serve ``config`` until ``stop`` is set, then shut down gracefully."""
    table = load_table(config.paths, config.bind)
    gateway = Gateway(table, port_overrides=config.port_overrides, access_log_json=config.access_log_json)
    await gateway.start()
    try:
        await stop.wait()
    finally:
        log.info("shutting down (grace %.1fs)", config.grace)
        await gateway.shutdown(config.grace)


async def _serve_until_signal(config: RunConfig) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(config, stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def run(config: RunConfig) -> None:
    """Run under uvloop until SIGINT/SIGTERM; raises ``StartupError`` when it cannot start."""
    uvloop.run(_serve_until_signal(config))
