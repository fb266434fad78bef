"""HTTP/1.1 text the echo server reads and writes, as Go's ``net/http`` server does.

Owns: the token check (RFC 9110 §5.6.2), request-target splitting (origin- and absolute-form,
RFC 9112 §3.2), Go's reason phrases and the status lines made from them, and a per-second cache
of the ``Date`` header; and Go's ``textproto.CanonicalMIMEHeaderKey``.

Rules:
1. Pure functions and immutable tables only (the Date cache holds one value); no I/O, no asyncio.
2. The reason phrases are Go's ``StatusText`` table, not Python's ``HTTPStatus`` (they differ,
   e.g. 413): the gateway's own status lines are ``dataplane.replies``.
3. Strings that stand for raw wire bytes are latin-1 decoded, so every byte round-trips.
"""

import email.utils
import re
import time
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Final, NamedTuple

__all__ = [
    "REASON_PHRASES",
    "HttpDateCache",
    "RequestTarget",
    "is_token",
    "reason_phrase",
    "split_request_target",
    "status_line",
]

# RFC 9110 §5.6.2: token = 1*tchar.
_TCHARS: Final = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def is_token(text: str) -> bool:
    """Return whether ``text`` is a non-empty RFC 9110 token (a valid header field name)."""
    return bool(text) and all(char in _TCHARS for char in text)


class RequestTarget(NamedTuple):
    """A request-target split as Go's ``url.ParseRequestURI`` would (raw, still escaped)."""

    authority: str  # host[:port] of an absolute-form target without userinfo; "" for origin-form
    path: str  # raw path, "" possible for absolute-form
    query: str  # raw query without the "?", "" when absent


_ABSOLUTE_FORM: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def split_request_target(target: str) -> RequestTarget:
    """Split origin-form (``/p?q``) or absolute-form (``http://h/p?q``) into its raw parts."""
    rest, _, query = target.partition("?")
    scheme = _ABSOLUTE_FORM.match(rest)
    if scheme is None:
        return RequestTarget("", rest, query)
    authority, slash, path = rest[scheme.end() :].partition("/")
    return RequestTarget(authority.rpartition("@")[2], slash + path, query)


# --- Status lines, reason phrases, Date -------------------------------------------------------

# Go's net/http StatusText table (the echo backend's reason phrases).
REASON_PHRASES: Final[Mapping[int, str]] = MappingProxyType(
    {
        100: "Continue",
        101: "Switching Protocols",
        102: "Processing",
        103: "Early Hints",
        200: "OK",
        201: "Created",
        202: "Accepted",
        203: "Non-Authoritative Information",
        204: "No Content",
        205: "Reset Content",
        206: "Partial Content",
        207: "Multi-Status",
        208: "Already Reported",
        226: "IM Used",
        300: "Multiple Choices",
        301: "Moved Permanently",
        302: "Found",
        303: "See Other",
        304: "Not Modified",
        305: "Use Proxy",
        307: "Temporary Redirect",
        308: "Permanent Redirect",
        400: "Bad Request",
        401: "Unauthorized",
        402: "Payment Required",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        406: "Not Acceptable",
        407: "Proxy Authentication Required",
        408: "Request Timeout",
        409: "Conflict",
        410: "Gone",
        411: "Length Required",
        412: "Precondition Failed",
        413: "Request Entity Too Large",
        414: "Request URI Too Long",
        415: "Unsupported Media Type",
        416: "Requested Range Not Satisfiable",
        417: "Expectation Failed",
        418: "I'm a teapot",
        421: "Misdirected Request",
        422: "Unprocessable Entity",
        423: "Locked",
        424: "Failed Dependency",
        425: "Too Early",
        426: "Upgrade Required",
        428: "Precondition Required",
        429: "Too Many Requests",
        431: "Request Header Fields Too Large",
        451: "Unavailable For Legal Reasons",
        500: "Internal Server Error",
        501: "Not Implemented",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
        505: "HTTP Version Not Supported",
        506: "Variant Also Negotiates",
        507: "Insufficient Storage",
        508: "Loop Detected",
        510: "Not Extended",
        511: "Network Authentication Required",
    }
)


def reason_phrase(status: int) -> str:
    """The reason phrase for ``status``; ``"status code NNN"`` when unknown, as Go writes."""
    return REASON_PHRASES.get(status) or f"status code {status}"


_STATUS_LINES: Final[Mapping[tuple[int, str], bytes]] = MappingProxyType(
    {
        (status, version): f"HTTP/{version} {status} {phrase}\r\n".encode("ascii")
        for status, phrase in REASON_PHRASES.items()
        for version in ("1.0", "1.1")
    }
)


def status_line(status: int, version: str = "1.1") -> bytes:
    """``b"HTTP/<version> <status> <reason>\\r\\n"``, precomputed for known codes."""
    line = _STATUS_LINES.get((status, version))
    if line is None:
        line = f"HTTP/{version} {status} {reason_phrase(status)}\r\n".encode("ascii")
    return line


class HttpDateCache:
    """The IMF-fixdate for ``Date`` headers, formatted at most once per second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self, now: float | None = None) -> bytes:
        """Return e.g. ``b"Tue, 25 Nov 2025 16:24:00 GMT"`` for ``now`` (default: the clock)."""
        second = int(time.time() if now is None else now)
        if second != self._second:
            self._second = second
            self._value = email.utils.formatdate(second, usegmt=True).encode("ascii")
        return self._value


@lru_cache(maxsize=4096)
def canonical_header_key(name: str) -> str:
    """Return Go's ``textproto.CanonicalMIMEHeaderKey(name)``.

    The first letter and every letter after a ``-`` become upper case, all other letters lower
    case (``x-request-id`` -> ``X-Request-Id``). A name that is not a valid token is returned
    unchanged, as Go does. Raising anything is a bug.
    """
    if not is_token(name):
        return name
    out: list[str] = []
    upper = True
    for char in name:
        out.append(char.upper() if upper else char.lower())
        upper = char == "-"
    return "".join(out)
