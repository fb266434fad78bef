"""The primary's side of response comparison: what an exchange whose mirrors compare responses
does beyond relaying (``docs/mirroring.md``, "Comparing responses").

``CapturingRelay`` is mixed in front of ``Exchange`` as ``exchange.ComparedExchange``; an
exchange becomes one (``Exchange._compared``) only when the dispatcher returned a capture for it,
so the relay callbacks of every other exchange do no more work than before.

Rules:
1. Each callback hands the capture what it relays (the head as received, each body chunk), then
   relays exactly as ``Exchange`` does: the capture keeps references, never copies more than its
   limit, never writes, pauses or waits (``mirror/capture.py`` rule 1).
2. ``complete`` is called when the whole response was relayed; ``end`` once, when the exchange
   finishes, whatever its outcome (a response that failed or was cut is never compared).
"""

from mirrorgate.dataplane.state import ResponseCapture
from mirrorgate.upstream.connection import ResponseHead


class CapturingRelay:
    """The ``ResponseSink`` callbacks of a compared exchange; ``capture`` is ``Exchange``'s slot."""

    __slots__ = ()

    capture: ResponseCapture
    finished: bool  # ``Exchange.finished``

    def on_response_head(self, rh: ResponseHead) -> None:
        self.capture.head(rh)
        super().on_response_head(rh)  # type: ignore[misc]

    def on_response_body(self, chunk: bytes) -> None:
        self.capture.body(chunk)
        super().on_response_body(chunk)  # type: ignore[misc]

    def on_response_complete(self, reusable: bool) -> None:
        self.capture.complete()
        super().on_response_complete(reusable)  # type: ignore[misc]

    def finish(self) -> None:
        if not self.finished:
            self.capture.end()
        super().finish()  # type: ignore[misc]
