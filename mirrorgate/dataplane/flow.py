"""Read-side flow control of one transport, shared by several reasons to pause.

Owns: ``ReadGate``, which pauses a transport's reading while at least one reason holds and
resumes it when the last reason is released. Reasons are bit flags so that, e.g., a pipelined
backlog and a slow upstream can both hold the client's reading without resuming each other's.

Rules: idempotent per reason; a closing transport is never touched.
"""

import asyncio

PIPELINE = 1  # requests queued behind the running exchange
BODY_BUFFER = 2  # request body buffered before an upstream connection is attached
UPSTREAM_WRITE = 4  # the upstream transport's write buffer is above its high-water mark

HIGH_WATER = 64 * 1024  # bytes of request body buffered before reading pauses


class ReadGate:
    __slots__ = ("reasons", "transport")

    def __init__(self, transport: asyncio.Transport | None = None) -> None:
        self.transport = transport
        self.reasons = 0

    def pause(self, reason: int) -> None:
        if self.reasons & reason:
            return
        was = self.reasons
        self.reasons |= reason
        t = self.transport
        if not was and t is not None and not t.is_closing():
            t.pause_reading()

    def resume(self, reason: int) -> None:
        if not self.reasons & reason:
            return
        self.reasons &= ~reason
        t = self.transport
        if not self.reasons and t is not None and not t.is_closing():
            t.resume_reading()
