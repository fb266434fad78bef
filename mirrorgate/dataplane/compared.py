"""The exchange's mirror calls beyond the plain path (MirrorPolicy settings, comparing), and the
primary's side of response comparison (``docs/mirroring.md``, "Comparing responses").

``MirrorCalls`` is a mixin of ``Exchange`` (``exchange.py`` rules 4 and 9): every mirror call
of a rule or backendRef whose mirrors have MirrorPolicy settings or compare, and the filtered
path's ``submit``. ``CapturingRelay`` is mixed in front of ``Exchange`` as
``exchange.ComparedExchange``; an exchange becomes one (``Exchange._compared``) only when the
dispatcher returned a capture for it, so the relay callbacks of every other exchange do no more
work than before.

Rules:
1. The plain path (``Exchange._route_plain``) branches once, on ``Plan.mirror_policy``; a rule
   whose mirrors have neither settings nor ``compare`` never calls into ``MirrorCalls``.
2. Mirrors with settings are sampled by keys read from the client's target and headers as
   received (``shapes`` and ``client``); mirrors that compare go through ``start_compared``/
   ``submit_compared`` (with their shapes: a compared mirror comes from a MirrorPolicy), the
   request as the client sent it being the mismatch record.
3. Each ``CapturingRelay`` callback hands the capture what it relays (the head as received,
   each body chunk), then relays exactly as ``Exchange`` does: the capture keeps references,
   never copies more than its limit, never writes, pauses or waits (``mirror/capture.py`` rule 1).
4. ``complete`` is called when the whole response was relayed; ``end`` once, when the exchange
   finishes, whatever its outcome (a response that failed or was cut is never compared).
"""

from mirrorgate.dataplane.matcher import Plan
from mirrorgate.dataplane.state import BodyTee, GatewayState, MirrorDispatcher, ResponseCapture, Shapes
from mirrorgate.ir.table import Mirror
from mirrorgate.upstream.connection import ResponseHead

Header = tuple[bytes, bytes]
_UPGRADE = "upgrade"  # the mirrors' drop reason (``mirror.config.DropReason.UPGRADE``)


class MirrorCalls:
    """Rules 1-2; the attributes are ``Exchange``'s."""

    __slots__ = ()

    state: GatewayState
    method: bytes
    target: bytes
    host: bytes
    route: str
    headers: list[Header]
    has_body: bool
    content_length: int | None
    request_id: bytes
    upgrade: bool
    capture: ResponseCapture

    def _tee(self, tee: BodyTee | None) -> None:
        raise NotImplementedError  # ``Exchange._tee``

    def _compared(self, started: tuple[BodyTee | None, ResponseCapture | None]) -> None:
        raise NotImplementedError  # ``Exchange._compared``

    def _policy_mirrors(self, dispatcher: MirrorDispatcher, plan: Plan, parts: list[bytes], host_at: int) -> None:
        """``_route_plain``'s mirrors when one has MirrorPolicy settings or compares (rule 1):
        sampled by their keys, heads of their own made only for the admitted ones, compared."""
        shapes = plan.mirror_shapes
        if shapes is None:  # (some mirror compares)
            admitted = dispatcher.admit(plan.mirrors, self)
        else:
            admitted = dispatcher.admit_shaped(plan.mirrors, shapes, self.target, self.headers, self)
        if admitted is None:
            return
        is_head = self.method == b"HEAD"
        if plan.compare:
            record = (self.method, self.target, self.headers, self.request_id)  # for a mismatch record
            start = dispatcher.start_compared
            self._compared(start(admitted, parts, host_at, self.has_body, self.content_length, is_head, self, record))
        else:
            shaped = dispatcher.start_shaped
            self._tee(shaped(admitted, parts, host_at, self.has_body, self.content_length, is_head, self))

    def _submit_mirrors(
        self, mirrors: tuple[Mirror, ...], target: bytes, headers: list[Header], shapes: Shapes | None, compare: bool
    ) -> None:
        """The filtered path's mirror hook (``exchange.py`` rule 4), after the filters before it."""
        mirror = self.state.mirror
        assert mirror is not None
        client = (self.target, self.headers) if shapes is not None else None  # the sampling keys' source
        if self.upgrade:  # a tunnel is never mirrored (``exchange.py`` rule 8)
            mirror.refuse(mirrors, _UPGRADE, target, headers, shapes, client, self)
            return
        method, has_body = self.method, self.has_body
        if compare:  # the request as the client sent it, for a mismatch record
            had = self.capture if isinstance(self, CapturingRelay) else None
            record = (method, self.target, self.headers, self.request_id)
            submit = mirror.submit_compared
            self._compared(submit(mirrors, method, target, list(headers), has_body, record, shapes, client, had, self))
        else:
            self._tee(mirror.submit(mirrors, method, target, list(headers), has_body, shapes, client, self))


class CapturingRelay:
    """The ``ResponseSink`` callbacks of a compared exchange; ``capture`` is ``Exchange``'s slot."""

    __slots__ = ()

    capture: ResponseCapture
    finished: bool  # ``Exchange.finished``

    def on_response_head(self, rh: ResponseHead) -> None:
        self.capture.head(rh)
        self._relay_head(rh)

    def on_response_body(self, chunk: bytes) -> None:
        self.capture.body(chunk)
        self._relay_body(chunk)

    def on_response_complete(self, reusable: bool) -> None:
        self.capture.complete()
        self._relay_complete(reusable)

    def finish(self) -> None:
        if not self.finished:
            self.capture.end()
        self._relay_finish()

    # ``Exchange``'s own callbacks, set by ``ComparedExchange``: called as methods of their own,
    # not through ``super()``, which makes an object per call.
    def _relay_head(self, rh: ResponseHead) -> None:
        raise NotImplementedError

    def _relay_body(self, chunk: bytes) -> None:
        raise NotImplementedError

    def _relay_complete(self, reusable: bool) -> None:
        raise NotImplementedError

    def _relay_finish(self) -> None:
        raise NotImplementedError
