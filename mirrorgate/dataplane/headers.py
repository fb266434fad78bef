"""Header and URL edits applied to a request on its way upstream and to the response on its way back.

Owns: ``X-Forwarded-For``/``-Proto`` and ``X-Request-Id``, compiled
header modifiers (RequestHeaderModifier / ResponseHeaderModifier), URL rewrites (hostname,
ReplaceFullPath, ReplacePrefixMatch), and redirect ``Location`` building (hop-by-hop rules and
authorities: ``mirrorgate.wire``).

Rules:
1. Pure functions over ``list[tuple[bytes, bytes]]``; duplicates and order are preserved, nothing
   is ever put in a dict keyed by name (a header name may repeat, RFC 9110 §5.3).
2. Request header names are lower-case throughout the data plane (the protocol lowers them once,
   as Envoy does); response names keep the upstream's spelling, so response edits compare
   ``name.lower()``.
3. Everything derived from configuration is compiled once (``compile_edit``); at request time
   only list passes happen.
4. Paths and queries are bytes and are never decoded or re-encoded: the query is preserved
   byte-exact by every rewrite and redirect (RFC 9110 §4.2.3: re-encoding could change what
   the origin sees).

Header modifier semantics (Gateway API ``HTTPHeaderFilter``, as Envoy implements it): ``set``
replaces every line of that name with one line at the position of the first; ``add`` appends
``,value`` (no space) to the **last** existing line of that name, which keeps the RFC 9110
combined value ``old,new`` in one line, or appends a new line when the name is absent;
``remove`` drops every line of that name. Order: set, add, remove; the API allows one action per
name, so the order is only visible on misconfiguration.
"""

import itertools
import os
import random
from collections.abc import Iterable

from mirrorgate.ir.table import HeaderModifier, PathModifier, Redirect, URLRewrite
from mirrorgate.wire.authority import split_host_port
from mirrorgate.wire.hop import HOP_BY_HOP

WELL_KNOWN_PORTS = {"http": 80, "https": 443}

Header = tuple[bytes, bytes]


class _RequestIds:
    """UUID4-shaped ids: a random per-process prefix (version and variant bits set, 74 random bits)
    and a 48-bit counter starting at a random offset. Unique within a process for 2**48 ids and,
    with overwhelming probability, across processes; a forked child draws a new prefix. About a
    third of the cost of drawing 122 random bits per request; the ids are unique, not secret.
    The counter's last 12 bits come from a table and the rest is formatted once per 4096 ids,
    so an id costs one concatenation."""

    __slots__ = ("head", "high", "next", "prefix")

    def __init__(self) -> None:
        self.prefix = b""
        self.next = itertools.count().__next__
        self.high = -1  # the counter's bits above the last 12, as formatted in ``head``
        self.head = b""  # ``prefix`` and the counter's first 9 hex digits
        self.reseed()

    def reseed(self) -> None:
        rnd = random.Random()  # seeded from os.urandom
        h = b"%020x" % rnd.getrandbits(80)
        variant = b"89ab"[rnd.getrandbits(2)]
        self.prefix = h[:8] + b"-" + h[8:12] + b"-4" + h[12:15] + b"-" + bytes((variant,)) + h[15:18] + b"-"
        self.next = itertools.count(rnd.getrandbits(48)).__next__
        self.high = -1

    def new_head(self, high: int) -> bytes:
        self.high = high
        self.head = head = b"%s%09x" % (self.prefix, high & 0xFFFFFFFFF)
        return head


_ids = _RequestIds()
os.register_at_fork(after_in_child=_ids.reseed)
_LOW = tuple(b"%03x" % i for i in range(4096))  # the counter's last 3 hex digits


def new_request_id() -> bytes:
    """A UUID4-shaped id in canonical text form (Envoy generates UUID4s), see ``_RequestIds``:
    ``prefix`` then the counter modulo 2**48 as 12 hex digits."""
    ids = _ids
    n = ids.next()
    high = n >> 12
    return (ids.head if high == ids.high else ids.new_head(high)) + _LOW[n & 0xFFF]


_REQUEST_DROP = HOP_BY_HOP | {b"x-forwarded-proto", b"expect"}


def forward_headers(headers: list[Header], client_ip: bytes, proto: bytes) -> tuple[list[Header], bytes]:
    """The request headers to send upstream, in one pass over lower-case names, and the request id.

    Hop-by-hop fields dropped (as ``strip_hop_by_hop``) plus ``Expect`` (the gateway answers
    ``100-continue`` itself); ``X-Forwarded-For`` lines folded into one with ``client_ip``
    appended; ``X-Forwarded-Proto`` set to ``proto``; ``X-Request-Id`` kept (first one) or added.
    """
    listed: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            listed.update(t.strip().lower() for t in value.split(b","))
    out: list[Header] = []
    xff: list[bytes] = []
    request_id = b""
    for name, value in headers:
        if name in _REQUEST_DROP or name.startswith(b"proxy-") or (listed and name in listed):
            continue
        if name == b"x-forwarded-for":
            xff.append(value)
            continue
        if name == b"x-request-id" and not request_id:
            request_id = value
        out.append((name, value))
    xff.append(client_ip)
    out.append((b"x-forwarded-for", b", ".join(xff) if len(xff) > 1 else client_ip))
    out.append((b"x-forwarded-proto", proto))
    if not request_id:
        request_id = new_request_id()
        out.append((b"x-request-id", request_id))
    return out, request_id


_DROP, _CONNECTION, _XFF, _REQUEST_ID, _HOST = range(5)
_FORWARD_KIND = {name: _DROP for name in _REQUEST_DROP} | {
    b"connection": _CONNECTION,
    b"x-forwarded-for": _XFF,
    b"x-request-id": _REQUEST_ID,
    b"host": _HOST,
}


_PLAIN_CONNECTION = frozenset({b"keep-alive", b"Keep-Alive"})  # as browsers send it


def _names_only_hop_fields(value: bytes, headers: list[Header]) -> bool:
    """Whether the tokens of a Connection value name only fields that are dropped anyway (the
    hop-by-hop ones, and ``close`` when no field is called that)."""
    for token in value.split(b","):
        token = token.strip(b" \t").lower()
        if token and token not in _REQUEST_DROP and (token != b"close" or any(n == b"close" for n, _ in headers)):
            return False
    return True


def forward_tail(client_ip: bytes, proto: bytes) -> bytes:
    """The ``X-Forwarded-For`` and ``-Proto`` lines of a request that had no ``X-Forwarded-For``
    (the same for every request of a connection: made once per connection)."""
    return b"x-forwarded-for: " + client_ip + b"\r\nx-forwarded-proto: " + proto + b"\r\n"


def encode_forward(
    method: bytes, target: bytes, headers: list[Header], client_ip: bytes, proto: bytes, tail: bytes = b""
) -> tuple[list[bytes], bytes, int] | None:
    """``forward_headers`` and the encoding of the request line and of the resulting header lines,
    in one pass and without the intermediate list (the hot path of a rule without request
    filters). Returns the head's parts so far, the request id and the index in the parts of the
    Host value (-1: no Host line); the caller adds its own lines and the final CRLF. None when
    a Connection header names a field that is not itself dropped (it may name an earlier line):
    use ``forward_headers`` then. ``tail``: ``forward_tail(client_ip, proto)`` when the caller
    keeps it (b"": made here when needed)."""
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    xff: list[bytes] | None = None
    request_id = b""
    host_at = -1
    kinds = _FORWARD_KIND
    for name, value in headers:
        kind = kinds.get(name)
        if kind is None:
            if name[:1] == b"p" and name.startswith(b"proxy-"):  # (a one-byte slice allocates nothing)
                continue
        elif kind == _HOST:
            if host_at < 0:
                host_at = len(parts) + 2
        elif kind == _REQUEST_ID:
            if not request_id:
                request_id = value
        elif kind == _XFF:
            if xff is None:
                xff = [value]
            else:
                xff.append(value)
            continue
        elif kind == _DROP:
            continue
        else:  # _CONNECTION: fine when it names only fields dropped anyway (keep-alive, close)
            if value not in _PLAIN_CONNECTION and not _names_only_hop_fields(value, headers):
                return None
            continue
        parts += (name, b": ", value, b"\r\n")
    if xff is None:
        parts.append(tail or forward_tail(client_ip, proto))
    else:
        xff.append(client_ip)
        parts += (b"x-forwarded-for: ", b", ".join(xff), b"\r\nx-forwarded-proto: ", proto, b"\r\n")
    if not request_id:
        request_id = new_request_id()
        parts += (b"x-request-id: ", request_id, b"\r\n")
    return parts, request_id, host_at


def encode_head(method: bytes, target: bytes, headers: list[Header]) -> tuple[list[bytes], int]:
    """The request line and the header lines of a head to forward (headers already forwarded and
    filtered), as ``encode_forward`` returns them: the parts, and the index in the parts of the
    first Host value (-1: no Host line); the caller adds its own lines and the final CRLF."""
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    host_at = -1
    for name, value in headers:
        if name == b"host" and host_at < 0:
            host_at = len(parts) + 2
        parts += (name, b": ", value, b"\r\n")
    return parts, host_at


class HeaderEdit:
    """A compiled header modifier; ``apply`` returns a new list."""

    __slots__ = ("add", "remove", "set")

    def __init__(self, mod: HeaderModifier, lower_names: bool) -> None:
        def enc(name: str) -> bytes:
            return (name.lower() if lower_names else name).encode()

        seen: set[str] = set()

        def first(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[bytes, bytes, bytes], ...]:
            out = []
            for name, value in pairs:
                if name.lower() not in seen:
                    seen.add(name.lower())
                    out.append((name.lower().encode(), enc(name), value.encode()))
            return tuple(out)

        self.set = first(mod.set)
        self.add = first(mod.add)
        self.remove = frozenset(n.lower().encode() for n in mod.remove)

    def apply(self, headers: Iterable[Header]) -> list[Header]:
        out = list(headers)
        for low, name, value in self.set:
            out = _set(out, low, name, value)
        for low, name, value in self.add:
            _add(out, low, name, value)
        if self.remove:
            out = [(n, v) for n, v in out if n.lower() not in self.remove]
        return out


def _set(headers: list[Header], low: bytes, name: bytes, value: bytes) -> list[Header]:
    out: list[Header] = []
    placed = False
    for n, v in headers:
        if n.lower() == low:
            if not placed:
                out.append((name, value))
                placed = True
        else:
            out.append((n, v))
    if not placed:
        out.append((name, value))
    return out


def _add(headers: list[Header], low: bytes, name: bytes, value: bytes) -> None:
    for i in range(len(headers) - 1, -1, -1):
        n, v = headers[i]
        if n.lower() == low:
            headers[i] = (n, v + b"," + value)
            return
    headers.append((name, value))


def compile_edit(mod: HeaderModifier | None, lower_names: bool) -> HeaderEdit | None:
    """None when there is nothing to do; ``lower_names`` for request edits (see rule 2)."""
    if mod is None or not (mod.set or mod.add or mod.remove):
        return None
    return HeaderEdit(mod, lower_names)


def replace_header(headers: list[Header], low: bytes, value: bytes) -> None:
    """In place: the first line named ``low`` gets ``value`` (others of that name dropped), or it is added."""
    headers[:] = _set(headers, low, low, value)


def url_rewrite(rewrite: URLRewrite | None, target: bytes, headers: list[Header]) -> bytes:
    """Apply a URLRewrite: hostname replaces Host (in place); the path modifier rewrites the target."""
    if rewrite is None:
        return target
    if rewrite.hostname:
        replace_header(headers, b"host", rewrite.hostname.encode())
    if rewrite.path is not None:
        return rewrite_path(target, rewrite.path)
    return target


def rewrite_path(target: bytes, modifier: PathModifier) -> bytes:
    """Apply ReplaceFullPath / ReplacePrefixMatch to the path of ``target``; the query (and the
    ``?``) is kept byte-exact. ReplacePrefixMatch follows the table of the Gateway API
    ``HTTPPathModifier`` docs: the matched prefix is replaced element-wise, trailing ``/`` on
    prefix and replacement ignored, and an empty result becomes ``/``. A path the prefix does
    not cover is left unchanged."""
    path, sep, query = target.partition(b"?")
    value = modifier.value.encode()
    if modifier.type == "ReplaceFullPath":
        new = value
    else:
        prefix = modifier.prefix.encode().rstrip(b"/")
        rest = path[len(prefix) :]
        if not path.startswith(prefix) or (rest and not rest.startswith(b"/")):
            return target
        new = value.rstrip(b"/") + rest
    return (new or b"/") + sep + query


def redirect_location(redirect: Redirect, scheme: str, host: bytes, listener_port: int, target: bytes) -> bytes:
    """The ``Location`` of a RequestRedirect (Gateway API ``HTTPRequestRedirectFilter``).

    Scheme: the filter's, else the request's. Host: the filter's hostname, else the request's
    Host without its port. Port: the filter's; else the filter scheme's well-known port when the
    filter sets a scheme; else the listener's port. The port is omitted for http:80 and https:443.
    Path: the filter's path modifier applied, else unchanged; the query is kept.
    """
    out_scheme = redirect.scheme or scheme
    hostname = redirect.hostname.encode() if redirect.hostname else split_host_port(host)[0]
    if redirect.port is not None:
        port = redirect.port
    elif redirect.scheme is not None:
        port = WELL_KNOWN_PORTS.get(redirect.scheme, listener_port)
    else:
        port = listener_port
    authority = hostname if WELL_KNOWN_PORTS.get(out_scheme) == port else hostname + b":%d" % port
    path = rewrite_path(target, redirect.path) if redirect.path is not None else target
    return out_scheme.encode() + b"://" + authority + path
