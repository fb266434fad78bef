"""Admission of mirrors (dispatcher rules 1-2): the sampling draw, the breaker gate and the
capacity check, and the lookups of each mirror's records.

``Admission`` is the admission half of ``Dispatcher`` (a mixin: the dispatcher's ``__init__``
sets the attributes declared here); ``Dispatcher.start`` sends or queues what ``admit`` let through.

Rules:
1. A drop at admission allocates nothing: ``admit`` only counts; the head and each ``Shadow`` are
   made by ``Dispatcher.start``, only for what was admitted.
2. ``backend.blocked`` is the breaker as admission sees it: kept up to date on every breaker
   change (``_breaker_changed``) and by one timer at the end of the open period, so that dropping
   a mirror to an open breaker reads one flag.
3. The per-backend state and series are looked up once per mirror name (``_routes``).
4. A drop at admission is counted; it is logged only when ``_debug`` is up (DEBUG is enabled, or
   the mirror access log is on: ``_watching``): at DEBUG (``logs.py``) and as a mirror
   access-log line (``mirrorlog.py``; ``request`` is the primary, None when the caller gave none).
5. Mirrors with MirrorPolicy settings (``policy.py``) go through ``admit_shaped`` with their
   ``Shape``s, precomputed by the caller: a ``sample_by`` mirror draws ``key_draw`` of the
   request's key instead of the uniform draw (a missing key: the uniform draw, or sampled out
   with ``Skip``); the rest of admission is ``admit``'s. ``admit`` itself never looks at a shape.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from random import Random

from mirrorgate.ir.table import PPM, Mirror
from mirrorgate.mirror.backend import BackendState
from mirrorgate.mirror.breaker import Breaker, Verdict
from mirrorgate.mirror.config import DropReason, MirrorConfig
from mirrorgate.mirror.logs import DropLog
from mirrorgate.mirror.metrics import MirrorSeries
from mirrorgate.mirror.mirrorlog import MirroredRequest, MirrorLog, RequestView
from mirrorgate.mirror.policy import Shape
from mirrorgate.mirror.shadow import Shadow

log = logging.getLogger("mirrorgate.mirror")

Backend = BackendState[Shadow]  # a backend's state, its queue holding Shadows
# A mirror ``admit`` let through: its records, its probe number (0: not a probe, breaker rule 3)
# and its MirrorPolicy settings (None: none, ``policy.py``)
Admitted = tuple[Mirror, MirrorSeries, Backend, int, Shape | None]
Header = tuple[bytes, bytes]
Shapes = tuple[Shape | None, ...]
_PPM_BITS = PPM.bit_length()
_DENY, _PROBE = Verdict.DENY, Verdict.PROBE  # enum attribute lookups are slow in 3.11
# Plain ``str`` values for the hot paths (``MirrorSeries.dropped`` is keyed by value).
_NO_ENDPOINTS: str = DropReason.NO_ENDPOINTS.value
_BREAKER_OPEN: str = DropReason.BREAKER_OPEN.value
_OVER_CAPACITY: str = DropReason.OVER_CAPACITY.value


class Admission:
    """Rules 1-2 of the dispatcher; see ``Dispatcher``."""

    __slots__ = ("_debug", "_loop", "access_log")

    config: MirrorConfig
    rng: Random
    _getrandbits: Callable[[int], int] | None
    _closed: bool
    _debug: bool  # drops are logged: DEBUG for ``mirrorgate.mirror`` (``logs.py`` rule 1) or ``access_log``
    access_log: MirrorLog | None  # the mirror access log (``mirrorlog.py``), None when off
    _droplog: DropLog
    _cap: int
    _max_queue: int
    _timeout: float
    _routes: dict[str, tuple[MirrorSeries, Backend]]
    _series: dict[tuple[str, str], MirrorSeries]
    _backends: dict[str, Backend]
    _loop: asyncio.AbstractEventLoop | None  # the running loop, as of the last submit

    def admit(self, mirrors: tuple[Mirror, ...], request: MirroredRequest | None = None) -> list[Admitted] | None:
        """Rules 1-2 for one request, up to the capacity check: one draw, then each mirror is
        sampled out, dropped (and counted) or admitted. None when none is admitted, the common
        case under overload: the caller then builds no head at all. What is admitted must be
        passed to ``start`` at once (before anything else runs on the loop). The draw is made
        when the first mirror below 100% is looked at: all of the request's mirrors share it,
        and a request whose mirrors all take everything needs none. ``request``: the primary, for
        the mirror access log (rule 4)."""
        if self._closed:
            return None
        u = -1
        admitted: list[Admitted] | None = None
        routes = self._routes
        for mirror in mirrors:
            route = routes.get(mirror.name)
            if route is None or route[1].name != mirror.backend:
                route = self._route(mirror)
            series, backend = route
            ppm = mirror.ppm
            if ppm < PPM:
                if u < 0:
                    u = self._draw()
                if u >= ppm:
                    series.sampled_out += 1
                    continue
            if backend.blocked:  # the breaker is open (a flag: no clock read on this path)
                reason = _BREAKER_OPEN
            elif not mirror.endpoints and mirror.external is None:
                reason = _NO_ENDPOINTS
            elif (queued := len(backend.queue)) >= self._max_queue and backend.inflight + queued >= self._cap:
                # no place: the queue is full and every free slot is a queued mirror's (rule 8)
                reason = _OVER_CAPACITY  # (half-open: the probe waits for a mirror that has a place)
            else:
                probe = 0
                breaker = backend.breaker
                if breaker.open_until:  # half-open: the open period is over and no probe is running
                    verdict = breaker.check(self._now())
                    if verdict is _DENY:  # cannot happen while ``blocked`` is up to date
                        self._breaker_changed(backend)
                        self._refuse(backend, series, _BREAKER_OPEN, mirror, request)
                        continue
                    if verdict is _PROBE:
                        probe = breaker.probe
                        self._breaker_changed(backend)  # probing: blocked until the probe's verdict
                if admitted is None:
                    admitted = [(mirror, series, backend, probe, None)]
                else:
                    admitted.append((mirror, series, backend, probe, None))
                continue
            dropped = series.dropped  # _refuse(), inlined: the path of every mirror under overload
            dropped[reason] = dropped.get(reason, 0) + 1
            if self._debug:
                self._log_drop(backend, reason, mirror, request)
        return admitted

    def refuse(
        self,
        mirrors: tuple[Mirror, ...],
        reason: str,
        target: bytes = b"",
        headers: list[Header] | None = None,
        shapes: Shapes | None = None,
        client: tuple[bytes, Sequence[Header]] | None = None,
        request: MirroredRequest | None = None,
    ) -> None:
        """Count each mirror of a request that is never mirrored (an upgrade) as dropped with
        ``reason``, after the request's sampling draw as in ``admit`` (a mirror sampled out is
        not a drop); no breaker, capacity or endpoint is looked at. ``target``, ``headers``
        (after the rule's filters), ``shapes``, ``client`` and ``request``: as
        ``Dispatcher.submit``'s (the sampling keys are read from ``client``, the mirror access
        log's target and Host from ``target`` and ``headers``)."""
        if self._closed:
            return
        if request is not None and headers is not None and self.access_log is not None:
            request = RequestView.of(request, request.method, target, headers)
        key_target, key_headers = client if client is not None else (target, headers or ())
        u = -1
        for i, mirror in enumerate(mirrors):
            shape = shapes[i] if shapes is not None else None
            series, backend, u, sampled = self._sample(mirror, shape, key_target, key_headers, u)
            if sampled:
                self._refuse(backend, series, reason, mirror, request)

    def _sample(
        self, mirror: Mirror, shape: Shape | None, target: bytes, headers: Sequence[Header], u: int
    ) -> tuple[MirrorSeries, Backend, int, bool]:
        """Rule 1 for one mirror of a request, its ``shape`` (MirrorPolicy settings) included:
        its records, the request's uniform draw as it is now (``u``; -1: not drawn yet), and
        whether the mirror is in the sample (one that is not is counted as sampled out). A
        ``sample_by`` key draws its hash (``policy.key_draw``); a missing key the uniform draw
        (``Random``) or nothing (``Skip``). ``admit`` has this inline (the plain hot path)."""
        route = self._routes.get(mirror.name)
        if route is None or route[1].name != mirror.backend:
            route = self._route(mirror)
        series, backend = route
        ppm = mirror.ppm
        # the keyed draw (-1: no key, or missing with Random; PPM: missing with Skip)
        draw = shape.draw(target, headers) if shape is not None and shape.source is not None else -1
        if draw < 0 and ppm < PPM:
            if u < 0:
                u = self._draw()
            draw = u
        if draw >= ppm:
            series.sampled_out += 1
            return series, backend, u, False
        return series, backend, u, True

    def _draw(self) -> int:
        """The request's uniform draw in [0, PPM) (rule 1)."""
        bits = self._getrandbits
        if bits is None:
            return self.rng.randrange(PPM)
        u = bits(_PPM_BITS)
        while u >= PPM:
            u = bits(_PPM_BITS)
        return u

    def _breaker_changed(self, backend: Backend) -> None:
        """Bring ``backend.blocked`` up to date after any change of its breaker, and keep one timer
        for the end of the open period (when it fires, mirrors may probe again)."""
        breaker = backend.breaker
        timer = backend.breaker_timer
        if timer is not None:
            timer.cancel()
            backend.breaker_timer = None
        if not breaker.open_until:
            backend.blocked = False
            return
        if breaker.probing:
            backend.blocked = True
            return
        loop = self._get_loop()
        backend.blocked = loop.time() < breaker.open_until
        if backend.blocked and not self._closed:
            backend.breaker_timer = loop.call_at(breaker.open_until, self._breaker_changed, backend)

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the dispatcher runs on, looked up once: ``asyncio.get_running_loop()`` makes a
        ``getpid`` system call each time (its fork check), which the hot paths cannot afford."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._debug = self._watching()  # the level as set up at startup
        return loop

    def _watching(self) -> bool:
        """Whether drops are logged (``_debug``): DEBUG is enabled, or the mirror access log is on."""
        return self.access_log is not None or log.isEnabledFor(logging.DEBUG)

    def _now(self) -> float:
        return (self._loop or self._get_loop()).time()

    def _refuse(
        self,
        backend: Backend,
        series: MirrorSeries,
        reason: str,
        mirror: Mirror,
        request: MirroredRequest | None,
    ) -> None:
        dropped = series.dropped  # series.count_dropped(reason), inlined
        dropped[reason] = dropped.get(reason, 0) + 1
        if self._debug:
            self._log_drop(backend, reason, mirror, request)

    def _log_drop(
        self,
        backend: Backend,
        reason: DropReason | str,
        mirror: Mirror,
        request: MirroredRequest | None,
    ) -> None:
        """A drop at admission (no head built yet), only when ``_debug`` (rule 4): its mirror
        access-log line, and ``logs.py`` rule 2."""
        access_log = self.access_log
        if access_log is not None:
            access_log.refused(mirror, request, reason)
            if not log.isEnabledFor(logging.DEBUG):
                return
        self._droplog.drop(self._loop or self._get_loop(), backend.name, reason)

    # --- lookups ---------------------------------------------------------------------------------

    def _route(self, mirror: Mirror) -> tuple[MirrorSeries, Backend]:
        route = self._routes[mirror.name] = (self._series_for(mirror), self._backend(mirror.backend))
        return route

    def _series_for(self, mirror: Mirror) -> MirrorSeries:
        key = (mirror.name, mirror.backend)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = MirrorSeries(mirror.name, mirror.backend)
        return series

    def _backend(self, name: str) -> Backend:
        backend = self._backends.get(name)
        if backend is None:
            cfg = self.config
            backend = self._backends[name] = BackendState(
                name, Breaker(cfg.breaker_failures, cfg.breaker_open_duration)
            )
        return backend
