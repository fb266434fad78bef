"""The mirror dispatcher: sampling, per-backend isolation, and the life of each mirrored request.

The data plane calls ``Dispatcher.submit`` synchronously once per request whose rule has mirrors
(``dataplane.state.MirrorDispatcher``); it returns a ``Tee`` for the body or None, and nothing
the primary does ever waits for a mirror.

Rules:
1. Sampling: ONE uniform draw per request, ``u = rng.randrange(1_000_000)``; mirror k fires iff
   ``u < ppm_k`` (DESIGN §2.1), so a 5% mirror's sample is a subset of a 10% mirror's.
2. Admission of a fired mirror, in order: no endpoints -> drop ``no_endpoints``; breaker open ->
   drop ``breaker_open``; cap and queue full -> drop ``over_capacity``; else it takes a slot
   (a task starts now, concurrently with the primary) or waits in the bounded queue.
3. Every task is tracked in ``tasks`` and removed by its done-callback, which also frees the slot
   and starts the next queued mirror. Every mirror ends exactly once: completed (counted by
   status class) or dropped (counted by reason); ``_drop``/``_complete`` are the only places.
4. Mirrors use their own ``Pool`` (own limits, own timeouts); a failed or abandoned connection is
   aborted (never closed gracefully: that would keep its unsent buffer alive), a complete
   response returns it to the pool when reusable.
5. Only connect errors, connect timeouts and response timeouts feed the circuit breaker; only a
   complete response closes it (``breaker.py``).
6. ``close()``/``shutdown()`` drop queued mirrors and cancel every task (the runtime calls it
   before it cancels primaries); ``CancelledError`` always propagates.
"""

import asyncio
import logging
import time
from functools import partial
from random import Random

from prometheus_client import CollectorRegistry

from mirrorgate.errors import ConnectError, ConnectTimeout, PoolTimeout, UpstreamError, UpstreamProtocolError
from mirrorgate.ir.table import PPM, Mirror
from mirrorgate.mirror.backend import BackendState
from mirrorgate.mirror.body import Shadow, Tee
from mirrorgate.mirror.breaker import Breaker, Verdict
from mirrorgate.mirror.config import DropReason, MirrorConfig
from mirrorgate.mirror.head import MirrorHead, build_head
from mirrorgate.mirror.metrics import BackendGauges, MirrorCollector, MirrorSeries, MirrorStats, Stats
from mirrorgate.upstream.connection import StaleConnection
from mirrorgate.upstream.pool import Pool, PoolConfig

log = logging.getLogger("mirrorgate.mirror")

Header = tuple[bytes, bytes]
_LOG_INTERVAL = 1.0  # seconds between debug lines about one backend's drops
_UNLIMITED = 1 << 30  # the pool's limits: the per-backend caps bound mirror traffic, so ``acquire`` never waits


def _classify(exc: UpstreamError) -> tuple[DropReason, bool]:
    """Drop reason of an upstream failure, and whether it counts against the breaker."""
    if isinstance(exc, ConnectTimeout):
        return DropReason.TIMEOUT, True
    if isinstance(exc, ConnectError):
        return DropReason.CONNECT_ERROR, True
    if isinstance(exc, PoolTimeout):
        return DropReason.OVER_CAPACITY, False
    if isinstance(exc, UpstreamProtocolError):
        return DropReason.PROTOCOL_ERROR, False
    return DropReason.RESET, False


class Dispatcher:
    """``Dispatcher(config, registry=..., rng=...)``: install as ``GatewayState.mirror``;
    ``await shutdown()`` before the primaries are cancelled."""

    __slots__ = (
        "_backends",
        "_buffered",
        "_closed",
        "_series",
        "config",
        "pool",
        "registry",
        "rng",
        "tasks",
    )

    def __init__(
        self,
        config: MirrorConfig | None = None,
        *,
        registry: CollectorRegistry | None = None,
        rng: Random | None = None,
    ) -> None:
        self.config = cfg = config or MirrorConfig()
        self.rng = rng or Random()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.pool = Pool(
            PoolConfig(
                limit=_UNLIMITED,
                limit_per_key=_UNLIMITED,
                max_idle_per_key=cfg.max_idle_per_endpoint,
                idle_timeout=cfg.idle_timeout,
                connect_timeout=cfg.connect_timeout,
                pool_timeout=cfg.timeout,
            )
        )
        self.tasks: set[asyncio.Task[None]] = set()
        self._backends: dict[str, BackendState] = {}
        self._series: dict[tuple[str, str], MirrorSeries] = {}
        self._buffered = 0  # bytes all mirrors are behind, as last measured (body.py rule 2)
        self._closed = False
        self.registry.register(MirrorCollector(self._series.values, self._gauges, lambda: self._buffered))

    def __repr__(self) -> str:
        inflight = sum(b.inflight for b in self._backends.values())
        queued = sum(len(b.queue) for b in self._backends.values())
        return f"<Dispatcher inflight={inflight} queued={queued} buffered={self._buffered} tasks={len(self.tasks)}>"

    # --- the hook (rules 1-2) -----------------------------------------------------------------------

    def submit(
        self, mirrors: tuple[Mirror, ...], method: bytes, target: bytes, headers: list[Header], has_body: bool
    ) -> Tee | None:
        """Start (or queue, or drop) each sampled mirror of one request; returns at once. The
        ``Tee`` receives the request body when ``has_body``; None when no mirror needs it."""
        if self._closed:
            return None
        u = self.rng.randrange(PPM)
        now = asyncio.get_running_loop().time()
        head: MirrorHead | None = None
        waiting: list[Shadow] = []
        for mirror in mirrors:
            series = self._series_for(mirror)
            if u >= mirror.ppm:
                series.count_sampled_out()
                continue
            if head is None:
                head = build_head(method, target, headers, has_body, self.config.shadow_host_suffix)
            shadow = self._admit(mirror, series, head, now)
            if shadow is not None and not shadow.body_done:
                waiting.append(shadow)
        return Tee(waiting) if waiting else None

    def _admit(self, mirror: Mirror, series: MirrorSeries, head: MirrorHead, now: float) -> Shadow | None:
        backend = self._backend(mirror.backend)
        if not mirror.endpoints:
            self._refuse(backend, series, DropReason.NO_ENDPOINTS)
            return None
        verdict = backend.breaker.check(now)
        if verdict is Verdict.DENY:
            self._refuse(backend, series, DropReason.BREAKER_OPEN)
            return None
        cfg = self.config
        has_slot = backend.inflight < cfg.max_concurrent_per_backend
        if not has_slot and len(backend.queue) >= cfg.max_queue_per_backend:
            if verdict is Verdict.PROBE:
                backend.breaker.probe_done()
            self._refuse(backend, series, DropReason.OVER_CAPACITY)
            return None
        endpoint = backend.next_endpoint(mirror.endpoints)
        shadow = Shadow(self, head, endpoint, backend, series, started=now, is_probe=verdict is Verdict.PROBE)
        if has_slot:
            self._start(shadow)
        else:
            backend.queue.append(shadow)
        return shadow

    def _refuse(self, backend: BackendState, series: MirrorSeries, reason: DropReason) -> None:
        series.count_dropped(reason)
        self._log_drop(backend, reason)

    # --- ShadowOwner (body.py) ------------------------------------------------------------------------

    def abandon(self, shadow: Shadow, reason: DropReason) -> None:
        """Give up on a mirror now (body lag, body mismatch, primary aborted); never blocks."""
        if shadow.finished:
            return
        self._drop(shadow, reason)
        task = shadow.task
        if task is None:  # still queued
            shadow.backend.queue.remove(shadow)
            return
        conn = shadow.conn
        if conn is not None:
            conn.abort()
        task.cancel()

    def account(self, old: int, new: int) -> bool:
        self._buffered += new - old
        return new <= self.config.body_lag_budget and self._buffered <= self.config.max_buffered_bytes

    def deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.config.timeout

    # --- tasks (rule 3) -------------------------------------------------------------------------------

    def _start(self, shadow: Shadow) -> None:
        backend = shadow.backend
        backend.inflight += 1
        task = asyncio.get_running_loop().create_task(self._run(shadow))
        shadow.task = task
        self.tasks.add(task)
        task.add_done_callback(partial(self._task_done, shadow))

    def _task_done(self, shadow: Shadow, task: "asyncio.Task[None]") -> None:
        self.tasks.discard(task)
        backend = shadow.backend
        backend.inflight -= 1
        if not task.cancelled() and task.exception() is not None:  # the one catch-all of the task: a bug
            log.error("bug in mirror to %s", backend.name, exc_info=task.exception())
            self._drop(shadow, DropReason.INTERNAL_ERROR)
        self._drop(shadow, DropReason.SHUTDOWN)  # no-op unless it was cancelled before finishing
        self._pump(backend)

    def _pump(self, backend: BackendState) -> None:
        """Start queued mirrors while the backend has free slots; expired ones are dropped."""
        now = asyncio.get_running_loop().time()
        while backend.queue and backend.inflight < self.config.max_concurrent_per_backend and not self._closed:
            shadow = backend.queue.popleft()
            if shadow.deadline is not None and shadow.deadline <= now:
                self._drop(shadow, DropReason.TIMEOUT)
            else:
                self._start(shadow)

    async def _run(self, shadow: Shadow) -> None:
        try:
            async with asyncio.timeout_at(shadow.deadline) as timeout_cm:
                shadow.timeout_cm = timeout_cm
                await self._exchange(shadow)
        except TimeoutError:
            self._failed(shadow, DropReason.TIMEOUT, breaker=True)
        except UpstreamError as exc:
            reason, breaker = _classify(exc)
            self._failed(shadow, reason, breaker=breaker)
        finally:
            shadow.timeout_cm = None
            self._release(shadow, False)  # no-op when the exchange already released it

    async def _exchange(self, shadow: Shadow) -> None:
        """Send the mirror and read its response to the end. A request without a body whose
        reused connection turns out stale is resent once on another connection."""
        key = (shadow.endpoint.address, shadow.endpoint.port)
        retried = False
        while True:
            conn, reused = await self.pool.acquire(key)
            shadow.conn = conn  # owned from here on: ``_run`` releases it whatever happens next
            response = shadow.attach(conn)
            if not retried:
                shadow.series.count_sent()
            try:
                keep_alive = await response
            except StaleConnection:
                if retried or not reused or shadow.head.has_body:
                    raise
                retried = True
                self._release(shadow, False)
                continue
            self._release(shadow, shadow.is_reusable(keep_alive))
            self._complete(shadow)
            return

    def _release(self, shadow: Shadow, reusable: bool) -> None:
        conn = shadow.detach()
        if conn is None:
            return
        if not reusable:
            conn.abort()  # rule 4: drop unsent bytes with the socket
        self.pool.release(conn, reusable)

    # --- outcomes: every mirror ends exactly once (rule 3) --------------------------------------------

    def _complete(self, shadow: Shadow) -> None:
        if shadow.finished:
            return
        shadow.finished = True
        shadow.release_buffers()
        shadow.series.count_completed(shadow.status, asyncio.get_running_loop().time() - shadow.started)
        shadow.backend.breaker.record_success()

    def _failed(self, shadow: Shadow, reason: DropReason, *, breaker: bool) -> None:
        if shadow.finished:
            return
        if breaker:
            shadow.backend.breaker.record_failure(asyncio.get_running_loop().time())
        self._drop(shadow, reason)

    def _drop(self, shadow: Shadow, reason: DropReason) -> None:
        if shadow.finished:
            return
        shadow.finished = True
        shadow.release_buffers()
        shadow.series.count_dropped(reason)
        if shadow.is_probe:
            shadow.backend.breaker.probe_done()
        self._log_drop(shadow.backend, reason)

    def _log_drop(self, backend: BackendState, reason: DropReason) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        now = time.monotonic()
        if now - backend.last_log >= _LOG_INTERVAL:
            backend.last_log = now
            log.debug("mirror to %s dropped: %s (%r)", backend.name, reason.value, backend)

    # --- lookups ----------------------------------------------------------------------------------------

    def _series_for(self, mirror: Mirror) -> MirrorSeries:
        key = (mirror.name, mirror.backend)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = MirrorSeries(mirror.name, mirror.backend)
        return series

    def _backend(self, name: str) -> BackendState:
        backend = self._backends.get(name)
        if backend is None:
            cfg = self.config
            backend = self._backends[name] = BackendState(
                name, Breaker(cfg.breaker_failures, cfg.breaker_open_duration)
            )
        return backend

    # --- shutdown (rule 6) and introspection ----------------------------------------------------------

    def close(self) -> None:
        """Drop every queued mirror and cancel every in-flight one; later submits do nothing."""
        self._closed = True
        for backend in self._backends.values():
            while backend.queue:
                shadow = backend.queue.popleft()
                self._drop(shadow, DropReason.SHUTDOWN)
        for task in list(self.tasks):
            task.cancel()

    async def shutdown(self) -> None:
        """``close()``, wait for the cancelled tasks to finish, close the mirror pool."""
        self.close()
        while self.tasks:
            await asyncio.wait(list(self.tasks))
        self.pool.close()

    def stats(self) -> Stats:
        """A snapshot (copies) of every counter, for tests and the admin server."""
        now = _now()
        out = Stats(buffered_bytes=self._buffered, tasks=len(self.tasks))
        for backend in self._backends.values():
            out.inflight[backend.name] = backend.inflight
            out.queued[backend.name] = len(backend.queue)
            out.breakers[backend.name] = backend.breaker.state(now)
        for (name, backend_name), series in sorted(self._series.items()):
            st = MirrorStats.of(series)
            out.mirrors[name if name not in out.mirrors else f"{name}@{backend_name}"] = st
            out.sent += st.sent
            out.sampled_out += st.sampled_out
            for key, n in st.completed.items():
                out.completed[key] = out.completed.get(key, 0) + n
            for key, n in st.dropped.items():
                out.dropped[key] = out.dropped.get(key, 0) + n
        return out

    def _gauges(self) -> list[BackendGauges]:
        now = _now()
        return [
            BackendGauges(b.name, b.inflight, len(b.queue), b.breaker.state(now) != "closed")
            for b in tuple(self._backends.values())
        ]


def _now() -> float:
    """The loop's clock (the breaker's), also when called from outside the loop (a scrape thread)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()
