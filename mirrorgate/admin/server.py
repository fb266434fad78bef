"""Admin HTTP server (default 127.0.0.1:9901; never on a public address unless asked).

Endpoints (GET or HEAD; anything else 405, unknown paths 404):
``/healthz``      200 ``ok`` while the process runs
``/readyz``       200 once every listener is bound and some listener is served, else 503 with
                  ``not ready: <why>`` (e.g. ``no listener is served: ...``) as the body
``/metrics``      Prometheus text exposition of the registry given
``/config_dump``  the routing table (IR) as JSON
``/status``       resources with their conditions plus the last reload error, as JSON
``/mirrors``      every mirror of the routing table with its counters and, for a mirror that
                  compares responses, its comparison summary (JSON, ``mirror/views.py``)
``/mirrors/<id>/diffs``  the latest mismatches of one mirror, newest first (JSON); an unknown
                  id is 404 with a JSON ``{"error": ...}``
``/dashboard``    (and ``/``) a read-only live page over the endpoints above (``dashboard.html``,
                  ``/dashboard-lib.js``, ``/dashboard.js``, ``/dashboard.css``, ``/favicon.svg``: package
                  files, read once, no other assets)

Rules: one request per connection (``Connection: close``), heads limited to 16 KiB, bodies
ignored; each answer is computed from callables so the admin server never holds stale state.
It imports ``mirrorgate.ir`` only; the runtime passes the status view in.
Every answer carries ``X-Content-Type-Options: nosniff`` and a Content-Security-Policy that lets a
page load scripts, styles and data from this server only (no inline script or style, no frames,
no forms), so the dashboard renders untrusted data (names, headers, bodies) as text and nothing
it shows can load or run anything else.
On a loopback address (the default) it answers only requests whose Host is ``localhost`` or an
IP address (a request without Host too), else 403: a web page whose DNS name an attacker rebinds
to 127.0.0.1 sends its own name as Host, so it cannot read the admin server through the victim's
browser (DNS rebinding). Bound to another address on purpose (``--admin 0.0.0.0:9901`` for a
Prometheus in the cluster), any Host is answered.
"""

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

import httptools
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from mirrorgate.ir.dump import table_to_builtins, to_json
from mirrorgate.ir.table import RoutingTable

log = logging.getLogger("mirrorgate.admin")

MAX_HEAD = 16 * 1024
READ_TIMEOUT = 10.0
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The dashboard's files: path -> (content type, package file).
STATIC = {
    b"/": (b"text/html; charset=utf-8", "dashboard.html"),
    b"/dashboard": (b"text/html; charset=utf-8", "dashboard.html"),
    b"/dashboard-lib.js": (b"text/javascript; charset=utf-8", "dashboard-lib.js"),
    b"/dashboard.js": (b"text/javascript; charset=utf-8", "dashboard.js"),
    b"/dashboard.css": (b"text/css; charset=utf-8", "dashboard.css"),
    b"/favicon.svg": (b"image/svg+xml", "favicon.svg"),
}


@cache
def static_file(name: str) -> bytes:
    """A file of this package, read once (installed as package data)."""
    return files(__package__).joinpath(name).read_bytes()


class AdminApp:
    """What the admin server shows; every field is read at request time."""

    __slots__ = ("diffs", "mirrors", "ready", "registry", "status", "table", "why_not_ready")

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        table: Callable[[], RoutingTable],
        status: Callable[[], dict[str, Any]],
        ready: Callable[[], bool],
        why_not_ready: Callable[[], str | None] = lambda: None,
        mirrors: Callable[[], dict[str, Any]] | None = None,
        diffs: Callable[[str], dict[str, Any] | None] | None = None,
    ) -> None:
        self.registry = registry
        self.table = table
        self.status = status
        self.ready = ready
        self.why_not_ready = why_not_ready  # a reason not to be ready even when ``ready()`` holds
        self.mirrors = mirrors  # ``/mirrors`` (None: not served here, 404)
        self.diffs = diffs  # ``/mirrors/<id>/diffs``: None for an unknown id

    def handle(self, method: bytes, path: bytes) -> tuple[int, bytes, bytes]:
        """(status, content type, body) for one request."""
        route = path.split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return 405, b"text/plain", b"method not allowed\n"
        if route == b"/healthz":
            return 200, b"text/plain", b"ok\n"
        if route == b"/readyz":
            return self._readyz()
        if route == b"/metrics":
            return 200, CONTENT_TYPE_LATEST.encode(), generate_latest(self.registry)
        if route == b"/config_dump":
            return 200, b"application/json", to_json(table_to_builtins(self.table())).encode()
        if route == b"/status":
            return 200, b"application/json", to_json(self.status()).encode()
        if route.startswith(b"/mirrors") and self.mirrors is not None:
            return self._mirrors(route)
        static = STATIC.get(route)
        if static is not None:
            return 200, static[0], static_file(static[1])
        return 404, b"text/plain", b"not found\n"

    def _mirrors(self, route: bytes) -> tuple[int, bytes, bytes]:
        if route in (b"/mirrors", b"/mirrors/"):
            assert self.mirrors is not None
            return 200, b"application/json", to_json(self.mirrors()).encode()
        parts = route.split(b"/")  # b"", b"mirrors", id, b"diffs"
        if len(parts) == 4 and parts[3] == b"diffs" and self.diffs is not None:
            mirror_id = parts[2].decode("latin-1")
            doc = self.diffs(mirror_id)
            if doc is not None:
                return 200, b"application/json", to_json(doc).encode()
            return 404, b"application/json", to_json({"error": f"no mirror with id {mirror_id!r}"}).encode()
        return 404, b"application/json", to_json({"error": "not found"}).encode()

    def _readyz(self) -> tuple[int, bytes, bytes]:
        why = self.why_not_ready()
        if why is not None:
            return 503, b"text/plain", f"not ready: {why}\n".encode()
        return (200, b"text/plain", b"ready\n") if self.ready() else (503, b"text/plain", b"not ready\n")


_REASONS = {
    200: b"OK",
    403: b"Forbidden",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    431: b"Request Header Fields Too Large",  # RFC 6585, section 5
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


_SECURITY_HEADERS = (
    b"X-Content-Type-Options: nosniff\r\nContent-Security-Policy: %s\r\nReferrer-Policy: no-referrer\r\n"
    b"Cache-Control: no-store\r\n" % CONTENT_SECURITY_POLICY.encode()
)


class _Request:
    __slots__ = ("done", "host", "path")

    def __init__(self) -> None:
        self.path = b""
        self.done = False
        self.host: bytes | None = None  # the first Host field's value

    def on_url(self, url: bytes) -> None:
        self.path += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"host" and self.host is None:
            self.host = value.strip()

    def on_headers_complete(self) -> None:
        self.done = True


def is_loopback(address: str) -> bool:
    """``address`` (what the admin server binds) is a loopback address or ``localhost``."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def local_host(host: bytes | None) -> bool:
    """The Host of a request to a loopback admin server: none, ``localhost`` or an IP address,
    with an optional port (the DNS rebinding rule of the module's docstring)."""
    if host is None:
        return True
    name = host
    if name.startswith(b"["):
        name = name[1 : name.find(b"]")] if b"]" in name else b""
    elif name.count(b":") == 1:
        name = name.split(b":", 1)[0]
    if name.lower() == b"localhost":
        return True
    try:
        ipaddress.ip_address(name.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return False
    return True


async def _serve_one(
    app: AdminApp, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, loopback: bool = False
) -> None:
    req = _Request()
    parser = httptools.HttpRequestParser(req)
    status, ctype, body, method = 400, b"text/plain", b"bad request\n", b"GET"
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            size = 0
            while not req.done:
                data = await reader.read(4096)
                if not data:
                    return
                size += len(data)
                if size > MAX_HEAD:
                    status, body = 431, b"request head too large\n"
                    break
                parser.feed_data(data)
        if req.done:
            method = parser.get_method()
            if loopback and not local_host(req.host):
                status, body = 403, b"forbidden: this admin server answers Host localhost or an IP address\n"
            else:
                status, ctype, body = app.handle(method, req.path)
    except httptools.HttpParserError:
        pass  # answered 400 below
    except TimeoutError:
        writer.close()
        return
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n" % (
        status,
        _REASONS.get(status, b"Unknown"),
        ctype,
        len(body),
        _SECURITY_HEADERS,
    )
    writer.write(head if method == b"HEAD" else head + body)
    try:
        await writer.drain()
    except ConnectionError:
        pass  # the client went away; nothing to answer
    finally:
        writer.close()


async def start_admin(app: AdminApp, host: str, port: int) -> asyncio.Server:
    """Listen on ``host:port`` (port 0 = ephemeral) and serve ``app``."""

    loopback = is_loopback(host)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _serve_one(app, reader, writer, loopback)
        except Exception:  # a bug in a handler must not kill the admin server; logged with traceback
            log.exception("admin request failed")
            writer.close()

    server = await asyncio.start_server(handle, host, port)
    log.info("admin server on %s:%d", host, server.sockets[0].getsockname()[1])
    return server
