"""``mirrorgate echo``: a drop-in for the Gateway API conformance backend ``echo-basic``.

Owns the echo HTTP/1.1 server (uvloop + httptools, ``asyncio.Protocol``), its configuration
(``EchoConfig``) and its entry points (``start_echo``, ``serve_echo``, ``run_echo``). The
behaviour copies ``echo-basic/echo-basic.go`` (kubernetes-sigs/gateway-api-conformance-images):
the JSON body, ``X-Echo-Set-Header``, ``?delay=``, ``/status/NNN``, ``/health``, ``/retry/`` and
the ``Echoing back request made to <RequestURI> to client (<addr>)`` log line.

Rules:
1. Request bodies are streamed, hashed (SHA-256) and counted, never stored; our only additions
   to echo-basic are the ``X-Echo-Body-Length``/``X-Echo-Body-Sha256`` response headers and the
   ``body_length=``/``body_sha256=`` fields appended to the log line.
2. Responses on a connection go out in request order (one worker task per busy connection).
   Pipelined requests beyond ``_MAX_PIPELINE`` pause reading; a paused writer pauses the worker.
3. Parser callbacks only record state; all waiting happens in the worker, which is tracked.
4. Deliberate differences from echo-basic are marked ``DIVERGES`` below.

Size: about 750 lines, above the 600-line guide, because the CLI contract names this one module;
split it into a package (config, Go JSON, app, protocol) before it grows further.
"""

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import struct
import sys
import traceback
from collections import deque
from collections.abc import Coroutine, Mapping
from enum import Enum
from typing import Any, Final, NamedTuple, Self, TextIO, cast

import httptools
import msgspec
import uvloop

from mirrorgate.httpcore import (
    GoDurationError,
    HttpDateCache,
    RequestTarget,
    canonical_header_key,
    go_unescape,
    is_token,
    parse_go_duration,
    parse_go_query,
    reason_phrase,
    split_request_target,
    status_line,
)

__all__ = [
    "EchoConfig",
    "EchoIdentity",
    "EchoServer",
    "default_pod_name",
    "resolve_identity",
    "run_echo",
    "serve_echo",
    "start_echo",
]

_MAX_PIPELINE: Final = 16  # queued requests per connection before reading pauses
_MAX_HEAD_BYTES: Final = (1 << 20) + 4096  # Go's DefaultMaxHeaderBytes plus its slack -> 431
_LINGER_SECONDS: Final = 0.5  # Go's rstAvoidanceDelay: read and drop input this long before closing
_POD_HASH_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' rand.SafeEncodeString
_JSON_HEADERS: Final = (("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff"))
_TEXT_HEADERS: Final = (("Content-Type", "text/plain; charset=utf-8"),)
_OVERWRITTEN_BY_ECHO: Final = frozenset(name for name, _ in _JSON_HEADERS)
_FRAMING_HEADERS: Final = frozenset({"content-length", "transfer-encoding", "connection"})
_STATUS_TARGET: Final = re.compile(r"/status/([0-9]{3})")


class EchoConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How to run one echo server. Empty strings are filled from the environment at start."""

    port: int  # TCP port to listen on; 0 picks a free one (see EchoServer.port)
    bind: str = "0.0.0.0"  # listen address
    name: str = ""  # pod name; "" -> $POD_NAME, else "<host>-<port>-<hash10>-<hash5>"
    namespace: str = ""  # "" -> $NAMESPACE
    service: str = ""  # "" -> $SERVICE_NAME
    ingress: str = ""  # "" -> $INGRESS_NAME
    http_port: str = ""  # echoed "httpPort"; "" -> $HTTP_PORT, else the bound port


class EchoIdentity(msgspec.Struct, frozen=True, kw_only=True):
    """The resolved context fields echoed in every JSON body."""

    namespace: str
    ingress: str
    service: str
    pod: str
    http_port: str


def default_pod_name(hostname: str, port: int) -> str:
    """A Deployment-style pod name, so that stripping the last two ``-`` segments leaves a name.

    ``default_pod_name("laptop.lan", 3000)`` -> ``"laptop-3000-<10 chars>-<5 chars>"``; the hashes
    are derived from hostname and port, so the name is stable across restarts.
    """
    base = re.sub(r"[^a-z0-9-]+", "-", hostname.split(".")[0].lower()).strip("-") or "echo"
    digest = hashlib.sha256(f"{hostname}:{port}".encode()).digest()
    chars = "".join(_POD_HASH_ALPHABET[byte % len(_POD_HASH_ALPHABET)] for byte in digest[:15])
    return f"{base}-{port}-{chars[:10]}-{chars[10:]}"


def resolve_identity(config: EchoConfig, bound_port: int, env: Mapping[str, str] | None = None) -> EchoIdentity:
    """Fill the empty fields of ``config`` from ``env`` (default ``os.environ``) as echo-basic does."""
    environ = os.environ if env is None else env
    return EchoIdentity(
        namespace=config.namespace or environ.get("NAMESPACE", ""),
        ingress=config.ingress or environ.get("INGRESS_NAME", ""),
        service=config.service or environ.get("SERVICE_NAME", ""),
        pod=config.name or environ.get("POD_NAME", "") or default_pod_name(socket.gethostname(), bound_port),
        # DIVERGES: echo-basic defaults to "3000", its fixed port; we default to the port we bound.
        http_port=config.http_port or environ.get("HTTP_PORT", "") or str(bound_port),
    )


# --- Go encoding/json compatibility -----------------------------------------------------------

_JSON_PLAIN: Final = re.compile(r"[ !#-%'-;=?-\[\]-~]*")  # printable ASCII Go emits unescaped


def _go_utf8(raw: bytes) -> str:
    """Decode like Go's JSON encoder reads a string: each invalid UTF-8 byte becomes U+FFFD."""
    if raw.isascii():
        return raw.decode("ascii")
    out: list[str] = []
    view, start = memoryview(raw), 0
    while start < len(raw):
        try:
            out.append(str(view[start:], "utf-8"))
            break
        except UnicodeDecodeError as err:  # keep the valid prefix, replace one byte, go on
            out.append(str(view[start : start + err.start], "utf-8") + "\ufffd")
            start += err.start + 1
    return "".join(out)


def _go_json_str(text: str) -> str:
    """A JSON string literal exactly as Go's ``encoding/json`` writes it (HTML-safe escaping)."""
    if _JSON_PLAIN.fullmatch(text):
        return f'"{text}"'
    encoded = json.dumps(text, ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        encoded = encoded.replace(char, escape)
    return encoded.replace("\u2029", "\\u2029")


def _go_json_headers(headers: dict[str, list[str]]) -> str:
    """The ``headers`` member as ``json.MarshalIndent(v, "", " ")`` nests it: sorted keys."""
    if not headers:
        return "{}"
    entries = []
    for name in sorted(headers):
        values = ",\n".join(f"   {_go_json_str(value)}" for value in headers[name])
        entries.append(f"  {_go_json_str(name)}: [\n{values}\n  ]")
    return "{\n" + ",\n".join(entries) + "\n }"


def _identity_json(identity: EchoIdentity) -> str:
    """The JSON members after ``headers``, in echo-basic's field order (computed once)."""
    fields = (
        ("httpPort", identity.http_port),
        ("namespace", identity.namespace),
        ("ingress", identity.ingress),
        ("service", identity.service),
        ("pod", identity.pod),
    )
    return ",\n".join(f" {_go_json_str(key)}: {_go_json_str(value)}" for key, value in fields)


# --- Requests and replies ---------------------------------------------------------------------


class _Failure(NamedTuple):
    """A request the server refuses before any handler runs; the connection then closes."""

    status: int
    detail: str = ""  # appended to Go's body text as ": <detail>"


class _After(Enum):
    """What happens to the connection once a handler has produced its reply."""

    RESPOND = "respond"  # write the reply; keep-alive as the request asked
    RESPOND_AND_CLOSE = "respond-and-close"  # write the reply, then close
    DROP = "drop"  # close without replying (Go's WriteHeader panics on a code < 100 or > 999)
    RESET = "reset"  # abort with a TCP RST (the /retry/ connection-failure mode)


class _Reply(NamedTuple):
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    after: _After = _After.RESPOND
    interim: int = 0  # a 1xx status line written before the final response, 0 for none


class _Exchange:
    """One request: its head, its streamed body digest, and when the body has fully arrived."""

    __slots__ = (
        "body_length",
        "done",
        "expect_continue",
        "failure",
        "hasher",
        "headers",
        "keep_alive",
        "method",
        "target",
        "version",
    )

    def __init__(self, done: "asyncio.Future[None]", head: tuple[str, bytes, str, list[tuple[bytes, bytes]]]) -> None:
        self.method, self.target, self.version, self.headers = head
        self.keep_alive = False
        self.expect_continue = False
        self.failure: _Failure | None = None
        self.hasher = hashlib.sha256()
        self.body_length = 0
        self.done = done

    def feed(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.body_length += len(chunk)

    def finish(self, failure: _Failure | None = None) -> None:
        """Mark the body complete, or the request broken with ``failure``; idempotent."""
        if failure is not None and self.failure is None:
            self.failure = failure
        if not self.done.done():
            self.done.set_result(None)


def _check_head(version: str, headers: list[tuple[bytes, bytes]]) -> _Failure | None:
    """The request-level checks Go's ``readRequest`` makes before any handler runs."""
    if not version.startswith("1."):
        return _Failure(505, "unsupported protocol version")
    hosts = sum(1 for name, _ in headers if name.lower() == b"host")
    if hosts > 1:
        return _Failure(400, "too many Host headers")
    if hosts == 0 and version != "1.0":
        return _Failure(400, "missing required Host header")
    return None


def _failure_bytes(failure: _Failure) -> bytes:
    """Go's canned reply for a request it cannot parse (we add Content-Length)."""
    text = f"{failure.status} {reason_phrase(failure.status)}"
    body = (f"{text}: {failure.detail}" if failure.detail else text).encode()
    head = f"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    return status_line(failure.status) + head.encode() + body


def _header_map(headers: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """Go's ``Request.Header``: canonical names, values in order, Host and Transfer-Encoding removed."""
    result: dict[str, list[str]] = {}
    for name, value in headers:
        result.setdefault(canonical_header_key(name.decode("latin-1")), []).append(_go_utf8(value))
    result.pop("Host", None)
    result.pop("Transfer-Encoding", None)
    if result.get("Pragma", [""])[0] == "no-cache" and "Cache-Control" not in result:
        result["Cache-Control"] = ["no-cache"]  # Go's fixPragmaCacheControl
    return result


def _echo_set_headers(headers: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    """Response headers requested by ``X-Echo-Set-Header: Name1:val1,Name2:val2`` (names keep case).

    A repeated name is joined with ``,``. Invalid names are dropped, as Go's header writer does.
    DIVERGES: framing headers (Content-Length, Transfer-Encoding, Connection) are also dropped.
    """
    wanted: dict[str, str] = {}
    for name, value in headers:
        if name.lower() != b"x-echo-set-header":
            continue
        for item in value.decode("latin-1").split(","):
            key, _, val = item.strip().partition(":")
            wanted[key] = f"{wanted[key]},{val.strip()}" if key in wanted else val
    return tuple(
        (key, val.strip(" \t\r\n"))
        for key, val in wanted.items()
        if is_token(key) and key not in _OVERWRITTEN_BY_ECHO and key.lower() not in _FRAMING_HEADERS
    )


def _go_atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi`` on a 64-bit platform; None where Go returns an error."""
    if re.fullmatch(r"[+-]?[0-9]{1,19}", text, re.ASCII) is None:
        return None
    value = int(text)
    return value if -(1 << 63) <= value < (1 << 63) else None


def _first(query: dict[str, list[str]], key: str) -> str:
    """Go's ``Values.Get``: the first value, or ""."""
    values = query.get(key)
    return values[0] if values else ""


def _text_reply(status: int, text: str) -> _Reply:
    return _Reply(status, _TEXT_HEADERS, text.encode())


def _error_reply(message: str) -> _Reply:
    """echo-basic's ``processError(w, err, 500)``."""
    return _Reply(500, _JSON_HEADERS, f'{{"message":{_go_json_str(message)}}}'.encode())


def _status_reply(code: int) -> _Reply:
    """What ``w.WriteHeader(code)`` with no body produces in Go's server."""
    if not 100 <= code <= 999:
        return _Reply(code, after=_After.DROP)
    if code < 200 and code != 101:
        return _Reply(200, interim=code)
    return _Reply(code, after=_After.RESPOND_AND_CLOSE if code == 101 else _After.RESPOND)


async def _delay(query: dict[str, list[str]], key: str) -> str:
    """echo-basic's ``delayResponse``: sleep for the Go duration in ``key``; return an error or ""."""
    text = _first(query, key)
    if not text:
        return ""
    try:
        seconds = parse_go_duration(text.encode("latin-1").decode("utf-8", "surrogateescape"))
    except GoDurationError as err:
        return str(err)
    if seconds > 0:
        await asyncio.sleep(seconds)
    return ""


# --- The application: routing and handlers ----------------------------------------------------


class _EchoApp:
    """State shared by all connections of one server: identity, log, retry counters, tasks."""

    def __init__(self, log: TextIO) -> None:
        self.log = log
        self.identity = EchoIdentity(namespace="", ingress="", service="", pod="", http_port="")
        self.identity_json = _identity_json(self.identity)
        self.date = HttpDateCache()
        self.connections: set[_EchoProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.retry_attempts: dict[str, int] = {}
        self.retry_lock = asyncio.Lock()

    def set_identity(self, identity: EchoIdentity) -> None:
        self.identity = identity
        self.identity_json = _identity_json(identity)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> "asyncio.Task[None]":
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def emit(self, line: str) -> None:
        """Write one log line and flush; a closed log pipe must not break serving."""
        try:
            self.log.write(line)
            self.log.flush()
        except (OSError, ValueError):  # EPIPE, or the stream was closed under us
            pass

    async def handle(self, ex: _Exchange, peer: str) -> _Reply:
        """Route like echo-basic's ServeMux (on the unescaped path with ``//`` -> ``/``)."""
        target = ex.target.decode("latin-1")
        digest = ex.hasher.hexdigest()
        # DIVERGES: echo-basic logs only in its echo handler (before the delay); we log every
        # request once its body has arrived, and append the body digest.
        self.emit(
            f"Echoing back request made to {_go_utf8(ex.target)} to client ({peer})"
            f" body_length={ex.body_length} body_sha256={digest}\n"
        )
        if target == "*":
            return _Reply(400, after=_After.RESPOND_AND_CLOSE)
        parts = split_request_target(target)
        try:
            path = go_unescape(parts.path, query=False).replace("//", "/")
        except ValueError:
            return _Reply(400, _TEXT_HEADERS, b"400 Bad Request", _After.RESPOND_AND_CLOSE)
        if path == "/health":
            return _Reply(200, _TEXT_HEADERS, b"OK")
        if path.startswith("/status/"):
            match = _STATUS_TARGET.fullmatch(target)
            return _status_reply(int(match.group(1))) if match else _Reply(400)
        if path.startswith("/retry/"):
            return await self._retry(ex, parts)
        return await self._echo(ex, parts)

    async def _echo(self, ex: _Exchange, parts: RequestTarget) -> _Reply:
        error = await _delay(parse_go_query(parts.query), "delay")
        if error:
            return _error_reply(error)
        host = parts.authority or next((v.decode("latin-1") for n, v in ex.headers if n.lower() == b"host"), "")
        body = (
            "{\n"
            f' "path": {_go_json_str(_go_utf8(ex.target))},\n'
            f' "host": {_go_json_str(_go_utf8(host.encode("latin-1")))},\n'
            f' "method": {_go_json_str(ex.method)},\n'
            f' "proto": "HTTP/{ex.version}",\n'
            f' "headers": {_go_json_headers(_header_map(ex.headers))},\n'
            f"{self.identity_json}\n"
            "}"
        )
        return _Reply(200, _echo_set_headers(ex.headers) + _JSON_HEADERS, body.encode())

    async def _retry(self, ex: _Exchange, parts: RequestTarget) -> _Reply:
        """echo-basic's retry simulator: fail ``succeedAfter`` times per ``uuid``, then echo."""
        query = parse_go_query(parts.query)
        uuid = _first(query, "uuid")
        if not uuid:
            return _text_reply(400, "uuid is required")
        succeed_after = _go_atoi(_first(query, "succeedAfter"))
        if succeed_after is None:
            return _text_reply(400, "succeedAfter is required")
        response_code = _go_atoi(_first(query, "responseCode"))
        async with self.retry_lock:  # echo-basic holds one mutex for the whole handler
            attempts = self.retry_attempts.get(uuid, 0)
            if attempts >= succeed_after:
                return await self._echo(ex, parts)
            self.retry_attempts[uuid] = attempts + 1
            error = await _delay(query, "delayRetry")
            if error:
                return _error_reply(error)
            return _Reply(0, after=_After.RESET) if response_code is None else _status_reply(response_code)

    def encode(self, ex: _Exchange, reply: _Reply, keep_alive: bool) -> bytes:
        """Serialise ``reply`` for ``ex``; HEAD and no-body statuses get no body."""
        version = "1.0" if ex.version == "1.0" else "1.1"
        out = [status_line(reply.interim, version) + b"\r\n"] if reply.interim and version == "1.1" else []
        out.append(status_line(reply.status, version))
        digest = ex.hasher.hexdigest()
        headers = [*reply.headers, ("X-Echo-Body-Length", str(ex.body_length)), ("X-Echo-Body-Sha256", digest)]
        out.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)
        out.append(b"Date: " + self.date.get() + b"\r\n")
        no_body = reply.status < 200 or reply.status in (204, 304)
        if not no_body:
            out.append(b"Content-Length: %d\r\n" % len(reply.body))
        if keep_alive != (version == "1.1"):
            out.append(b"Connection: keep-alive\r\n" if keep_alive else b"Connection: close\r\n")
        out.append(b"\r\n")
        if not no_body and ex.method != "HEAD":
            out.append(reply.body)
        return b"".join(out)


# --- The connection ---------------------------------------------------------------------------


def _format_peer(peername: object) -> str:
    """Go's ``RemoteAddr``: ``ip:port``, IPv6 in brackets."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host, port = str(peername[0]), peername[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(peername)


class _EchoProtocol(asyncio.Protocol):
    """One client connection: httptools callbacks feed a queue that one worker task answers."""

    def __init__(self, app: _EchoApp) -> None:
        # Global state.
        self._app = app
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        # Per-connection state.
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        self._queue: deque[_Exchange] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._reading_done = False  # no more requests will be parsed; later input is dropped
        self._flow_paused = False  # reading paused because too many requests are queued
        self._writable = asyncio.Event()
        self._writable.set()
        # Per-request state (the request being parsed).
        self._in_head = True  # between message begin and headers complete
        self._head_bytes = 0  # bytes received while in the head; bounded by _MAX_HEAD_BYTES
        self._url = bytearray()
        self._headers: list[tuple[bytes, bytes]] = []
        self._current: _Exchange | None = None

    # asyncio callbacks.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_server gives a stream transport (uvloop's does not subclass asyncio.Transport).
        self._transport = cast(asyncio.Transport, transport)
        self._peer = _format_peer(self._transport.get_extra_info("peername"))
        self._app.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._app.connections.discard(self)
        self._reading_done = True
        self._writable.set()
        if self._linger is not None:
            self._linger.cancel()
        if self._worker is not None:
            self._worker.cancel()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        if self._reading_done:
            return
        if self._in_head:
            # Counted here, not in on_header: httptools buffers a header until it is complete.
            self._head_bytes += len(data)
            if self._head_bytes > _MAX_HEAD_BYTES:
                self._reject(_Failure(431))
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # DIVERGES: echo-basic serves Upgrade/CONNECT requests as plain ones and keeps the
            # connection; we answer them and close, since the bytes after them are not HTTP/1.
            self._stop_reading()
            if self._current is not None:
                self._current.keep_alive = False
                self._current.finish()
        except httptools.HttpParserCallbackError:  # a bug in a callback below: report, drop
            self._app.emit(traceback.format_exc())
            self.shutdown()
        except httptools.HttpParserError:
            if not self._reading_done:  # bytes after "Connection: close" are ignored, not errors
                self._reject(_Failure(400))

    def shutdown(self) -> None:
        """Stop the worker and close the connection now (server shutdown)."""
        self._reading_done = True
        if self._worker is not None:
            self._worker.cancel()
        if self._transport is not None:
            self._transport.close()

    # httptools callbacks: record only, never wait.

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._url = bytearray()
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value.strip(b" \t")))

    def on_headers_complete(self) -> None:
        self._in_head = False
        version = self._parser.get_http_version()
        head = (self._parser.get_method().decode("ascii"), bytes(self._url), version, self._headers)
        ex = _Exchange(self._loop.create_future(), head)
        ex.keep_alive = self._parser.should_keep_alive()
        ex.expect_continue = version == "1.1" and any(
            name.lower() == b"expect" and value.lower() == b"100-continue" for name, value in self._headers
        )
        ex.failure = _check_head(version, self._headers)
        self._current = ex
        self._enqueue(ex)

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current.feed(body)

    def on_message_complete(self) -> None:
        if self._current is not None:
            self._current.finish()
            if not self._current.keep_alive:
                self._stop_reading()

    # Internals.

    def _stop_reading(self) -> None:
        self._reading_done = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def _reject(self, failure: _Failure) -> None:
        """The request cannot be parsed: answer after the requests before it, then close."""
        self._stop_reading()
        current = self._current
        if current is not None and not current.done.done():
            current.finish(failure)
        else:
            rejected = _Exchange(self._loop.create_future(), ("", b"", "1.1", []))
            rejected.finish(failure)
            self._enqueue(rejected)

    def _enqueue(self, ex: _Exchange) -> None:
        self._queue.append(ex)
        if len(self._queue) >= _MAX_PIPELINE and not self._flow_paused and self._transport is not None:
            self._flow_paused = True
            self._transport.pause_reading()
        if self._worker is None or self._worker.done():
            self._worker = self._app.spawn(self._work())

    def _close_gracefully(self, transport: asyncio.Transport) -> None:
        """Go's ``closeWriteAndWait``: half-close, drop input for a moment, then close.

        Closing a socket that still has unread input sends an RST, which can destroy the
        response the client has not read yet.
        """
        self._reading_done = True
        if transport.is_closing():
            return
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        transport.resume_reading()
        self._linger = self._loop.call_later(_LINGER_SECONDS, transport.close)

    async def _work(self) -> None:
        """Answer queued requests in order until the queue is empty or the connection closes."""
        transport = self._transport
        assert transport is not None  # tasks are only spawned after connection_made
        try:
            while self._queue:
                keep_open = await self._serve(transport, self._queue[0])
                self._queue.popleft()
                if not keep_open:
                    self._queue.clear()
                    return
                if self._flow_paused and len(self._queue) < _MAX_PIPELINE // 2 and not self._reading_done:
                    self._flow_paused = False
                    transport.resume_reading()
        except Exception:  # the one catch-all of this task: a bug; report it and drop the connection
            self._app.emit(traceback.format_exc())
            transport.abort()

    async def _serve(self, transport: asyncio.Transport, ex: _Exchange) -> bool:
        """Answer one request; return whether the connection stays open."""
        if ex.failure is None and ex.expect_continue and not ex.done.done():
            transport.write(status_line(100) + b"\r\n")
        if ex.failure is None:
            await ex.done
        if ex.failure is not None:
            transport.write(_failure_bytes(ex.failure))
            self._close_gracefully(transport)
            return False
        reply = await self._app.handle(ex, self._peer)
        if reply.after is _After.RESET:
            _reset(transport)
            return False
        if reply.after is _After.DROP:
            self._close_gracefully(transport)
            return False
        keep_alive = ex.keep_alive and reply.after is _After.RESPOND
        transport.write(self._app.encode(ex, reply, keep_alive))
        if not keep_alive:
            self._close_gracefully(transport)
            return False
        await self._writable.wait()
        return not transport.is_closing()


def _reset(transport: asyncio.Transport) -> None:
    """Close with a TCP RST (SO_LINGER 0), as echo-basic's hijack-and-close does."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:  # already closed by the peer: a plain abort is all that is left
            pass
    transport.abort()


# --- Entry points -----------------------------------------------------------------------------


class EchoServer:
    """A listening echo server. Use ``async with`` or call ``close()``."""

    def __init__(self, server: asyncio.Server, app: _EchoApp, port: int) -> None:
        self._server = server
        self._app = app
        self.port = port  # the bound TCP port (useful with EchoConfig(port=0))

    @property
    def identity(self) -> EchoIdentity:
        return self._app.identity

    async def close(self) -> None:
        """Stop listening, close every connection, cancel in-flight requests, and wait."""
        self._server.close()
        for connection in list(self._app.connections):
            connection.shutdown()
        for task in list(self._app.tasks):
            task.cancel()
        await asyncio.gather(*self._app.tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def start_echo(config: EchoConfig, *, log: TextIO | None = None) -> EchoServer:
    """Bind ``config.bind:config.port`` and start serving; log lines go to ``log`` (default stderr).

    Prints echo-basic's ``Starting server, listening on port N (http)`` with the bound port.
    Raises ``ValueError`` for a port outside 0..65535 and ``OSError`` when the address cannot be
    bound; raising anything else is a bug.
    """
    if not 0 <= config.port <= 65535:
        raise ValueError(f"port must be in 0..65535, got {config.port}")
    loop = asyncio.get_running_loop()
    app = _EchoApp(sys.stderr if log is None else log)
    server = await loop.create_server(
        lambda: _EchoProtocol(app), host=config.bind, port=config.port, backlog=1024, start_serving=False
    )
    port = int(server.sockets[0].getsockname()[1])
    app.set_identity(resolve_identity(config, port))
    await server.start_serving()
    app.emit(f"Starting server, listening on port {port} (http)\n")
    return EchoServer(server, app, port)


async def serve_echo(
    config: EchoConfig, *, ready: "asyncio.Future[int] | None" = None, log: TextIO | None = None
) -> None:
    """Serve until cancelled; ``ready`` (if given) receives the bound port once listening."""
    async with await start_echo(config, log=log) as server:
        if ready is not None and not ready.done():
            ready.set_result(server.port)
        await asyncio.get_running_loop().create_future()  # only cancellation ends this


async def _serve_until_signal(config: EchoConfig) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with await start_echo(config):
            await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def run_echo(config: EchoConfig) -> None:
    """Run an echo server under uvloop until SIGINT or SIGTERM, then return normally."""
    uvloop.run(_serve_until_signal(config))
