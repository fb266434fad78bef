"""The access-log line of one exchange (logger ``mirrorgate.access``), text or JSON.

Rules: one line per exchange, written by ``Exchange.finish`` only when the logger is enabled at
INFO; fields that do not apply are ``-`` in text (``""`` in JSON); bytes are latin-1 decoded.
``bytes`` is the number of response body bytes written to the client, the head not counted and
chunk framing counted (NGINX's ``$body_bytes_sent``): a relayed body, the body of a local reply
(its text, e.g. 20 for a 503), 0 for a redirect and for any answer to HEAD.

Each line starts with the local time as ``YYYY-MM-DD HH:MM:SS,mmm`` (what logging's
``%(asctime)s`` wrote); a JSON line's ``time`` is UTC to the second. With an ``AccessWriter``
installed (``install``, the process's setup does it) the line is formatted here, the date and
time once per second, and appended to the writer's buffer: no ``logging`` record per request.
Without one (a data plane embedded in tests) the line goes through the logger as a record, the
prefix left to its handler. In a worker process text lines end `` worker=N`` and JSON objects
start with a ``"worker"`` field.
``AccessLogged`` is a mixin of ``Exchange``: it keeps no state of its own.

The mirror access log (``run --mirror-access-log``, lines written by ``mirror/mirrorlog.py``) has
a sink of its own, with its own ``AccessWriter`` (``install_mirror``; None: off): ``flush``,
``buffered`` and ``drain`` cover both writers, ``mirror_dropped`` counts its dropped lines.
"""

import logging
import time
from json.encoder import encode_basestring_ascii as _quote  # what json.dumps uses for str

from mirrorgate.dataplane.accesswriter import AccessWriter
from mirrorgate.dataplane.state import ClientConnection, GatewayState, access_log
from mirrorgate.upstream.tls import Key

_MILLIS = tuple(f",{ms:03d} " for ms in range(1000))  # logging's ``,%03d`` msecs, and the space after


class _Sink:
    """Where lines go (one per process), and the clock cached per second."""

    __slots__ = ("json_head", "local", "second", "text_tail", "utc", "writer")

    def __init__(self, writer: AccessWriter | None = None, worker: int | None = None) -> None:
        self.writer = writer
        self.text_tail = "\n" if worker is None else f" worker={worker}\n"
        self.json_head = "{" if worker is None else f'{{"worker": {worker}, '
        self.second = -1
        self.local = ""  # ``second`` as logging's asctime, without the milliseconds
        self.utc = ""  # ``second`` as the JSON ``time`` field, quoted

    def stamp(self) -> str:
        """``YYYY-MM-DD HH:MM:SS,mmm `` for now, local time; formats the date once per second."""
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self.utc = time.strftime('"%Y-%m-%dT%H:%M:%SZ"', time.gmtime(second))
        return self.local + _MILLIS[int((now - second) * 1000)]


_sink = _Sink()
_mirror: _Sink | None = None  # the mirror access log's sink; None: off


def install(writer: AccessWriter | None, worker: int | None = None) -> None:
    """Send this process's access-log lines to ``writer`` (None: back through the logger),
    tagged with ``worker`` when it is a worker process."""
    global _sink
    old, _sink = _sink.writer, _Sink(writer, worker)
    if old is not None and old is not writer:
        old.close()


def install_mirror(writer: AccessWriter | None, worker: int | None = None, *, on: bool = True) -> None:
    """Send this process's mirror access-log lines to ``writer`` (None: through the logger
    ``mirrorgate.mirror_access``), tagged with ``worker``; ``on=False``: no mirror access log."""
    global _mirror
    old = None if _mirror is None else _mirror.writer
    _mirror = _Sink(writer, worker) if on else None
    if old is not None and old is not writer:
        old.close()


def installed() -> AccessWriter | None:
    return _sink.writer


def mirror_sink() -> _Sink | None:
    """The mirror access log's sink (``mirror.mirrorlog.LineSink``); None when it is off."""
    return _mirror


def _writers() -> list[AccessWriter]:
    writers = [_sink.writer, None if _mirror is None else _mirror.writer]
    return [w for w in writers if w is not None]


def flush() -> None:
    """Hand what is buffered to the writers' threads (a reload: lines are not held back by it)."""
    for w in _writers():
        w.flush()


def buffered() -> bool:
    """Whether lines wait to be written."""
    return any(w.lines or w.outbox is not None for w in _writers())


def drain(timeout: float) -> None:
    """Write what is buffered, waiting up to ``timeout`` seconds per writer (shutdown)."""
    for w in _writers():
        w.drain(timeout)


def dropped() -> int:
    """Lines dropped by this process's writer (``mirrorgate_access_log_dropped_total``)."""
    return 0 if _sink.writer is None else _sink.writer.dropped


def mirror_dropped() -> int:
    """Mirror access-log lines dropped (``mirrorgate_mirror_access_log_dropped_total``)."""
    return 0 if _mirror is None or _mirror.writer is None else _mirror.writer.dropped


class AccessLogged:
    """The access log of ``Exchange`` (whose ``__init__`` sets these attributes)."""

    __slots__ = ()

    proto: ClientConnection
    state: GatewayState
    started: float  # ``time.monotonic()`` when the head was parsed
    method: bytes
    target: bytes
    version: str
    status: int
    bytes_sent: int
    route: str
    key: Key  # the upstream pool key: (address, port, ...)
    request_id: bytes

    def _endpoint(self) -> str:
        address, port = self.key[0], self.key[1]
        return f"{address}:{port}" if address else ""

    def _log(self) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        ms = (time.monotonic() - self.started) * 1000
        sink = _sink
        if sink.writer is None:
            access_log.info("%s", self._json(ms, sink) if self.state.access_log_json else self._text(ms))
            return
        stamp = sink.stamp()
        if self.state.access_log_json:
            sink.writer.write(f"{stamp}{sink.json_head}{self._json(ms, sink)[1:]}\n")
        else:
            sink.writer.write(f"{stamp}{self._text(ms)}{sink.text_tail}")

    def _text(self, ms: float) -> str:
        return (
            f'{self.proto.client} "{self.method.decode("latin-1")} {self.target.decode("latin-1")} '
            f'HTTP/{self.version}" {self.status} {self.bytes_sent} {ms:.3f}ms route={self.route or "-"} '
            f"endpoint={self._endpoint() or '-'} request_id={self.request_id.decode('latin-1') or '-'}"
        )

    def _json(self, ms: float, sink: _Sink) -> str:
        """The object ``json.dumps`` wrote for these fields, built without a dict."""
        if sink.writer is None:
            sink.stamp()
        return (
            f'{{"time": {sink.utc}, "client": {_quote(self.proto.client)}, '
            f'"method": {_quote(self.method.decode("latin-1"))}, "target": {_quote(self.target.decode("latin-1"))}, '
            f'"status": {self.status}, "bytes": {self.bytes_sent}, "duration_ms": {round(ms, 3)!r}, '
            f'"route": {_quote(self.route)}, "endpoint": {_quote(self._endpoint())}, '
            f'"request_id": {_quote(self.request_id.decode("latin-1"))}}}'
        )
