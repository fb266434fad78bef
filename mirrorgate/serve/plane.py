"""``DataPlane``: one process's listening sockets and the state its connections share.

Owns: binding one listening socket per IR ``Server`` (address, port), swapping the compiled
matcher, and graceful shutdown. It serves whatever table it is given: where tables come from and
their checks are ``serve/apply.py``'s.

Rules:
1. Applying a new table (``DataPlane.apply``): open sockets for new (address, port) servers first
   (any failure closes those and changes nothing), then swap the compiled matcher as one
   reference, then close the sockets of servers that vanished: their busy connections finish the
   exchange they started (on the old matcher) and close, idle ones close at once.
2. Shutdown, in order: stop accepting; close idle client connections (busy ones close after their
   current exchange); cancel the mirrors (they never hold a primary up); let in-flight exchanges
   finish within ``grace``; cancel the rest; close the upstream pool.
3. A server's IR port is bound as ``port_overrides`` says (``0`` = ephemeral); the matcher still
   sees the IR key, so routing is unchanged.
4. The mirror dispatcher and the admin server share one Prometheus registry per process. An
   applied table frees the mismatch rings of mirrors it no longer compares (``mirror/board.py``).
5. A reload hands the buffered access-log lines to their writer; shutdown waits for them to be
   written, at most ``ACCESS_LOG_DRAIN`` seconds. The mirror access log, when the process
   installed one (``accesslog.install_mirror``), is handed to the dispatcher when the plane is
   made (and again by ``reconfigure`` with ``fresh``, the sink then re-read) and flushed and
   drained with the access log; ``reconfigure`` gives it the access-log format and Host rule.
6. A server whose listeners carry ``tls`` is bound with one ``TlsPort`` (``tls/server.py``): its
   front context never changes, so new certificates on an unchanged (address, port) are a
   ``TlsPort.reload`` (new connections get them, open ones keep theirs), never a re-bind. Every
   certificate of a table is parsed before anything changes: one that cannot be loaded fails the
   apply (``StartupError``) and changes nothing. A server that turns from HTTP to HTTPS (or back)
   on one (address, port) is the one re-bind: its old socket is retired first, then the new one
   bound. Handshakes are bounded by ``limits.handshake_timeout``.
   Certificates are parsed once per digest; the key material is never logged.
"""

import asyncio
import logging
from collections.abc import Iterator, Mapping
from functools import partial
from random import Random

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mirrorgate.dataplane import accesslog
from mirrorgate.dataplane.limits import Limits
from mirrorgate.dataplane.matcher import Matcher, ServerKey, compile
from mirrorgate.dataplane.protocol import HttpProtocol
from mirrorgate.dataplane.state import GatewayState
from mirrorgate.ir.table import Certificate, RoutingTable, Server
from mirrorgate.mirror.config import MirrorConfig
from mirrorgate.mirror.dispatcher import Dispatcher
from mirrorgate.mirror.mirrorlog import MirrorLog
from mirrorgate.mirror.views import compared_names
from mirrorgate.serve.config import StartupError
from mirrorgate.serve.gwsettings import Settings
from mirrorgate.tls.certs import CertifiedKey, InvalidCertificate, parse_tls_secret
from mirrorgate.tls.server import ListenerTls, TlsPort
from mirrorgate.upstream import tls as upstream_tls
from mirrorgate.upstream.pool import Pool, PoolConfig

log = logging.getLogger("mirrorgate")
ACCESS_LOG_DRAIN = 2.0  # seconds shutdown waits for buffered access-log lines to be written


class DataPlane:
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
        self._own_pool_config = pool_config is None  # made from ``limits`` (``reconfigure``)
        self._bound_any = False  # ``fresh``
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
            access_log=_mirror_log(access_log_json, mirror_config or MirrorConfig()),
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
        self.limits = limits
        self.pairs: dict[str, CertifiedKey] = {}  # certificate digest -> parsed pair (rule 6)

    @property
    def fresh(self) -> bool:
        """No listener was ever bound: nothing was served, no connection made (the Kubernetes
        source before its first sync), so even the settings fixed at start may still change."""
        return not self._bound_any

    def reconfigure(self, settings: Settings, *, fresh: bool = False) -> None:
        """Gateway-wide settings a reload may change (``serve/gwsettings.py`` rule 3): limits for
        connections accepted from now on, the access-log format, the mirror dispatcher's config.
        ``fresh`` (only while ``self.fresh``): all of them, the pools and breakers made anew."""
        if fresh:
            assert self.fresh, "the pools and breakers of a plane that served are not replaced"
            head_limits = (settings.limits.max_response_head_bytes, settings.limits.max_response_headers)
            if self._own_pool_config:
                self.state.pool.close()
                self.state.pool = Pool(
                    PoolConfig(max_response_head_bytes=head_limits[0], max_response_headers=head_limits[1])
                )
            self.mirror.reset(settings.mirror, head_limits, _mirror_log(settings.access_log_json, settings.mirror))
            self.limits = settings.limits
        self.state.limits = settings.limits
        self.state.access_log_json = settings.access_log_json
        if self.mirror.access_log is not None:
            self.mirror.access_log.json = settings.access_log_json  # ``--access-log-json`` switches both
        if settings.mirror != self.mirror.config:
            self.mirror.reconfigure(settings.mirror)

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
        """Serve ``table`` (rule 1); raises ``StartupError`` (and changes nothing) when a new
        server cannot be bound. ``matcher`` is ``compile(table)`` when the caller has it."""
        wanted = {(s.address, s.port): s for s in table.servers}
        sni = self._sni_tables(table, wanted)
        for key in [k for k in wanted if k in self.listeners and (k in sni) != (k in self.state.tls_ports)]:
            self._retire(key)  # HTTP <-> HTTPS on one (address, port): a new socket (rule 6)
        ports = {key: self.state.tls_ports.get(key) or TlsPort(listeners) for key, listeners in sni.items()}
        opened: dict[ServerKey, asyncio.Server] = {}
        try:
            for key, server in wanted.items():
                if key not in self.listeners:
                    opened[key] = await self._bind(server, ports.get(key))
            for key, port in ports.items():
                if port is self.state.tls_ports.get(key):
                    port.reload(sni[key])
        except BaseException as exc:  # OSError, or cancelled mid-way: nothing half-applied stays open
            for srv in opened.values():
                srv.close()
            if isinstance(exc, OSError):
                raise StartupError(f"cannot listen: {exc}") from exc
            raise
        self.state.matcher = matcher if matcher is not None else compile(table)
        self.table = table
        self.mirror.board.keep_records_of(compared_names(table))  # a mirror gone: its ring is freed
        upstream_tls.set_trust(table)
        self.state.tls_ports = ports
        accesslog.flush()
        for key, srv in opened.items():
            self._bound_any = True
            self.listeners[key] = srv
            self.bound[key] = int(srv.sockets[0].getsockname()[1])
            log.info("listening on %s:%d (%d listener(s))", key[0], self.bound[key], len(wanted[key].listeners))
        for key in [k for k in self.listeners if k not in wanted]:
            self._retire(key)

    def _sni_tables(
        self, table: RoutingTable, wanted: Mapping[ServerKey, Server]
    ) -> dict[ServerKey, list[ListenerTls]]:
        """Each TLS server's listeners with their parsed certificates (rule 6); raises
        ``StartupError`` naming the certificate that cannot be served."""
        certificates = {c.digest: c for c in table.certificates}
        pairs: dict[str, CertifiedKey] = {}
        out: dict[ServerKey, list[ListenerTls]] = {}
        for key, server in wanted.items():
            listeners = []
            for lst in server.listeners:
                if lst.tls is None:
                    continue
                chain = tuple(self._pair(certificates, d, pairs) for d in lst.tls.certificates if d in certificates)
                if chain:
                    listeners.append(ListenerTls(lst.name, lst.hostname or None, chain))
            if listeners:
                out[key] = listeners
        self.pairs = pairs
        return out

    def _pair(
        self, certificates: Mapping[str, Certificate], digest: str, pairs: dict[str, CertifiedKey]
    ) -> CertifiedKey:
        pair = pairs.get(digest) or self.pairs.get(digest)
        if pair is None:
            cert = certificates[digest]
            try:
                pair = parse_tls_secret(cert.chain_pem.encode(), cert.key_pem.encode())
            except InvalidCertificate as error:
                raise StartupError(f"certificate {cert.source} ({digest}) cannot be served: {error}") from None
        pairs[digest] = pair
        return pair

    async def _bind(self, server: Server, tls: TlsPort | None = None) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        port = self.port_overrides.get(server.port, server.port)
        return await loop.create_server(
            partial(HttpProtocol, self.state, (server.address, server.port)),
            server.address,
            port,
            backlog=1024,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
            ssl=tls.context if tls is not None else None,
            ssl_handshake_timeout=self.limits.handshake_timeout if tls is not None else None,
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
        if accesslog.buffered():
            await asyncio.to_thread(accesslog.drain, ACCESS_LOG_DRAIN)


def _mirror_log(json: bool, config: MirrorConfig) -> MirrorLog | None:
    """The mirror access log on the process's sink (rule 5); None when the process has none."""
    sink = accesslog.mirror_sink()
    return None if sink is None else MirrorLog(sink, json=json, shadow_suffix=config.shadow_host_suffix)


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
        yield CounterMetricFamily(
            "mirrorgate_access_log_dropped",
            "Access-log lines dropped: the buffer was full (a slow or stuck sink) or the sink failed",
            value=accesslog.dropped(),
        )
        yield CounterMetricFamily(
            "mirrorgate_mirror_access_log_dropped",
            "Mirror access-log lines dropped: the buffer was full (a slow or stuck sink) or the sink failed",
            value=accesslog.mirror_dropped(),
        )
