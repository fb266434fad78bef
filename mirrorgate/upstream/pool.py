"""A keyed keep-alive pool of upstream connections (aiohttp's connector model, STYLE §3.10).

Owns: dialling endpoints, idle connections per key, the limits, the waiters and idle expiry.

Rules:
1. Key = ``(address, port)`` of one endpoint. Endpoint addresses are IPs (the control plane
   resolved them), so dialling never does DNS; it runs under ``connect_timeout``.
2. Limits count connections in use: ``active + connecting <= limit`` in total and
   ``<= limit_per_key`` per key. A connect in progress holds its slot (a reservation), so dials
   count against the limits. Idle connections are kept up to ``max_idle_per_key`` per key,
   newest reused first (LIFO keeps few connections warm and lets the rest expire).
3. Counters change only where a connection changes state (``take_idle``, ``release``/``_to_idle``,
   ``_connect``, ``_on_lost``, ``_sweep``), never by scanning; ``__repr__`` prints them and
   tests assert on it.
4. No ``await`` between taking a connection and returning it, so cancellation cannot leak one.
5. When no slot is free, ``acquire`` waits in a per-key FIFO; a release wakes the oldest waiter
   of that key, else the oldest waiter of any key. ``pool_timeout`` bounds the wait
   (``PoolTimeout`` -> 503).
6. One sweep timer closes idle connections older than ``idle_timeout``; it runs only while some
   connection is idle.
"""

import asyncio
import time
from collections import OrderedDict, deque

from mirrorgate.errors import ConnectError, ConnectTimeout, PoolTimeout
from mirrorgate.upstream.connection import State, UpstreamConnection

Key = tuple[str, int]
_ACTIVE, _IDLE, _CLOSED = State.ACTIVE, State.IDLE, State.CLOSED  # enum attribute lookups are slow in 3.11


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


class Pool:
    __slots__ = ("_active", "_closed", "_idle", "_in_use", "_n_idle", "_sweeper", "_waiters", "config")

    def __init__(self, config: PoolConfig | None = None) -> None:
        self.config = config or PoolConfig()
        self._idle: dict[Key, deque[UpstreamConnection]] = {}
        self._in_use: dict[Key, int] = {}  # active + connecting, per key
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
        key = conn.key
        in_use = self._in_use
        n = in_use[key] - 1  # _in_use_delta(key, -1), inlined
        if n:
            in_use[key] = n
        else:
            del in_use[key]
        self._active -= 1
        t = conn.transport
        if reusable and not self._closed and not conn.lost and t is not None and not t.is_closing():
            idle = self._idle.get(key)
            if idle is None:
                self._to_idle(conn)
            elif len(idle) < self.config.max_idle_per_key:  # inline _to_idle: the hot path
                conn.state = _IDLE
                conn.released_at = time.monotonic()
                idle.append(conn)
                self._n_idle += 1
                if self._sweeper is None:
                    self._start_sweeper()
            else:
                conn.state = _CLOSED
                conn.close()
        else:
            conn.state = _CLOSED
            conn.close()
        if self._waiters:
            self._wake(key)

    def close(self) -> None:
        """Close every idle connection; active ones close when released."""
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.state = _CLOSED
                conn.close()
        self._idle.clear()
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
        """An idle connection to ``key`` made ACTIVE, or None; synchronous (the hot path).

        An emptied deque stays in ``_idle`` (the next release refills it); the sweep drops it."""
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            self._n_idle -= 1
            t = conn.transport
            if not conn.lost and t is not None and not t.is_closing():  # is_usable(), inlined
                conn.state = _ACTIVE
                in_use = self._in_use
                in_use[key] = in_use.get(key, 0) + 1
                self._active += 1
                return conn
            conn.state = _CLOSED
            conn.close()
        return None

    def _to_idle(self, conn: UpstreamConnection) -> None:
        conn.state = _IDLE
        conn.released_at = time.monotonic()
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = deque()
        idle.append(conn)
        self._n_idle += 1
        if self._sweeper is None:
            self._start_sweeper()

    def _start_sweeper(self) -> None:
        self._sweeper = asyncio.get_running_loop().call_later(self.config.idle_timeout / 2, self._sweep)

    def _in_use_delta(self, key: Key, delta: int) -> None:
        n = self._in_use.get(key, 0) + delta
        if n:
            self._in_use[key] = n
        else:
            self._in_use.pop(key, None)
        self._active += delta

    def _has_slot(self, key: Key) -> bool:
        return self._active < self.config.limit and self._in_use.get(key, 0) < self.config.limit_per_key

    async def _connect(self, key: Key) -> UpstreamConnection:
        self._in_use_delta(key, 1)  # the reservation
        loop = asyncio.get_running_loop()
        cfg = self.config
        conn = UpstreamConnection(key, self._on_lost, cfg.max_response_head_bytes, cfg.max_response_headers)
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                await loop.create_connection(lambda: conn, key[0], key[1])
        except TimeoutError:
            self._connect_failed(conn, key)
            raise ConnectTimeout(f"connect to {key[0]}:{key[1]} timed out") from None
        except OSError as exc:
            self._connect_failed(conn, key)
            raise ConnectError(f"connect to {key[0]}:{key[1]} failed: {exc.strerror or exc}") from None
        except BaseException:
            self._connect_failed(conn, key)
            raise
        if conn.lost:  # lost right after connecting
            self._connect_failed(conn, key)
            raise ConnectError(f"connection to {key[0]}:{key[1]} closed while connecting")
        conn.state = _ACTIVE
        return conn

    def _connect_failed(self, conn: UpstreamConnection, key: Key) -> None:
        conn.state = _CLOSED
        conn.abort()
        self._in_use_delta(key, -1)
        self._wake(key)

    def _on_lost(self, conn: UpstreamConnection) -> None:
        """A connection was lost. IDLE: drop it now. ACTIVE/CONNECTING: its user releases it."""
        if conn.state is not _IDLE:
            return
        idle = self._idle.get(conn.key)
        if idle is not None and conn in idle:
            idle.remove(conn)
            self._n_idle -= 1
            if not idle:
                del self._idle[conn.key]
        conn.state = _CLOSED

    async def _wait(self, key: Key) -> None:
        loop = asyncio.get_running_loop()
        while not self._has_slot(key) and not self._idle.get(key):
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
        self._sweeper = None
        deadline = time.monotonic() - self.config.idle_timeout
        for key in list(self._idle):
            idle = self._idle[key]
            while idle and idle[0].released_at <= deadline:
                conn = idle.popleft()
                self._n_idle -= 1
                conn.state = _CLOSED
                conn.close()
            if not idle:
                del self._idle[key]
        if self._n_idle:
            self._sweeper = asyncio.get_running_loop().call_later(self.config.idle_timeout / 2, self._sweep)
