"""The dispatcher's half for mirrors with MirrorPolicy settings (``policy.py``): keyed sampling,
heads of their own, per-mirror limits, and the making of every mirror's ``Shadow`` that is not
on the plain path (compared mirrors included: they come from a MirrorPolicy).

``Shaping`` is a mixin between ``Admission`` and ``Comparing``/``Dispatcher`` (the dispatcher's
``__init__`` sets every attribute). Mirrors without settings never come here: the data plane
branches once, on a precomputed flag (``dataplane.matcher.Plan.mirror_policy``: some mirror has
``shapes`` or compares), and a request whose mirrors have neither runs ``admit``/``start``
exactly as before.

Rules:
1. Sampling (admission rule 4): a ``sample_by`` mirror fires iff its keyed draw
   (``Shape.draw``) is below its ``ppm``; a mirror without a key, or whose key is missing with
   ``Random``, takes the request's uniform draw (made once, when first needed, and shared as in
   dispatcher rule 1); missing with ``Skip``: sampled out. The checks after sampling are
   ``admit``'s (``_gate``).
2. Heads: a head of its own (``Shape.head``) is built only for an admitted mirror that needs one,
   the request's shared head only when an admitted mirror uses it; a drop at admission builds
   nothing (admission rule 1).
3. Limits: an admitted mirror with a ``timeout`` or lag budget of its own is a
   ``PolicyShadow`` (``shadow.py`` rule 7); its deadline is taken from its own timeout.
4. The mirror access log (dispatcher rule 9) sees these mirrors as it sees the others: a drop at
   admission (``_gate``) or over capacity (``_start_with``) is refused with the primary
   (``request``), whose Host the line turns into the mirror's own (``Mirror.host``); a started
   mirror is tracked with the primary, and its line reads method, target and Host from the
   head it was sent with: its own head when it has one.
5. Comparing (``comparing.py``): a request that compares passes its ``PrimaryCapture`` to
   ``_start_with``; each of its admitted mirrors with ``compare`` is a ``CompareShadow`` (a
   ``PolicyShadow``: its policy's timeout and lag budget, else the gateway's as of its
   admission) that is also its comparison with the primary, built with the same head, sampling and limits as rules
   1-3 give it; its other mirrors are made as without comparing.
"""

from collections.abc import Sequence

from mirrorgate.ir.table import Mirror
from mirrorgate.mirror.admission import (
    _BREAKER_OPEN,
    _DENY,
    _NO_ENDPOINTS,
    _OVER_CAPACITY,
    _PROBE,
    Admission,
    Admitted,
    Backend,
    Header,
    Shapes,
)
from mirrorgate.mirror.backend import secured_endpoint
from mirrorgate.mirror.board import Board
from mirrorgate.mirror.capture import CompareShadow, PrimaryCapture
from mirrorgate.mirror.head import MirrorHead, build_head, head_from_parts, request_of_parts
from mirrorgate.mirror.metrics import MirrorSeries
from mirrorgate.mirror.mirrorlog import MirroredRequest
from mirrorgate.mirror.policy import Shape
from mirrorgate.mirror.shadow import PolicyShadow, Shadow, ShadowOwner, Tee


class Shaping(Admission):
    """Rules 1-5; see ``Dispatcher``."""

    __slots__ = ()

    board: Board  # the comparisons' (rule 5; set by the dispatcher's ``__init__``)

    def admit_shaped(
        self,
        mirrors: tuple[Mirror, ...],
        shapes: Shapes,
        target: bytes,
        headers: Sequence[Header],
        request: MirroredRequest | None = None,
    ) -> list[Admitted] | None:
        """``admit`` for mirrors with MirrorPolicy settings (rule 1): ``shapes[i]`` is the
        ``Shape`` of ``mirrors[i]`` (None: none); ``target`` and ``headers`` are the client's
        request as received (the sampling key is read from them); ``request`` the primary, for
        the mirror access log (rule 4). What is admitted goes to ``start_shaped`` or ``submit``
        at once."""
        if self._closed:
            return None
        u = -1
        admitted: list[Admitted] | None = None
        for mirror, shape in zip(mirrors, shapes, strict=True):
            series, backend, u, sampled = self._sample(mirror, shape, target, headers, u)
            if not sampled:
                continue
            probe = self._gate(mirror, series, backend, request)
            if probe >= 0:
                if admitted is None:
                    admitted = [(mirror, series, backend, probe, shape)]
                else:
                    admitted.append((mirror, series, backend, probe, shape))
        return admitted

    def _gate(self, mirror: Mirror, series: MirrorSeries, backend: Backend, request: MirroredRequest | None) -> int:
        """``admit``'s checks after sampling, for one mirror: its probe number (0: none), or -1
        when it is dropped (counted, and logged as ``admit``'s drops are: admission rule 4)."""
        if backend.blocked:
            reason = _BREAKER_OPEN
        elif not mirror.endpoints and mirror.external is None:
            reason = _NO_ENDPOINTS
        elif (queued := len(backend.queue)) >= self._max_queue and backend.inflight + queued >= self._cap:
            reason = _OVER_CAPACITY
        else:
            breaker = backend.breaker
            if not breaker.open_until:
                return 0
            verdict = breaker.check(self._now())
            if verdict is _DENY:
                self._breaker_changed(backend)
                self._refuse(backend, series, _BREAKER_OPEN, mirror, request)
                return -1
            if verdict is not _PROBE:
                return 0
            probe = breaker.probe
            self._breaker_changed(backend)  # probing: blocked until the probe's verdict
            return probe
        self._refuse(backend, series, reason, mirror, request)
        return -1

    def _admit_any(
        self,
        mirrors: tuple[Mirror, ...],
        target: bytes,
        headers: list[Header],
        shapes: Shapes | None,
        client: tuple[bytes, Sequence[Header]] | None,
        request: MirroredRequest | None,
    ) -> list[Admitted] | None:
        """``admit``, or ``admit_shaped`` with the sampling keys read from ``client`` (default:
        ``target`` and ``headers``) when there are ``shapes``; for ``submit`` and ``submit_compared``."""
        if shapes is None:
            return self.admit(mirrors, request)
        key_target, key_headers = client if client is not None else (target, headers)
        return self.admit_shaped(mirrors, shapes, key_target, key_headers, request)

    def _shared_head(
        self, admitted: list[Admitted], method: bytes, target: bytes, headers: list[Header], has_body: bool
    ) -> MirrorHead | None:
        """The request's shared head, built only when an admitted mirror uses it (rule 2)."""
        if any(shape is None or not shape.own_head for _, _, _, _, shape in admitted):
            return build_head(method, target, headers, has_body, self.config.shadow_host_suffix)
        return None

    def _submit_shaped(
        self,
        mirrors: tuple[Mirror, ...],
        method: bytes,
        target: bytes,
        headers: list[Header],
        has_body: bool,
        shapes: Shapes,
        client: tuple[bytes, Sequence[Header]] | None,
        request: MirroredRequest | None,
    ) -> Tee | None:
        """``Dispatcher.submit`` for mirrors with ``shapes`` (rule 2)."""
        admitted = self._admit_any(mirrors, target, headers, shapes, client, request)
        if admitted is None:
            return None
        shared = self._shared_head(admitted, method, target, headers, has_body)
        return self._start_with(admitted, shared, has_body, (method, target, headers), request)

    def start_shaped(
        self,
        admitted: list[Admitted],
        parts: list[bytes],
        host_at: int,
        has_body: bool,
        content_length: int | None,
        is_head: bool,
        request: MirroredRequest | None = None,
    ) -> Tee | None:
        """``start`` for what ``admit_shaped`` let through (rule 2). ``request``: the primary,
        for the mirror access log (rule 4)."""
        shared, own = self._heads(admitted, parts, host_at, has_body, content_length, is_head)
        return self._start_with(admitted, shared, has_body, own, request)

    def _heads(
        self,
        admitted: list[Admitted],
        parts: list[bytes],
        host_at: int,
        has_body: bool,
        content_length: int | None,
        is_head: bool,
    ) -> tuple[MirrorHead | None, tuple[bytes, bytes, list[Header]] | None]:
        """From the primary's encoded head (``start``'s arguments): the shared head, made only if
        an admitted mirror uses it, and the request's lines parsed back only if one needs a head
        of its own (rule 2)."""
        shared = own = None
        for _, _, _, _, shape in admitted:
            if shape is not None and shape.own_head:
                own = own or request_of_parts(parts)
            elif shared is None:
                shadow = self.config.shadow_host_suffix
                shared = head_from_parts(parts, host_at, has_body, content_length, shadow, is_head)
        return shared, own

    def _start_with(
        self,
        admitted: list[Admitted],
        head: MirrorHead | None,
        has_body: bool,
        forwarded: tuple[bytes, bytes, list[Header]] | None,
        request: MirroredRequest | None,
        primary: PrimaryCapture | None = None,
    ) -> Tee | None:
        raise NotImplementedError  # ``Dispatcher._start_with``

    def _shaped(
        self,
        shape: Shape | None,
        mirror: Mirror,
        head: MirrorHead | None,
        forwarded: tuple[bytes, bytes, list[Header]] | None,
        has_body: bool,
        backend: Backend,
        series: MirrorSeries,
        now: float,
        probe: int,
        i: int,
        primary: PrimaryCapture | None,
    ) -> Shadow:
        """The ``Shadow`` of an admitted mirror with MirrorPolicy settings (``shape``) or of a
        request that compares (``primary``): its own head when its Host or headers differ, its
        own deadline and lag budget when it has them (rule 3), a ``CompareShadow`` (its own
        comparison with ``primary``) when it compares (rule 5)."""
        timeout = budget = None
        if shape is not None:
            if shape.own_head:
                assert forwarded is not None
                method, target, headers = forwarded
                head = shape.head(method, target, headers, has_body, self.config.shadow_host_suffix)
            timeout = shape.timeout
            budget = shape.lag_budget
        assert head is not None
        if mirror.tls is None and mirror.external is None:
            endpoints = mirror.endpoints
            endpoint, key = endpoints[i % len(endpoints)], None
        else:
            endpoint, key = secured_endpoint(mirror, i)
        owner: ShadowOwner = self  # type: ignore[assignment]  # the ``Dispatcher`` this mixin is part of
        deadline = None if has_body else now + (self._timeout if timeout is None else timeout)
        if primary is not None and mirror.compare is not None:
            lag = self.config.body_lag_budget if budget is None else budget
            settings = mirror.compare
            return CompareShadow(
                owner,
                head,
                endpoint,
                backend,
                series,
                now,
                probe,
                deadline,
                key,
                timeout,
                lag,
                primary,
                mirror,
                settings,
            )
        if timeout is None and budget is None:
            return Shadow(owner, head, endpoint, backend, series, now, probe, deadline, key)
        budget = self.config.body_lag_budget if budget is None else budget
        return PolicyShadow(owner, head, endpoint, backend, series, now, probe, deadline, key, timeout, budget)
