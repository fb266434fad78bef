"""Request handling of the echo server: what echo-basic answers to each request.

Owns: the per-request state (``Exchange``: head, streamed body digest), the checks Go's server
makes before any handler, echo-basic's routes (``/health``, ``/status/NNN``, ``/retry/``, the
echo itself, ``?delay=``), the JSON body, ``X-Echo-Set-Header`` and the reply encoding.

Rules:
1. Request bodies are hashed (SHA-256) and counted, never stored; our only additions to
   echo-basic are the ``X-Echo-Body-Length``/``X-Echo-Body-Sha256`` response headers and the
   ``body_length=``/``body_sha256=`` fields appended to the log line.
2. Handlers only wait on ``?delay=`` sleeps and the retry lock; the connection decides what
   happens to the socket from the reply's ``After``.
3. Deliberate differences from echo-basic are marked ``DIVERGES``.
"""

import asyncio
import hashlib
import re
from collections.abc import Coroutine
from enum import Enum
from typing import Any, Final, NamedTuple, Protocol, TextIO

from mirrorgate.echo.config import EchoIdentity, identity_json
from mirrorgate.echo.http11 import (
    HttpDateCache,
    RequestTarget,
    canonical_header_key,
    is_token,
    reason_phrase,
    split_request_target,
    status_line,
)
from mirrorgate.gocompat import (
    DurationError,
    atoi,
    decode_utf8,
    json_string,
    parse_duration_seconds,
    parse_query,
    url_unescape,
)

_JSON_HEADERS: Final = (("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff"))
_TEXT_HEADERS: Final = (("Content-Type", "text/plain; charset=utf-8"),)
_OVERWRITTEN_BY_ECHO: Final = frozenset(name for name, _ in _JSON_HEADERS)
_FRAMING_HEADERS: Final = frozenset({"content-length", "transfer-encoding", "connection"})
_STATUS_TARGET: Final = re.compile(r"/status/([0-9]{3})")


class Failure(NamedTuple):
    """A request the server refuses before any handler runs; the connection then closes."""

    status: int
    detail: str = ""  # appended to Go's body text as ": <detail>"


class After(Enum):
    """What happens to the connection once a handler has produced its reply."""

    RESPOND = "respond"  # write the reply; keep-alive as the request asked
    RESPOND_AND_CLOSE = "respond-and-close"  # write the reply, then close
    DROP = "drop"  # close without replying (Go's WriteHeader panics on a code < 100 or > 999)
    RESET = "reset"  # abort with a TCP RST (the /retry/ connection-failure mode)


class Reply(NamedTuple):
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    after: After = After.RESPOND
    interim: int = 0  # a 1xx status line written before the final response, 0 for none


class Exchange:
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
        self.failure: Failure | None = None
        self.hasher = hashlib.sha256()
        self.body_length = 0
        self.done = done

    def feed(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.body_length += len(chunk)

    def finish(self, failure: Failure | None = None) -> None:
        """Mark the body complete, or the request broken with ``failure``; idempotent."""
        if failure is not None and self.failure is None:
            self.failure = failure
        if not self.done.done():
            self.done.set_result(None)


def request_host(ex: Exchange, parts: RequestTarget) -> str:
    """Go's ``Request.Host``: the authority of the (split) absolute-form target, else the Host
    header (latin-1 decoded; empty when there is none)."""
    return parts.authority or next((v.decode("latin-1") for n, v in ex.headers if n.lower() == b"host"), "")


def check_head(version: str, headers: list[tuple[bytes, bytes]]) -> Failure | None:
    """The request-level checks Go's ``readRequest`` makes before any handler runs."""
    if not version.startswith("1."):
        return Failure(505, "unsupported protocol version")
    hosts = sum(1 for name, _ in headers if name.lower() == b"host")
    if hosts > 1:
        return Failure(400, "too many Host headers")
    if hosts == 0 and version != "1.0":
        return Failure(400, "missing required Host header")
    return None


def failure_bytes(failure: Failure) -> bytes:
    """Go's canned reply for a request it cannot parse (we add Content-Length)."""
    text = f"{failure.status} {reason_phrase(failure.status)}"
    body = (f"{text}: {failure.detail}" if failure.detail else text).encode()
    head = f"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    return status_line(failure.status) + head.encode() + body


def _header_map(headers: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """Go's ``Request.Header``: canonical names, values in order, Host and Transfer-Encoding removed."""
    result: dict[str, list[str]] = {}
    for name, value in headers:
        result.setdefault(canonical_header_key(name.decode("latin-1")), []).append(decode_utf8(value))
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


def _first(query: dict[str, list[str]], key: str) -> str:
    """Go's ``Values.Get``: the first value, or ""."""
    values = query.get(key)
    return values[0] if values else ""


def _text_reply(status: int, text: str) -> Reply:
    return Reply(status, _TEXT_HEADERS, text.encode())


def _error_reply(message: str) -> Reply:
    """echo-basic's ``processError(w, err, 500)``."""
    return Reply(500, _JSON_HEADERS, f'{{"message":{json_string(message)}}}'.encode())


def _status_reply(code: int) -> Reply:
    """What ``w.WriteHeader(code)`` with no body produces in Go's server."""
    if not 100 <= code <= 999:
        return Reply(code, after=After.DROP)
    if code < 200 and code != 101:
        return Reply(200, interim=code)
    return Reply(code, after=After.RESPOND_AND_CLOSE if code == 101 else After.RESPOND)


async def _delay(query: dict[str, list[str]], key: str) -> str:
    """echo-basic's ``delayResponse``: sleep for the Go duration in ``key``; return an error or ""."""
    text = _first(query, key)
    if not text:
        return ""
    try:
        seconds = parse_duration_seconds(text.encode("latin-1").decode("utf-8", "surrogateescape"))
    except DurationError as err:
        return str(err)
    if seconds > 0:
        await asyncio.sleep(seconds)
    return ""


# --- The application: routing and handlers ----------------------------------------------------


class Connection(Protocol):
    """What the app needs of a client connection (``connection.EchoProtocol``): a way to stop it."""

    def shutdown(self) -> None: ...


class EchoApp:
    """State shared by all connections of one server: identity, log, retry counters, tasks."""

    def __init__(self, log: TextIO) -> None:
        self.log = log
        self.identity = EchoIdentity(namespace="", ingress="", service="", pod="", http_port="")
        self.identity_json = identity_json(self.identity)
        self.date = HttpDateCache()
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.retry_attempts: dict[str, int] = {}
        self.retry_lock = asyncio.Lock()

    def set_identity(self, identity: EchoIdentity) -> None:
        self.identity = identity
        self.identity_json = identity_json(identity)

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

    async def handle(self, ex: Exchange, peer: str) -> Reply:
        """Route like echo-basic's ServeMux (on the unescaped path with ``//`` -> ``/``)."""
        target = ex.target.decode("latin-1")
        parts = split_request_target(target)
        digest = ex.hasher.hexdigest()
        # DIVERGES: echo-basic logs only in its echo handler (before the delay); we log every
        # request once its body has arrived, and append the body digest and the Host (last: it
        # is the rest of the line, so a Host with a space still reads whole). echo-basic's line
        # is kept byte-identical up to the closing parenthesis, for tools that grep it.
        host = decode_utf8(request_host(ex, parts).encode("latin-1"))
        self.emit(
            f"Echoing back request made to {decode_utf8(ex.target)} to client ({peer})"
            f" body_length={ex.body_length} body_sha256={digest} host={host}\n"
        )
        if target == "*":
            return Reply(400, after=After.RESPOND_AND_CLOSE)
        try:
            path = url_unescape(parts.path, query=False).replace("//", "/")
        except ValueError:
            return Reply(400, _TEXT_HEADERS, b"400 Bad Request", After.RESPOND_AND_CLOSE)
        if path == "/health":
            return Reply(200, _TEXT_HEADERS, b"OK")
        if path.startswith("/status/"):
            match = _STATUS_TARGET.fullmatch(target)
            return _status_reply(int(match.group(1))) if match else Reply(400)
        if path.startswith("/retry/"):
            return await self._retry(ex, parts)
        return await self._echo(ex, parts)

    async def _echo(self, ex: Exchange, parts: RequestTarget) -> Reply:
        error = await _delay(parse_query(parts.query), "delay")
        if error:
            return _error_reply(error)
        host = request_host(ex, parts)
        body = (
            "{\n"
            f' "path": {json_string(decode_utf8(ex.target))},\n'
            f' "host": {json_string(decode_utf8(host.encode("latin-1")))},\n'
            f' "method": {json_string(ex.method)},\n'
            f' "proto": "HTTP/{ex.version}",\n'
            f' "headers": {_json_headers(_header_map(ex.headers))},\n'
            f"{self.identity_json}\n"
            "}"
        )
        return Reply(200, _echo_set_headers(ex.headers) + _JSON_HEADERS, body.encode())

    async def _retry(self, ex: Exchange, parts: RequestTarget) -> Reply:
        """echo-basic's retry simulator: fail ``succeedAfter`` times per ``uuid``, then echo."""
        query = parse_query(parts.query)
        uuid = _first(query, "uuid")
        if not uuid:
            return _text_reply(400, "uuid is required")
        succeed_after = atoi(_first(query, "succeedAfter"))
        if succeed_after is None:
            return _text_reply(400, "succeedAfter is required")
        response_code = atoi(_first(query, "responseCode"))
        async with self.retry_lock:  # echo-basic holds one mutex for the whole handler
            attempts = self.retry_attempts.get(uuid, 0)
            if attempts >= succeed_after:
                return await self._echo(ex, parts)
            self.retry_attempts[uuid] = attempts + 1
            error = await _delay(query, "delayRetry")
            if error:
                return _error_reply(error)
            return Reply(0, after=After.RESET) if response_code is None else _status_reply(response_code)

    def encode(self, ex: Exchange, reply: Reply, keep_alive: bool) -> bytes:
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


def _json_headers(headers: dict[str, list[str]]) -> str:
    """The ``headers`` member as ``json.MarshalIndent(v, "", " ")`` nests it: sorted keys."""
    if not headers:
        return "{}"
    entries = []
    for name in sorted(headers):
        values = ",\n".join(f"   {json_string(value)}" for value in headers[name])
        entries.append(f"  {json_string(name)}: [\n{values}\n  ]")
    return "{\n" + ",\n".join(entries) + "\n }"
