"""The mirror dispatcher: sampling, per-backend isolation, and the life of each mirrored request.

The data plane calls ``Dispatcher.submit`` synchronously once per request whose rule has mirrors
(``dataplane.state.MirrorDispatcher``); it returns a ``Tee`` for the body or None, and nothing
the primary does ever waits for a mirror.

Rules:
1. Sampling: ONE uniform draw per request, ``u = rng.randrange(1_000_000)``; mirror k fires iff
   ``u < ppm_k`` (GEP-3171 percentages as parts per million), so a 5% mirror's sample is a
   subset of a 10% mirror's. A request whose mirrors all take 100% makes no draw (it could not
   change anything). A mirror with a MirrorPolicy ``sampleBy`` draws from its key instead
   (``shaped.py`` rule 1, ``policy.py`` rule 1).
2. Admission of a fired mirror (``admit``), in order: no endpoints (and not an ExternalName
   Service) -> drop ``no_endpoints``;
   breaker open -> drop ``breaker_open``; no free slot that a queued mirror is not waiting for,
   and the queue full -> drop ``over_capacity``; else ``start`` gives it a slot (it is sent now,
   concurrently with the primary) or a place in the bounded queue. A drop at admission allocates
   nothing: ``start`` builds the head (from the primary's encoded head) and makes the ``Shadow``,
   only once a mirror is admitted (``admission.py``). A mirror whose MirrorPolicy changes its
   Host or headers gets a head of its own, built only once it is admitted (``shaped.py``).
3. A mirror holding a slot is in ``tasks`` (the in-flight set) until ``_end`` frees its slot and
   schedules the pump for the queued ones (rule 8). Like the primary exchange, it is driven by
   callbacks, not by a task: a pooled connection is taken synchronously, the response's end or
   failure are ``Shadow`` sink callbacks, and the deadline is a shared sweep timer (``_sweep``).
   A tracked task exists only while a new connection is dialled (``_dial``). Every mirror ends
   exactly once: completed (counted by status class) or dropped (counted by reason);
   ``_drop``/``response_complete`` are the only places.
4. Mirrors use their own ``Pool`` (own limits, own timeouts); a failed or abandoned connection is
   aborted (never closed gracefully: that would keep its unsent buffer alive), a complete
   response returns it to the pool when reusable. A TLS or ExternalName mirror's pool key
   carries its TLS settings and name (``upstream/tls.py``); its handshake or certificate failing
   is a drop ``tls``, its name not resolving a drop ``dns``.
5. Only connect errors (``tls`` and ``dns`` included), connect timeouts and response timeouts
   feed the circuit breaker; only a complete response closes it (``breaker.py``).
6. ``close()``/``shutdown()`` drop queued mirrors and stop every in-flight one (the runtime calls
   it before it cancels primaries); ``CancelledError`` always propagates.
7. Deadlines: one timer for the whole dispatcher, armed at the earliest deadline of the in-flight
   mirrors. It scans the in-flight set (bounded by the per-backend caps), times out what is due
   and re-arms itself at least ``_GRAIN`` later; a healthy backend costs one scan per ``timeout``.
8. Refill: freed slots go to the queued mirrors, oldest first, on the next loop turn (``_end``
   schedules ``_pump``, never inside the callback of the connection just released),
   ``_PUMP_BATCH`` at most per turn, the heads of the bodiless ones written back to back once all
   are attached (the backend's host is woken once for them, not once each). A new mirror starts
   at once only on a slot no queued mirror is waiting for (``inflight + len(queue) < cap``): it
   never takes a queued one's place, and slots freed together (a slow backend answers together
   what it was sent together) are not left idle while the pump works through the queue. There is
   no pacing below the cap: a token bucket past half the cap (cap / the backend's moving average
   latency) was tried and removed, because against a 200 ms backend held at its cap it cost the
   primary 5-8 % of its requests/s in same-run A/B tests and did not lower its p99
   (``docs/benchmarks.md``).
9. The mirror access log (``access_log``, ``mirrorlog.py``), when on, gets one line per sampled
   mirror from the places that decide its outcome: ``response_complete``, ``_drop`` and the drops
   at admission (``admission.py`` rule 4); ``_start_with`` hands it each started mirror with its
   primary (``track``). Off, it costs a started mirror two ``None`` checks and nothing else.
10. ``reconfigure`` (a reload, ``serve/gwsettings.py``) swaps the config: the cap, queue length,
    timeout, body-lag budgets and Host rule apply to mirrors admitted from then on; the pool,
    the breakers and the mirror access log keep what they were made with (a change to those
    waits for a restart), except through ``reset``, before the process ever bound a listener
    (the Kubernetes source's first configuration), which makes them anew.
11. Comparing (``comparing.py``, ``board.py``, ``capture.py``): ``start_compared``/
    ``submit_compared`` are the ``start``/``submit`` of a request whose admitted mirrors include
    one with ``compare`` (the data plane branches once, on the flag its matcher precomputed for
    MirrorPolicy settings and comparing together). They take the mirrors' shapes as
    ``start_shaped``/``submit`` do (a compared mirror is sampled, headed and limited by its
    MirrorPolicy, ``shaped.py`` rule 5). Only mirrors with ``compare`` are made
    ``CompareShadow``s (each its own comparison); the others are made as without comparing,
    and every request of a rule without ``compare`` or policy settings takes the plain path
    unchanged. A compared mirror that is dropped after it was started settles its comparison as
    ``mirror_failed`` (``_drop``).
"""

import asyncio
import logging
from collections.abc import Sequence
from functools import partial
from random import Random
from typing import cast

from prometheus_client import CollectorRegistry

from mirrorgate.errors import UpstreamError
from mirrorgate.ir.table import Mirror
from mirrorgate.mirror.admission import Admitted, Backend, Header, Shapes
from mirrorgate.mirror.backend import classify, mirror_pool, secured_endpoint
from mirrorgate.mirror.board import Board
from mirrorgate.mirror.capture import CompareShadow, PrimaryCapture
from mirrorgate.mirror.comparing import Comparing
from mirrorgate.mirror.config import DropReason, MirrorConfig
from mirrorgate.mirror.head import MirrorHead, build_head, head_from_parts
from mirrorgate.mirror.logs import DropLog, breaker_closed, breaker_failed
from mirrorgate.mirror.metrics import MirrorCollector, MirrorSeries
from mirrorgate.mirror.mirrorlog import MirroredRequest, MirrorLog, RequestView
from mirrorgate.mirror.shadow import Shadow, Tee
from mirrorgate.mirror.views import CompareCollector
from mirrorgate.upstream.connection import StaleConnection, UpstreamConnection

log = logging.getLogger("mirrorgate.mirror")

_GRAIN = 0.01  # seconds: the deadline sweep runs at most this often (a timeout fires at most this late)
_PUMP_BATCH = 8  # queued mirrors started per loop turn (``_pump``)
# Plain ``str`` values for the hot paths (``MirrorSeries.dropped`` is keyed by value).
_OVER_CAPACITY: str = DropReason.OVER_CAPACITY.value
_TIMEOUT: str = DropReason.TIMEOUT.value
_SHUTDOWN: str = DropReason.SHUTDOWN.value
_INTERNAL_ERROR: str = DropReason.INTERNAL_ERROR.value


class Dispatcher(Comparing):
    """``Dispatcher(config, registry=..., rng=..., access_log=...)``: install as ``GatewayState.mirror``;
    ``await shutdown()`` before the primaries are cancelled."""

    __slots__ = (
        "_backends",
        "_buffered",
        "_cap",
        "_closed",
        "_cork",
        "_dialing",
        "_droplog",
        "_getrandbits",
        "_inflight",
        "_max_queue",
        "_routes",
        "_series",
        "_sweep_at",
        "_sweeper",
        "_timeout",
        "board",
        "config",
        "pool",
        "registry",
        "rng",
    )

    def __init__(
        self,
        config: MirrorConfig | None = None,
        *,
        registry: CollectorRegistry | None = None,
        rng: Random | None = None,
        head_limits: tuple[int, int] = (64 * 1024, 200),
        access_log: MirrorLog | None = None,
    ) -> None:
        """``head_limits``: (bytes, header lines) of a mirror response head; more is a drop
        (``protocol_error``). ``access_log``: the mirror access log (rule 9), None: off."""
        self.config = cfg = config or MirrorConfig()
        self.rng = rng = rng or Random()
        # ``randrange(PPM)`` of a plain ``Random`` is this rejection loop over ``getrandbits``
        # (``Random._randbelow``), with the same draws and state; done inline it is 4x cheaper.
        self._getrandbits = rng.getrandbits if type(rng) is Random else None
        self.registry = registry if registry is not None else CollectorRegistry()
        self.pool = mirror_pool(cfg, head_limits)
        self._cap = cfg.max_concurrent_per_backend
        self._max_queue = cfg.max_queue_per_backend
        self._timeout = cfg.timeout
        self._inflight: set[Shadow] = set()  # mirrors holding a slot (rule 3)
        self._cork: list[tuple[asyncio.Transport, bytes]] | None = None  # heads the pump writes together
        self._dialing: set[asyncio.Task[None]] = set()  # the tasks of mirrors dialling a connection
        self._backends: dict[str, Backend] = {}
        self._series: dict[tuple[str, str], MirrorSeries] = {}
        self._routes: dict[str, tuple[MirrorSeries, Backend]] = {}  # mirror name -> its records
        self._sweeper: asyncio.TimerHandle | None = None  # rule 7
        self._sweep_at = 0.0
        self._buffered = 0  # bytes all mirrors are behind, as last measured (shadow.py rule 2)
        self._closed = False
        self.access_log = access_log
        self.board = Board()  # comparisons of the mirrors with ``compare`` (rule 11)
        self._debug = self._watching()  # refreshed on the first request, every scrape and sweep
        self._droplog = DropLog()  # drops at DEBUG, rate-limited (``logs.py``)
        self._loop: asyncio.AbstractEventLoop | None = None  # the running loop, as of the last submit
        self.registry.register(MirrorCollector(self._series.values, self._gauges, lambda: self._buffered))
        self.registry.register(CompareCollector(self.board))

    def reconfigure(self, config: MirrorConfig) -> None:
        """Rule 10: ``config`` for the mirrors admitted from now on (the access log's lines of
        refused mirrors show the Host rule that would have applied)."""
        self.config = config
        self._cap = config.max_concurrent_per_backend
        self._max_queue = config.max_queue_per_backend
        self._timeout = config.timeout
        if self.access_log is not None:
            self.access_log.shadow_suffix = config.shadow_host_suffix

    def reset(self, config: MirrorConfig, head_limits: tuple[int, int], access_log: MirrorLog | None) -> None:
        """Rule 10, before any mirror was sent (no listener was ever bound): ``config`` whole, the
        pool, the breakers and the mirror access log (rule 9) included."""
        self.access_log = access_log
        self._debug = self._watching()
        self.reconfigure(config)
        self.pool.close()
        self.pool = mirror_pool(config, head_limits)
        self._backends.clear()
        self._routes.clear()

    def __repr__(self) -> str:
        inflight = sum(b.inflight for b in self._backends.values())
        queued = sum(len(b.queue) for b in self._backends.values())
        return f"<Dispatcher inflight={inflight} queued={queued} buffered={self._buffered} tasks={len(self.tasks)}>"

    @property
    def tasks(self) -> set[Shadow]:
        """The in-flight mirrors (each holds a slot; a task exists only while one dials)."""
        return self._inflight

    # --- the hook (rules 1-2) -----------------------------------------------------------------------

    def submit(
        self,
        mirrors: tuple[Mirror, ...],
        method: bytes,
        target: bytes,
        headers: list[Header],
        has_body: bool,
        shapes: Shapes | None = None,
        client: tuple[bytes, Sequence[Header]] | None = None,
        request: MirroredRequest | None = None,
    ) -> Tee | None:
        """Start (or queue, or drop) each sampled mirror of one request; returns at once. The
        ``Tee`` receives the request body when ``has_body``; None when no mirror needs it.
        ``admit`` then ``start`` with the head built from ``headers``. ``shapes``: the mirrors'
        MirrorPolicy settings (``dataplane.matcher.mirror_shapes``; required when any mirror has
        them), ``client`` the client's target and headers as received (the sampling keys are
        read from them; default: ``target`` and ``headers``). ``request``: the primary, for the
        mirror access log (its target and Host are taken from ``target`` and ``headers``)."""
        if request is not None and self.access_log is not None:
            request = RequestView.of(request, method, target, headers)
        if shapes is not None:
            return self._submit_shaped(mirrors, method, target, headers, has_body, shapes, client, request)
        admitted = self.admit(mirrors, request)
        if admitted is None:
            return None
        head = build_head(method, target, headers, has_body, self.config.shadow_host_suffix)
        return self._start_with(admitted, head, has_body, None, request)

    def start(
        self,
        admitted: list[Admitted],
        parts: list[bytes],
        host_at: int,
        has_body: bool,
        content_length: int | None,
        is_head: bool,
        request: MirroredRequest | None = None,
    ) -> Tee | None:
        """``_start_with`` the head made from the primary's own encoded upstream head (``head_from_parts``:
        ``parts`` is left unchanged, ``parts[host_at]`` is the Host value, -1: none)."""
        shadow = self.config.shadow_host_suffix
        head = head_from_parts(parts, host_at, has_body, content_length, shadow, is_head)
        return self._start_with(admitted, head, has_body, None, request)

    def _start_with(
        self,
        admitted: list[Admitted],
        head: MirrorHead | None,
        has_body: bool,
        forwarded: tuple[bytes, bytes, list[Header]] | None,
        request: MirroredRequest | None,
        primary: PrimaryCapture | None = None,
    ) -> Tee | None:
        """Send now (or queue) each mirror ``admit`` let through, with ``head`` (or, for a mirror
        whose ``Shape`` needs a head of its own, one made from ``forwarded``: method, target and
        headers as the primary forwards them); the ``Tee`` for the body when the request has
        one. A mirror that a sibling of the same request left without a place (same backend,
        last slot) is dropped as ``over_capacity``. ``request``: the primary (rule 9);
        ``primary``: the capture of a request that compares (rule 11, ``shaped.py`` rule 5)."""
        loop = self._loop or self._get_loop()
        now = loop.time()
        deadline = None if has_body else now + self._timeout
        waiting: list[Shadow] | None = None
        cap = self._cap
        access_log = self.access_log
        for mirror, series, backend, probe, shape in admitted:
            queued = len(backend.queue)
            has_slot = backend.inflight + queued < cap  # a slot no queued mirror waits for (rule 8)
            if not has_slot and queued >= self._max_queue:
                if probe:
                    backend.breaker.probe_done(probe)
                    self._breaker_changed(backend)
                self._refuse(backend, series, _OVER_CAPACITY, mirror, request)
                continue
            endpoints = mirror.endpoints
            i = backend.rr
            backend.rr = i + 1
            if shape is not None or primary is not None:  # MirrorPolicy settings, or comparing
                shadow = self._shaped(shape, mirror, head, forwarded, has_body, backend, series, now, probe, i, primary)
            elif mirror.tls is None and mirror.external is None:
                assert head is not None  # made whenever a mirror without a shape is admitted
                shadow = Shadow(self, head, endpoints[i % len(endpoints)], backend, series, now, probe, deadline)
            else:
                assert head is not None
                endpoint, key = secured_endpoint(mirror, i)
                shadow = Shadow(self, head, endpoint, backend, series, now, probe, deadline, key)
            if access_log is not None:
                access_log.track(shadow, request)
            if has_slot:
                self._start(shadow)
            else:
                backend.queue.append(shadow)
                if backend.inflight < cap and not backend.pump_scheduled:  # a slot is free: fill it (rule 8)
                    backend.pump_scheduled = True
                    loop.call_soon(self._pump, backend)
            if has_body and not shadow.finished:
                if waiting is None:
                    waiting = [shadow]
                else:
                    waiting.append(shadow)
        return Tee(waiting) if waiting else None

    # --- ShadowOwner (shadow.py) ----------------------------------------------------------------------

    def abandon(self, shadow: Shadow, reason: DropReason) -> None:
        """Give up on a mirror now (body lag, body mismatch, primary aborted); never blocks."""
        if shadow.finished:
            return
        self._drop(shadow, reason)
        if not shadow.slot:  # still queued
            shadow.backend.queue.remove(shadow)
            return
        self._stop(shadow)

    def account(self, old: int, new: int) -> bool:
        self._buffered += new - old
        return new <= self.config.body_lag_budget and self._buffered <= self.config.max_buffered_bytes

    def account_within(self, old: int, new: int, budget: int) -> bool:
        self._buffered += new - old
        return new <= budget and self._buffered <= self.config.max_buffered_bytes

    def deadline(self, timeout: float | None = None) -> float:
        return (self._loop or self._get_loop()).time() + (self._timeout if timeout is None else timeout)

    def arm(self, deadline: float) -> None:
        """Make sure the sweep runs by ``deadline`` (rule 7)."""
        sweeper = self._sweeper
        if sweeper is not None:
            if deadline >= self._sweep_at:
                return
            sweeper.cancel()
        self._sweep_at = deadline
        self._sweeper = (self._loop or self._get_loop()).call_at(deadline, self._sweep)

    def response_complete(self, shadow: Shadow, keep_alive: bool) -> None:
        """The mirror's response ended (a sink callback of its connection, which has already
        forgotten its sink). ``_release`` and ``_complete``, inlined: the hot path."""
        conn = shadow.conn
        assert conn is not None
        shadow.conn = None
        transport = conn.transport
        # reusable: the response allowed it and all of our request was sent
        reusable = keep_alive and shadow.body_done and transport is not None and not transport.get_write_buffer_size()
        if not reusable:
            conn.abort()  # rule 4
        self.pool.release(conn, reusable)
        if not shadow.finished:
            shadow.finished = True
            if shadow.lag:
                shadow.release_buffers()
            loop = self._loop
            assert loop is not None  # set by the submit that made the shadow
            now = loop.time()
            shadow.series.count_completed(shadow.status, now - shadow.started)
            if self.access_log is not None:
                self.access_log.completed(shadow)
            backend = shadow.backend
            breaker = backend.breaker
            if breaker.open_until or breaker.failures or breaker.probing:
                breaker.record_success()
                self._breaker_changed(backend)
                breaker_closed(backend, bool(shadow.probe), now)
        self._end(shadow)

    def response_failed(self, shadow: Shadow, exc: UpstreamError) -> None:
        """The mirror's connection failed. A request without a body whose reused connection
        turns out stale is resent once on another connection."""
        if (
            isinstance(exc, StaleConnection)
            and shadow.reused
            and not shadow.retried
            and not shadow.head.has_body
            and not shadow.finished
        ):
            shadow.retried = True
            self._release(shadow, False)
            self._connect(shadow)
            return
        reason, breaker = classify(exc)
        self._failed(shadow, reason, breaker=breaker)
        self._release(shadow, False)
        self._end(shadow)

    # --- in flight (rule 3) ---------------------------------------------------------------------------

    def _start(self, shadow: Shadow) -> None:
        shadow.slot = True
        shadow.backend.inflight += 1
        self._inflight.add(shadow)
        deadline = shadow.deadline
        if deadline is not None and (self._sweeper is None or deadline < self._sweep_at):
            self.arm(deadline)
        self._connect(shadow)

    def _connect(self, shadow: Shadow) -> None:
        """A pooled connection now (no task, no coroutine), else a task that dials one."""
        conn = self.pool.take_idle(shadow.key)
        if conn is not None:
            self._attach(shadow, conn, True)
            return
        task = (self._loop or self._get_loop()).create_task(self._dial(shadow))
        shadow.task = task
        self._dialing.add(task)
        task.add_done_callback(partial(self._dial_done, shadow))

    async def _dial(self, shadow: Shadow) -> None:
        try:
            conn, reused = await self.pool.acquire(shadow.key)
        except UpstreamError as exc:
            reason, breaker = classify(exc)
            self._failed(shadow, reason, breaker=breaker)
            return  # _dial_done frees the slot
        shadow.task = None  # handed over: the callbacks own the mirror from here on
        if shadow.finished:  # cannot happen (every stop cancels us), but never leak a connection
            conn.abort()
            self.pool.release(conn, False)
            self._end(shadow)
            return
        self._attach(shadow, conn, reused)

    def _dial_done(self, shadow: Shadow, task: "asyncio.Task[None]") -> None:
        self._dialing.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the one catch-all of the task: a bug
            log.error("bug in mirror to %s", shadow.backend.name, exc_info=task.exception())
            self._drop(shadow, _INTERNAL_ERROR)
        if shadow.task is task:  # it ended without handing the mirror over: failed, cancelled or a bug
            shadow.task = None
            self._drop(shadow, _SHUTDOWN)  # no-op unless it was cancelled before finishing
            self._release(shadow, False)
            self._end(shadow)

    def _attach(self, shadow: Shadow, conn: UpstreamConnection, reused: bool) -> None:
        shadow.conn = conn  # owned from here on: released whatever happens next
        shadow.reused = reused
        try:
            shadow.attach(conn, self._cork)
        except Exception:  # the one catch-all of a mirror: a bug
            log.exception("bug in mirror to %s", shadow.backend.name)
            self._drop(shadow, _INTERNAL_ERROR)
            self._release(shadow, False)
            self._end(shadow)
            return
        if not shadow.retried:
            shadow.series.sent += 1

    def _stop(self, shadow: Shadow) -> None:
        """Stop an in-flight mirror that already has its outcome: cancel its dial or abort its
        connection, and free its slot."""
        task = shadow.task
        if task is not None:
            task.cancel()  # _dial_done frees the slot
            return
        self._release(shadow, False)
        self._end(shadow)

    def _end(self, shadow: Shadow) -> None:
        """Free the slot of an in-flight mirror (once) and start queued mirrors."""
        if not shadow.slot:
            return
        shadow.slot = False
        self._inflight.discard(shadow)
        backend = shadow.backend
        backend.inflight -= 1
        if backend.queue and not backend.pump_scheduled:
            # Not now: we may be inside the parser callback of the connection just released, and
            # the next mirror could take that very connection (rule 8).
            backend.pump_scheduled = True
            loop = self._loop
            assert loop is not None
            loop.call_soon(self._pump, backend)

    def _pump(self, backend: Backend) -> None:
        """Start queued mirrors, oldest first, while the backend has free slots: ``_PUMP_BATCH`` at
        most per loop turn (the rest on a later one, after the loop has served what else is
        ready), their heads written back to back (rule 8); expired ones are dropped."""
        backend.pump_scheduled = False
        loop = self._loop or self._get_loop()
        now = loop.time()
        cork: list[tuple[asyncio.Transport, bytes]] = []
        self._cork = cork
        try:
            self._pump_some(backend, loop, now)
        finally:
            self._cork = None
            for transport, head in cork:  # back to back: the backend's host is woken once for all
                if not transport.is_closing():
                    transport.write(head)

    def _pump_some(self, backend: Backend, loop: asyncio.AbstractEventLoop, now: float) -> None:
        started = 0
        while backend.queue and backend.inflight < self._cap and not self._closed:
            if started == _PUMP_BATCH:
                backend.pump_scheduled = True
                loop.call_soon(self._pump, backend)
                return
            shadow = backend.queue.popleft()
            if shadow.deadline is not None and shadow.deadline <= now:
                self._drop(shadow, _TIMEOUT)
            else:
                self._start(shadow)
                started += 1

    def _sweep(self) -> None:
        """Time out the in-flight mirrors whose deadline has passed; re-arm (rule 7)."""
        self._sweeper = None
        self._debug = self._watching()
        now = (self._loop or self._get_loop()).time()
        expired = []
        earliest = None
        for shadow in self._inflight:
            deadline = shadow.deadline
            if deadline is None:
                continue
            if deadline <= now:
                expired.append(shadow)
            elif earliest is None or deadline < earliest:
                earliest = deadline
        for shadow in expired:
            if shadow.slot:
                self._failed(shadow, _TIMEOUT, breaker=True)
                self._stop(shadow)
        if earliest is not None:
            self.arm(max(earliest, now + _GRAIN))

    def _release(self, shadow: Shadow, reusable: bool) -> None:
        conn = shadow.detach()
        if conn is None:
            return
        if not reusable:
            conn.abort()  # rule 4: drop unsent bytes with the socket
        self.pool.release(conn, reusable)

    # --- outcomes: every mirror ends exactly once (rule 3; completion is ``response_complete``) ------

    def _failed(self, shadow: Shadow, reason: DropReason | str, *, breaker: bool) -> None:
        if shadow.finished:
            return
        if breaker:
            backend = shadow.backend
            now = (self._loop or self._get_loop()).time()
            backend.breaker.record_failure(now)
            self._breaker_changed(backend)
            breaker_failed(backend, str(reason), bool(shadow.probe), now)
        self._drop(shadow, reason)

    def _drop(self, shadow: Shadow, reason: DropReason | str) -> None:
        if shadow.finished:
            return
        shadow.finished = True
        shadow.release_buffers()
        shadow.series.count_dropped(reason)
        if shadow.compared:  # not a mismatch: counted as ``mirror_failed`` with its reason (rule 11)
            cast(CompareShadow, shadow).mirror_failed(str(reason))
        if shadow.probe:
            shadow.backend.breaker.probe_done(shadow.probe)
            self._breaker_changed(shadow.backend)
        if self._debug:  # DEBUG, or the mirror access log (rule 9)
            access_log = self.access_log
            if access_log is not None:
                access_log.dropped(shadow, reason)
                if not log.isEnabledFor(logging.DEBUG):
                    return
            self._droplog.drop(self._loop or self._get_loop(), shadow.backend.name, reason, shadow.head.prefix)

    # --- shutdown (rule 6) and introspection ----------------------------------------------------------

    def close(self) -> None:
        """Drop every queued mirror and stop every in-flight one; later submits do nothing."""
        self._closed = True
        for backend in self._backends.values():
            while backend.queue:
                shadow = backend.queue.popleft()
                self._drop(shadow, _SHUTDOWN)
        for shadow in list(self._inflight):
            self._drop(shadow, _SHUTDOWN)
            self._stop(shadow)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for backend in self._backends.values():
            if backend.breaker_timer is not None:
                backend.breaker_timer.cancel()
                backend.breaker_timer = None
        self._droplog.close(self._loop)

    async def shutdown(self) -> None:
        """``close()``, wait for the cancelled dials to finish, close the mirror pool."""
        self.close()
        while self._dialing:
            await asyncio.wait(list(self._dialing))
        self.pool.close()
