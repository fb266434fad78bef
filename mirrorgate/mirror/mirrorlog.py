"""The mirror access log (``run --mirror-access-log``): one line per sampled mirror, completed or
dropped, in the format of the primary's access-log lines (``dataplane/accesslog.py``).

Rules:
1. Off unless the process installs it (the dispatcher's ``access_log`` is then None): a request
   that is not mirrored never looks at it; a mirrored one pays a ``None`` check in
   ``_start_with`` (one per started mirror) and one in ``response_complete`` (and ``submit``, on
   the filtered path, one more), and nothing of the primary is read. Drops reach the log through
   the flag the DEBUG drop log already reads (the dispatcher's ``_debug``): with both off a drop
   costs what it did.
2. One line per sampled mirror, exactly once: ``completed`` (the dispatcher's
   ``response_complete``), ``dropped`` (its ``_drop``: every drop of a started mirror) or
   ``refused`` (a drop at admission, ``over_capacity``, ``breaker_open``, ``no_endpoints``,
   ``upgrade``: no ``Shadow`` exists). A mirror sampled out has no line.
3. The mirrored request's method, target and Host are those it was sent with, read back from
   its head (``MirrorHead``) when the line is written; a drop at admission has no head, so its
   line shows what it would have been sent with: the primary's method and target after the
   rule's filters, and the Host the mirror's Host rule gives (``Mirror.host``, else the shadow
   suffix setting).
4. The primary's request id (its ``x-request-id``, the ``request_id`` of its own access-log
   line) and route are kept for a started mirror only while the log is on (``track``), in a
   dict keyed by the ``Shadow`` and emptied at its outcome; never the primary's exchange itself
   (its buffers must not live as long as a slow mirror).
5. Lines go to a ``LineSink`` (``dataplane.accesslog`` installs one per process with its own
   ``AccessWriter``: bounded buffer, drops counted, written by a thread), never blocking the
   loop. Without a writer (an embedded data plane) the line goes through the logger
   ``mirrorgate.mirror_access``.

Text: ``mirror "GET /p HTTP/1.1" 200 - 1.234ms route=R endpoint=A:P request_id=ID name=N
backend=B host=H drop=-`` (the literal ``mirror`` where the primary has its client; ``-`` for the
bytes, which are not counted; a drop has ``-`` as its status and its reason after ``drop=``).
JSON: ``{"time", "mirror": true, "method", "target", "status" (null when dropped),
"duration_ms", "route", "endpoint", "request_id", "name", "backend", "host", "drop"}``.
"""

import logging
import time
from json.encoder import encode_basestring_ascii as _quote  # what json.dumps uses for str
from typing import Protocol

from mirrorgate.ir.table import Mirror
from mirrorgate.mirror.config import DropReason
from mirrorgate.mirror.shadow import Shadow
from mirrorgate.wire.authority import shadow_host

fallback = logging.getLogger("mirrorgate.mirror_access")


class MirroredRequest(Protocol):
    """What the log reads of the primary request (the data plane's ``Exchange`` is one)."""

    @property
    def method(self) -> bytes: ...
    @property
    def target(self) -> bytes: ...  # as the mirrors are sent it (after the rule's URLRewrite)
    @property
    def host(self) -> bytes: ...  # the Host the primary is sent with
    @property
    def request_id(self) -> bytes: ...  # the primary's x-request-id
    @property
    def route(self) -> str: ...


class RequestView:
    """A ``MirroredRequest`` for a filtered request: the target and Host after the rule's filters."""

    __slots__ = ("host", "method", "request_id", "route", "target")

    def __init__(self, method: bytes, target: bytes, host: bytes, request_id: bytes, route: str) -> None:
        self.method = method
        self.target = target
        self.host = host
        self.request_id = request_id
        self.route = route

    @classmethod
    def of(
        cls, request: MirroredRequest, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]
    ) -> "RequestView":
        host = next((value for name, value in headers if name == b"host"), request.host)
        return cls(method, target, host, request.request_id, request.route)


class Writer(Protocol):
    def write(self, line: str) -> None: ...


class LineSink(Protocol):
    """Where lines go and the clock cached per second (``dataplane.accesslog``'s sink)."""

    @property
    def writer(self) -> Writer | None: ...
    @property
    def json_head(self) -> str: ...  # ``{`` or ``{"worker": N, ``
    @property
    def text_tail(self) -> str: ...  # ``\\n`` or `` worker=N\\n``
    @property
    def utc(self) -> str: ...  # the second of the last ``stamp``, quoted, for JSON's ``time``
    def stamp(self) -> str: ...  # ``YYYY-MM-DD HH:MM:SS,mmm `` now


class MirrorLog:
    """Rules 2-5: ``track`` a started mirror, then ``completed`` or ``dropped``; ``refused`` for a
    drop at admission."""

    __slots__ = ("json", "records", "shadow_suffix", "sink")

    def __init__(self, sink: LineSink, *, json: bool = False, shadow_suffix: bool = True) -> None:
        self.sink = sink
        self.json = json
        self.shadow_suffix = shadow_suffix  # the gateway's Host rule for mirrors without their own
        self.records: dict[Shadow, tuple[bytes, str, float]] = {}  # rule 4: (request id, route, started)

    def track(self, shadow: Shadow, request: MirroredRequest | None) -> None:
        """A mirror was started (sent now or queued) for ``request``; its latency counts from now."""
        request_id, route = (b"", "") if request is None else (request.request_id, request.route)
        self.records[shadow] = (request_id, route, time.monotonic())

    def completed(self, shadow: Shadow) -> None:
        self._shadow_line(shadow, shadow.status, "")

    def dropped(self, shadow: Shadow, reason: DropReason | str) -> None:
        self._shadow_line(shadow, 0, str(reason))

    def refused(self, mirror: Mirror, request: MirroredRequest | None, reason: DropReason | str) -> None:
        """A drop at admission (rule 3): no head, no endpoint, no time spent."""
        if request is None:  # a caller that did not say which request (not the data plane)
            method = target = host = request_id = b""
            route = ""
        else:
            method, target, request_id, route = request.method, request.target, request.request_id, request.route
            host = self.host_for(mirror, request.host)
        self._line(method, target, host, 0, 0.0, route, "", request_id, mirror.name, mirror.backend, str(reason))

    def host_for(self, mirror: Mirror, host: bytes) -> bytes:
        """The Host a mirror of a request with ``host`` is sent with (``Mirror.host``, else the
        gateway's shadow suffix rule); empty when the request has none (the endpoint gives it)."""
        if not host:
            return b""
        rule = mirror.host
        if rule is None:
            return shadow_host(host) if self.shadow_suffix else host
        if rule.type == "Literal":
            return rule.value.encode("latin-1")
        return shadow_host(host) if rule.type == "ShadowSuffix" else host

    def _shadow_line(self, shadow: Shadow, status: int, reason: str) -> None:
        head = shadow.head
        raw = head.whole or head.for_endpoint(shadow.endpoint)
        line = raw[: raw.find(b"\r\n")]
        method, _, rest = line.partition(b" ")
        target = rest.rpartition(b" ")[0]
        request_id, route, started = self.records.pop(shadow, (b"", "", 0.0))
        ms = (time.monotonic() - started) * 1000 if started else 0.0
        endpoint = shadow.endpoint
        self._line(
            method,
            target,
            _header(raw, b"host"),
            status,
            ms,
            route,
            f"{endpoint.address}:{endpoint.port}",
            request_id or _header(raw, b"x-request-id"),
            shadow.series.mirror,
            shadow.backend.name,
            reason,
        )

    def _line(
        self,
        method: bytes,
        target: bytes,
        host: bytes,
        status: int,
        ms: float,
        route: str,
        endpoint: str,
        request_id: bytes,
        name: str,
        backend: str,
        reason: str,
    ) -> None:
        sink = self.sink
        stamp = sink.stamp()
        m, t, h, rid = (b.decode("latin-1") for b in (method, target, host, request_id))
        if self.json:
            body = (
                f'"time": {sink.utc}, "mirror": true, "method": {_quote(m)}, "target": {_quote(t)}, '
                f'"status": {status or "null"}, "duration_ms": {round(ms, 3)!r}, "route": {_quote(route)}, '
                f'"endpoint": {_quote(endpoint)}, "request_id": {_quote(rid)}, "name": {_quote(name)}, '
                f'"backend": {_quote(backend)}, "host": {_quote(h)}, "drop": {_quote(reason)}}}'
            )
            head = sink.json_head
            text = f"{stamp}{head}{body}"
            tail = "\n"
        else:
            text = (
                f'{stamp}mirror "{m or "-"} {t or "-"} HTTP/1.1" {status or "-"} - {ms:.3f}ms route={route or "-"} '
                f"endpoint={endpoint or '-'} request_id={rid or '-'} name={name} backend={backend} "
                f"host={h or '-'} drop={reason or '-'}"
            )
            tail = sink.text_tail
        writer = sink.writer
        if writer is None:
            fallback.info("%s", text + tail[:-1])
        else:
            writer.write(text + tail)


def _header(head: bytes, name: bytes) -> bytes:
    """The value of the first ``name`` line of a mirror's head (lower-case names), or empty."""
    at = head.find(b"\r\n" + name + b": ")
    if at < 0:
        return b""
    start = at + len(name) + 4
    return head[start : head.find(b"\r\n", start)]
