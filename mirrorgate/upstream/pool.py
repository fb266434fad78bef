"""A keyed keep-alive pool of upstream connections (aiohttp's connector model).

Owns: dialling endpoints, idle connections per key, the limits, the waiters and idle expiry.

Rules:
1. Key = ``(address, port)`` of one endpoint, or ``(host, port, tls, external)`` for TLS or
   ExternalName (``upstream/tls.py``). Endpoint addresses are IPs (the control plane resolved
   them); an ExternalName host is resolved by the process's ``Resolver`` when dialling (a
   ``DnsError``: 503), then its first address is dialled. Dialling, the TLS handshake and the
   policy's ``verify()`` run under ``connect_timeout``; a certificate that does not verify is a
   ``BackendTlsError`` (503, as Envoy's "upstream connect error ... TLS error"): the request
   never reaches the backend. A TLS connection released reusable leaves its session to the
   next dial (``remember()``).
2. Limits count connections in use: ``active + connecting <= limit`` in total and
   ``<= limit_per_key`` per key. A connect in progress holds its slot (a reservation), so dials
   count against the limits. Idle connections are kept up to ``max_idle_per_key`` per key,
   newest reused first (LIFO keeps few connections warm and lets the rest expire).
3. Counters change only where a connection changes state (``take_idle``, ``release``,
   ``_connect``, ``_on_lost``, ``_sweep``), never by scanning; ``__repr__`` prints them and
   tests assert on it. Each key's counters and idle connections live in one ``_KeyState``,
   which its connections point to (``UpstreamConnection.pool_key``): releasing one does no lookup.
4. No ``await`` between taking a connection and returning it, so cancellation cannot leak one.
5. When no slot is free, ``acquire`` waits in a per-key FIFO; a release wakes the oldest waiter
   of that key, else the oldest waiter of any key. ``pool_timeout`` bounds the wait
   (``PoolTimeout`` -> 503).
6. One sweep timer closes idle connections older than ``idle_timeout``; it runs only while some
   connection is idle.
7. ``hand_over`` gives up an ACTIVE connection without closing it (a 101 made it a tunnel): it
   leaves the counters and the limits, and is never returned to the pool.
"""

import asyncio
import ssl
import time
from collections import OrderedDict, deque

from mirrorgate.errors import ConnectError, ConnectTimeout, PoolTimeout
from mirrorgate.tls.client import BackendTlsError, ClientTls
from mirrorgate.upstream.connection import State, UpstreamConnection
from mirrorgate.upstream.tls import Key, resolver

_ACTIVE, _IDLE, _CLOSED = State.ACTIVE, State.IDLE, State.CLOSED  # enum attribute lookups are slow in 3.11
_monotonic = time.monotonic


class PoolConfig:
    __slots__ = (
        "connect_timeout",
        "idle_timeout",
        "limit",
        "limit_per_key",
        "max_idle_per_key",
        "max_response_head_bytes",
        "max_response_headers",
        "pool_timeout",
    )

    def __init__(
        self,
        *,
        limit: int = 1024,
        limit_per_key: int = 256,
        max_idle_per_key: int = 256,
        idle_timeout: float = 60.0,
        connect_timeout: float = 5.0,
        pool_timeout: float = 10.0,
        max_response_head_bytes: int = 64 * 1024,
        max_response_headers: int = 200,
    ) -> None:
        self.limit = limit
        self.limit_per_key = limit_per_key
        self.max_idle_per_key = max_idle_per_key
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.pool_timeout = pool_timeout
        self.max_response_head_bytes = max_response_head_bytes  # -> 502 (UpstreamProtocolError)
        self.max_response_headers = max_response_headers


class _KeyState:
    """One key's connections: how many are in use (active + connecting) and the idle ones."""

    __slots__ = ("idle", "in_use")

    def __init__(self) -> None:
        self.in_use = 0
        self.idle: deque[UpstreamConnection] = deque()


class Pool:
    __slots__ = ("_active", "_closed", "_keys", "_max_idle", "_n_idle", "_sweeper", "_waiters", "config")

    def __init__(self, config: PoolConfig | None = None) -> None:
        self.config = config or PoolConfig()
        self._max_idle = self.config.max_idle_per_key
        self._keys: dict[Key, _KeyState] = {}
        self._active = 0  # active + connecting, total
        self._n_idle = 0
        self._waiters: OrderedDict[Key, deque[asyncio.Future[None]]] = OrderedDict()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    def __repr__(self) -> str:
        waiting = sum(len(w) for w in self._waiters.values())
        return f"<Pool in_use={self._active} idle={self._n_idle} waiting={waiting}>"

    # --- public -----------------------------------------------------------------------------

    async def acquire(self, key: Key) -> tuple[UpstreamConnection, bool]:
        """A connection to ``key`` in state ACTIVE and whether it was reused from the idle set."""
        if self._closed:
            raise ConnectError("connection pool is closed")
        conn = self.take_idle(key)
        if conn is not None:
            return conn, True
        if not self._has_slot(key):
            await self._wait(key)
            conn = self.take_idle(key)
            if conn is not None:
                return conn, True
        return await self._connect(key), False

    def release(self, conn: UpstreamConnection, reusable: bool) -> None:
        """Give back an ACTIVE connection; it is kept idle only when ``reusable`` and still open."""
        if conn.state is not _ACTIVE:  # released twice: a bug upstream of here, but harmless
            return
        ks = conn.pool_key
        ks.in_use -= 1
        self._active -= 1
        t = conn.transport
        if reusable and not self._closed and not conn.lost and t is not None and not t.is_closing():
            if len(conn.key) > 2:
                remember(conn.key, t)
            idle = ks.idle
            if len(idle) < self._max_idle:
                conn.state = _IDLE
                conn.released_at = _monotonic()
                idle.append(conn)
                self._n_idle += 1
                if self._sweeper is None:
                    self._start_sweeper()
                if self._waiters:
                    self._wake(conn.key)
                return
        conn.state = _CLOSED
        conn.close()
        if self._waiters:
            self._wake(conn.key)

    def hand_over(self, conn: UpstreamConnection) -> None:
        """Rule 7: ``conn`` (ACTIVE) now belongs to its user; its slot is free."""
        if conn.state is not _ACTIVE:
            return
        conn.pool_key.in_use -= 1
        self._active -= 1
        conn.state = _CLOSED
        if self._waiters:
            self._wake(conn.key)

    def close(self) -> None:
        """Close every idle connection; active ones close when released."""
        self._closed = True
        for ks in self._keys.values():
            for conn in ks.idle:
                conn.state = _CLOSED
                conn.close()
            ks.idle.clear()
        self._n_idle = 0
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(ConnectError("connection pool is closed"))
        self._waiters.clear()

    # --- transitions ------------------------------------------------------------------------

    def take_idle(self, key: Key) -> UpstreamConnection | None:
        """An idle connection to ``key`` made ACTIVE, or None; synchronous (the hot path)."""
        ks = self._keys.get(key)
        if ks is None:
            return None
        idle = ks.idle
        while idle:
            conn = idle.pop()
            self._n_idle -= 1
            t = conn.transport
            if not conn.lost and t is not None and not t.is_closing():  # is_usable(), inlined
                conn.state = _ACTIVE
                ks.in_use += 1
                self._active += 1
                return conn
            conn.state = _CLOSED
            conn.close()
        return None

    def _key(self, key: Key) -> _KeyState:
        ks = self._keys.get(key)
        if ks is None:
            ks = self._keys[key] = _KeyState()
        return ks

    def _start_sweeper(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(self.config.idle_timeout / 2, self._sweep)

    def _has_slot(self, key: Key) -> bool:
        ks = self._keys.get(key)
        in_use = ks.in_use if ks is not None else 0
        return self._active < self.config.limit and in_use < self.config.limit_per_key

    async def _connect(self, key: Key) -> UpstreamConnection:
        ks = self._key(key)
        ks.in_use += 1  # the reservation
        self._active += 1
        loop = asyncio.get_running_loop()
        cfg = self.config
        conn = UpstreamConnection(key, self._on_lost, cfg.max_response_head_bytes, cfg.max_response_headers)
        conn.pool_key = ks
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                if len(key) > 2:
                    await dial_tls(loop, conn, key)
                else:
                    await loop.create_connection(lambda: conn, key[0], key[1])
        except TimeoutError:
            self._connect_failed(conn)
            raise ConnectTimeout(f"connect to {key[0]}:{key[1]} timed out") from None
        except ssl.SSLError as exc:
            self._connect_failed(conn)
            reason = exc.verify_message if isinstance(exc, ssl.SSLCertVerificationError) else exc.reason or exc
            raise BackendTlsError(f"TLS handshake with {key[0]}:{key[1]} failed: {reason}") from None
        except OSError as exc:
            self._connect_failed(conn)
            raise ConnectError(f"connect to {key[0]}:{key[1]} failed: {exc.strerror or exc}") from None
        except BaseException:
            self._connect_failed(conn)
            raise
        if conn.lost:  # lost right after connecting
            self._connect_failed(conn)
            raise ConnectError(f"connection to {key[0]}:{key[1]} closed while connecting")
        conn.state = _ACTIVE
        return conn

    def _connect_failed(self, conn: UpstreamConnection) -> None:
        conn.state = _CLOSED
        conn.abort()
        conn.pool_key.in_use -= 1
        self._active -= 1
        self._wake(conn.key)

    def _on_lost(self, conn: UpstreamConnection) -> None:
        """A connection was lost. IDLE: drop it now. ACTIVE/CONNECTING: its user releases it."""
        if conn.state is not _IDLE:
            return
        idle = conn.pool_key.idle
        if conn in idle:
            idle.remove(conn)
            self._n_idle -= 1
        conn.state = _CLOSED

    async def _wait(self, key: Key) -> None:
        loop = asyncio.get_running_loop()
        while not self._has_slot(key) and not self._key(key).idle:
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.setdefault(key, deque()).append(fut)
            try:
                async with asyncio.timeout(self.config.pool_timeout):
                    await fut
            except TimeoutError:
                raise PoolTimeout(f"no connection to {key[0]}:{key[1]} became available") from None
            finally:
                waiters = self._waiters.get(key)
                if waiters is not None and fut in waiters:
                    waiters.remove(fut)
                    if not waiters:
                        del self._waiters[key]

    def _wake(self, key: Key) -> None:
        """Wake the oldest waiter of ``key``, else the oldest waiter of any key."""
        if key not in self._waiters:
            key = next(iter(self._waiters), key)
        waiters = self._waiters.get(key)
        if not waiters:
            return
        fut = waiters.popleft()
        if not waiters:
            del self._waiters[key]
        if not fut.done():
            fut.set_result(None)

    def _sweep(self) -> None:
        """Close idle connections older than ``idle_timeout``; forget keys with nothing left."""
        self._sweeper = None
        deadline = _monotonic() - self.config.idle_timeout
        for key, ks in list(self._keys.items()):
            idle = ks.idle
            while idle and idle[0].released_at <= deadline:
                conn = idle.popleft()
                self._n_idle -= 1
                conn.state = _CLOSED
                conn.close()
            if not idle and not ks.in_use:
                del self._keys[key]
        if self._n_idle:
            self._sweeper = asyncio.get_running_loop().call_later(self.config.idle_timeout / 2, self._sweep)


async def dial_tls(loop: asyncio.AbstractEventLoop, conn: UpstreamConnection, key: Key) -> None:
    """Dial a TLS or ExternalName key (rule 1): resolve, connect, handshake, verify."""
    host, port, tls, external = key  # type: ignore[misc]
    address = host
    if external:
        address = (await resolver().resolve(host, port))[0].host
    if tls is None:
        await loop.create_connection(lambda: conn, address, port)
        return
    assert isinstance(tls, ClientTls)
    transport, _ = await loop.create_connection(lambda: conn, address, port, **tls.connect_kwargs())
    try:
        tls.verify(transport.get_extra_info("ssl_object"))
    except BackendTlsError:
        transport.abort()
        raise


def remember(key: Key, transport: asyncio.BaseTransport) -> None:
    tls = key[2]  # type: ignore[misc]
    if tls is not None:
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            tls.remember(ssl_object)
