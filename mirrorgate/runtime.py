"""Running the gateway: files -> snapshot -> translate -> routing table -> sockets, until a signal.

Owns: wiring the control plane (``providers.files``, ``translate``) to the data plane, binding one
listening socket per IR ``Server`` (address, port), hot reload (``reload.py``), graceful
shutdown, and the choice between one process and a supervisor of workers (``supervisor.py``).

Rules:
1. Library code: it raises (``StartupError``) and never exits; ``cli.py`` turns that into an exit
   code (STYLE §3.7).
2. Shutdown, in order (STYLE §3.8): stop reloading; stop accepting; close idle client connections
   (busy ones close after their current exchange); cancel the mirrors (they never hold a primary
   up); let in-flight exchanges finish within ``grace``; cancel the rest; close the upstream pool.
3. ``port_overrides`` maps an IR server port to the port actually bound (``0`` = ephemeral); the
   matcher still sees the IR key, so routing is unchanged. Tests use it; so can users running as
   non-root on a laptop.
4. The mirror dispatcher and the admin server share one Prometheus registry per process.
5. Applying a new table (``Gateway.apply``): open sockets for new (address, port) servers first
   (any failure closes those and changes nothing), then swap the compiled matcher as one
   reference, then close the sockets of servers that vanished: their busy connections finish the
   exchange they started (on the old matcher) and close, idle ones close at once.
6. Reload triggers: a change to a ``-f`` path (unless ``watch`` is off) and SIGHUP. With
   ``workers > 1`` the supervisor reloads and sends each worker the new table (``supervisor.py``).
"""

import asyncio
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from random import Random
from typing import Any, NamedTuple

import msgspec
import uvloop
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mirrorgate.admin.server import AdminApp, start_admin
from mirrorgate.dataplane.limits import Limits
from mirrorgate.dataplane.matcher import Matcher, ServerKey, compile
from mirrorgate.dataplane.protocol import HttpProtocol
from mirrorgate.dataplane.state import GatewayState
from mirrorgate.errors import MirrorgateError
from mirrorgate.ir.table import RoutingTable, Server
from mirrorgate.mirror.config import MirrorConfig
from mirrorgate.mirror.dispatcher import Dispatcher
from mirrorgate.providers.files import load_paths
from mirrorgate.reload import Reloader, ReloadFailed, watch_paths
from mirrorgate.status_view import list_view
from mirrorgate.translate import TranslateOptions, translate
from mirrorgate.upstream.pool import Pool, PoolConfig

log = logging.getLogger("mirrorgate")


class StartupError(MirrorgateError):
    """The gateway cannot start: invalid configuration or a socket that cannot be bound."""


class ConfigInvalid(StartupError):
    """The configuration has errors; ``lines`` are ``mirrorgate validate``'s lines."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


class RunConfig(msgspec.Struct, frozen=True, kw_only=True):
    paths: tuple[str, ...]
    bind: str = "0.0.0.0"
    port_overrides: dict[int, int] = msgspec.field(default_factory=dict)
    grace: float = 10.0  # seconds in-flight exchanges get on shutdown
    access_log_json: bool = False
    access_log: str = "-"  # where access-log lines go: "-" stdout, a file path, or "off"
    log_format: str = "text"  # "text" or "json" (one object per line) for the process logs
    admin: tuple[str, int] | None = ("127.0.0.1", 9901)  # None: no admin server
    mirror: MirrorConfig = msgspec.field(default_factory=MirrorConfig)
    watch: bool = True  # reload when a -f path changes on disk
    workers: int = 1  # > 1: a supervisor and that many worker processes (supervisor.py)
    reuse_port: bool = False  # SO_REUSEPORT on listeners (set for workers)
    limits: Limits = msgspec.field(default_factory=Limits)  # per worker (``--limit NAME=VALUE``)


class Loaded(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded and translated configuration: what is served and what ``/status`` shows."""

    table: RoutingTable
    status: dict[str, Any]  # the kubectl-shaped List of resources with their status


def load_config(paths: Sequence[str], bind: str, stdin_text: str | None = None, *, notes: bool = True) -> Loaded:
    """Load and translate; any load error is a ``ConfigInvalid`` listing every problem."""
    result = load_paths(paths, stdin_text)
    for note in result.notes:
        log.log(logging.INFO if notes else logging.DEBUG, "%s", note)
    if result.errors:
        raise ConfigInvalid([str(e) for e in result.errors])
    translated = translate(result.snapshot, TranslateOptions(bind=bind))
    return Loaded(table=translated.table, status=list_view(result.snapshot, translated.statuses))


def load_table(paths: Sequence[str], bind: str) -> RoutingTable:
    """The routing table of ``paths`` (see ``load_config``)."""
    return load_config(paths, bind).table


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
        mirror_config: MirrorConfig | None = None,
        registry: CollectorRegistry | None = None,
        reuse_port: bool = False,
        limits: Limits | None = None,
    ) -> None:
        self.table = table
        limits = limits or Limits()
        if pool_config is None:
            pool_config = PoolConfig(
                max_response_head_bytes=limits.max_response_head_bytes,
                max_response_headers=limits.max_response_headers,
            )
        self.port_overrides = dict(port_overrides or {})
        self.reuse_port = reuse_port
        self.registry = registry if registry is not None else CollectorRegistry()
        self.mirror = Dispatcher(
            mirror_config,
            registry=self.registry,
            rng=rng,
            head_limits=(limits.max_response_head_bytes, limits.max_response_headers),
        )
        self.state = GatewayState(
            compile(table),
            Pool(pool_config),
            rng=rng,
            access_log_json=access_log_json,
            mirror=self.mirror,
            limits=limits,
        )
        self.registry.register(_DataPlaneCollector(self.state))
        self.ready = False  # every listener bound
        self.listeners: dict[ServerKey, asyncio.Server] = {}  # IR server key -> its listening socket(s)
        self.bound: dict[ServerKey, int] = {}  # IR server key -> bound port

    @property
    def servers(self) -> list[asyncio.Server]:
        return list(self.listeners.values())

    async def start(self) -> None:
        """Bind every server of the table; on failure nothing stays open."""
        try:
            await self.apply(self.table, self.state.matcher)
        except StartupError:
            await self.shutdown(0)
            raise
        self.ready = True

    async def apply(self, table: RoutingTable, matcher: Matcher | None = None) -> None:
        """Serve ``table`` (rule 5); raises ``StartupError`` (and changes nothing) when a new
        server cannot be bound. ``matcher`` is ``compile(table)`` when the caller has it."""
        wanted = {(s.address, s.port): s for s in table.servers}
        opened: dict[ServerKey, asyncio.Server] = {}
        try:
            for key, server in wanted.items():
                if key not in self.listeners:
                    opened[key] = await self._bind(server)
        except BaseException as exc:  # OSError, or cancelled mid-way: nothing half-applied stays open
            for srv in opened.values():
                srv.close()
            if isinstance(exc, OSError):
                raise StartupError(f"cannot listen: {exc}") from exc
            raise
        self.state.matcher = matcher if matcher is not None else compile(table)
        self.table = table
        for key, srv in opened.items():
            self.listeners[key] = srv
            self.bound[key] = int(srv.sockets[0].getsockname()[1])
            log.info("listening on %s:%d (%d listener(s))", key[0], self.bound[key], len(wanted[key].listeners))
        for key in [k for k in self.listeners if k not in wanted]:
            self._retire(key)

    async def _bind(self, server: Server) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        port = self.port_overrides.get(server.port, server.port)
        return await loop.create_server(
            partial(HttpProtocol, self.state, (server.address, server.port)),
            server.address,
            port,
            backlog=1024,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
        )

    def _retire(self, key: ServerKey) -> None:
        """Stop accepting on a vanished server; its connections close after their exchange."""
        self.listeners.pop(key).close()
        port = self.bound.pop(key)
        busy = 0
        for conn in list(self.state.connections):
            if conn.server_key == key:
                busy += not conn.idle
                conn.shutdown()
        log.info("stopped listening on %s:%d (%d busy connection(s) finishing)", key[0], port, busy)

    def port(self, ir_port: int, address: str | None = None) -> int:
        """The bound port of the server with this IR port (tests)."""
        for (addr, p), bound in self.bound.items():
            if p == ir_port and (address is None or addr == address):
                return bound
        raise KeyError(ir_port)

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let busy connections finish their exchange (closing after it), wait up
        to ``grace`` seconds, then abort what is left and close the pool."""
        self.ready = False
        servers = list(self.listeners.values())
        self.listeners.clear()
        for srv in servers:
            srv.close()
        for conn in list(self.state.connections):
            conn.shutdown()
        await self.mirror.shutdown()
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
        for srv in servers:
            await srv.wait_closed()


class _DataPlaneCollector(Collector):
    """``mirrorgate_connections`` (open client connections), ``mirrorgate_connections_rejected``
    (closed at accept because ``limits.max_connections`` were open) and ``mirrorgate_tasks``."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        yield GaugeMetricFamily("mirrorgate_connections", "Open client connections", value=len(state.connections))
        yield CounterMetricFamily(
            "mirrorgate_connections_rejected",
            "Client connections closed at accept because the worker's max-connections were open",
            value=state.rejected_connections,
        )
        yield GaugeMetricFamily("mirrorgate_tasks", "Tasks the data plane is running", value=len(state.tasks))


class Built(NamedTuple):
    """A candidate configuration, built off the loop: the loaded config and its compiled matcher."""

    loaded: Loaded
    matcher: Matcher


def read_stdin_once(paths: Sequence[str]) -> str | None:
    """Standard input is read once, at start, and reused by every reload."""
    return sys.stdin.read() if "-" in paths else None


def gateway_reloader(gateway: Gateway, config: RunConfig, loaded: Loaded, stdin_text: str | None) -> Reloader[Built]:
    """The reloader of one gateway process: build in a thread, ``Gateway.apply`` on the loop."""

    def build() -> Built:
        try:
            new = load_config(config.paths, config.bind, stdin_text, notes=False)
        except ConfigInvalid as exc:
            raise ReloadFailed(exc.lines) from exc
        return Built(new, compile(new.table))

    async def apply(built: Built) -> None:
        try:
            await gateway.apply(built.loaded.table, built.matcher)
        except StartupError as exc:
            raise ReloadFailed([str(exc)]) from exc

    return Reloader(Built(loaded, gateway.state.matcher), load=build, table_of=lambda b: b.loaded.table, apply=apply)


async def serve(
    config: RunConfig,
    stop: asyncio.Event,
    *,
    registry: CollectorRegistry | None = None,
) -> None:
    """Serve ``config`` until ``stop`` is set, reloading on file changes and SIGHUP, then shut
    down gracefully. ``registry`` (default: a new one) receives the process's metrics."""
    stdin_text = read_stdin_once(config.paths)
    loaded = load_config(config.paths, config.bind, stdin_text)
    gateway = Gateway(
        loaded.table,
        port_overrides=config.port_overrides,
        access_log_json=config.access_log_json,
        mirror_config=config.mirror,
        registry=registry,
        reuse_port=config.reuse_port,
        limits=config.limits,
    )
    reloader = gateway_reloader(gateway, config, loaded, stdin_text)
    admin = await _start_admin(config, gateway, reloader) if config.admin is not None else None
    tasks: list[asyncio.Task[None]] = []
    try:
        with on_signal(signal.SIGHUP, reloader.request):
            await gateway.start()
            tasks.append(asyncio.create_task(reloader.run()))
            if config.watch:
                tasks.append(asyncio.create_task(watch_paths(config.paths, reloader.request, stop)))
            await stop.wait()
    finally:
        await cancel_all(tasks)
        log.info("shutting down (grace %.1fs)", config.grace)
        await gateway.shutdown(config.grace)
        if admin is not None:
            admin.close()
            await admin.wait_closed()


async def cancel_all(tasks: Sequence["asyncio.Task[None]"]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


@contextmanager
def on_signal(signum: signal.Signals, handler: Callable[[], None]) -> Iterator[None]:
    """Install a loop signal handler for the duration (only possible on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signum, handler)
    try:
        yield
    finally:
        loop.remove_signal_handler(signum)


def status_of(reloader: Reloader[Any], status: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """The ``/status`` document: the served resources plus ``lastReloadError`` (null when the last
    reload succeeded)."""
    return lambda: {**status(), "lastReloadError": reloader.last_error}


async def _start_admin(config: RunConfig, gateway: Gateway, reloader: Reloader[Built]) -> asyncio.Server:
    assert config.admin is not None
    app = AdminApp(
        registry=gateway.registry,
        table=lambda: gateway.table,
        status=status_of(reloader, lambda: reloader.current.loaded.status),
        ready=lambda: gateway.ready,
    )
    return await listen_admin(app, config.admin)


async def listen_admin(app: AdminApp, address: tuple[str, int]) -> asyncio.Server:
    try:
        return await start_admin(app, *address)
    except OSError as exc:
        raise StartupError(f"cannot listen for the admin server on {address[0]}:{address[1]}: {exc}") from exc


async def _serve_until_signal(config: RunConfig) -> None:
    stop = asyncio.Event()
    with on_signal(signal.SIGINT, stop.set), on_signal(signal.SIGTERM, stop.set):
        await serve(config, stop)


def run(config: RunConfig) -> None:
    """Run under uvloop until SIGINT/SIGTERM; raises ``StartupError`` when it cannot start.
    With ``workers > 1`` this process supervises that many worker processes."""
    if config.workers > 1:
        from mirrorgate.supervisor import supervise

        supervise(config)
        return
    uvloop.run(_serve_until_signal(config))


def setup_logging(access_log: str, worker: int | None = None, log_format: str = "text") -> None:
    """Logs to stderr (text, or one JSON object per line with ``log_format="json"``); access-log
    lines to stdout, a file, or nowhere (``off``). In a worker process every line says which worker
    wrote it (``[worker N]`` / a ``"worker"`` field; access lines end ``worker=N``, JSON ones get a
    ``"worker"`` field)."""
    tag = "" if worker is None else f"[worker {worker}] "
    handler_err = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler_err.setFormatter(JsonFormatter(worker))
    else:
        handler_err.setFormatter(logging.Formatter(f"%(asctime)s {tag}%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler_err])
    access = logging.getLogger("mirrorgate.access")
    access.propagate = False
    if access_log == "off":
        access.disabled = True
        return
    handler = logging.StreamHandler(sys.stdout) if access_log == "-" else logging.FileHandler(access_log, "a", "utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    if worker is not None:
        handler.addFilter(_WorkerTag(worker))
    access.addHandler(handler)
    access.setLevel(logging.INFO)


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time (UTC, ISO 8601), level, logger, message (and worker)."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.worker is not None:
            out["worker"] = self.worker
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


class _WorkerTag(logging.Filter):
    """Adds the worker number to each access-log line (text: `` worker=N``; JSON: a field)."""

    def __init__(self, worker: int) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        line = record.getMessage()
        if line.startswith("{"):
            record.msg, record.args = '{"worker": %d, %s', (self.worker, line[1:])
        else:
            record.msg, record.args = "%s worker=%d", (line, self.worker)
        return True
