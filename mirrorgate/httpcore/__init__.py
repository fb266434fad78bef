"""Small, dependency-free HTTP/1.1 helpers shared by the echo backend and the gateway.

Owns: Go-compatible header-name canonicalisation, Go ``time.ParseDuration``, Go-style URL
unescaping and query parsing, request-target splitting, reason phrases and status lines, and a
per-second cache of the ``Date`` header.

Rules:
1. Pure functions and immutable tables only; no I/O, no asyncio, no logging, nothing imported
   from the rest of ``mirrorgate``.
2. Where a helper copies the behaviour of Go's standard library (which the Gateway API
   conformance backend ``echo-basic`` is written against), it copies the behaviour exactly,
   error messages included, and says which Go function it follows.
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
    "GoDurationError",
    "HttpDateCache",
    "RequestTarget",
    "canonical_header_key",
    "go_unescape",
    "is_token",
    "parse_go_duration",
    "parse_go_duration_ns",
    "parse_go_query",
    "reason_phrase",
    "split_request_target",
    "status_line",
]

# RFC 9110 §5.6.2: token = 1*tchar.
_TCHARS: Final = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def is_token(text: str) -> bool:
    """Return whether ``text`` is a non-empty RFC 9110 token (a valid header field name)."""
    return bool(text) and all(char in _TCHARS for char in text)


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


# --- Go time.ParseDuration ------------------------------------------------------------------

_NS_PER_UNIT: Final[Mapping[str, int]] = MappingProxyType(
    {
        "ns": 1,
        "us": 1_000,
        "\u00b5s": 1_000,  # MICRO SIGN, as Go accepts
        "\u03bcs": 1_000,  # GREEK SMALL LETTER MU, as Go accepts
        "ms": 1_000_000,
        "s": 1_000_000_000,
        "m": 60_000_000_000,
        "h": 3_600_000_000_000,
    }
)
_TWO_POW_63: Final = 1 << 63
_DIGITS: Final = frozenset("0123456789")


class GoDurationError(ValueError):
    """A string Go's ``time.ParseDuration`` rejects; ``str(err)`` is Go's exact message."""


def _go_quote(text: str) -> str:
    """Go's ``time.quote``: double quotes, with non-ASCII and control bytes as ``\\xNN``."""
    out = ['"']
    for char in text:
        if char < " " or char >= "\x80":
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogateescape"))
        elif char in '"\\':
            out.append("\\" + char)
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _leading_digits(text: str) -> int:
    """Number of leading ASCII digits in ``text``."""
    count = 0
    for char in text:
        if char not in _DIGITS:
            break
        count += 1
    return count


def _leading_fraction(digits: str) -> tuple[int, float]:
    """Go's ``leadingFraction``: the digits' value and scale, ignoring digits that overflow."""
    value, scale = 0, 1.0
    for char in digits:
        candidate = value * 10 + ord(char) - 48
        if candidate > _TWO_POW_63:
            break
        value, scale = candidate, scale * 10
    return value, scale


def _invalid(original: str) -> GoDurationError:
    return GoDurationError(f"time: invalid duration {_go_quote(original)}")


def _duration_component(text: str, original: str) -> tuple[int, str]:
    """Parse one ``[0-9]*(\\.[0-9]*)?unit`` component; return (nanoseconds, rest)."""
    if text[0] != "." and text[0] not in _DIGITS:
        raise _invalid(original)
    n_int = _leading_digits(text)
    significant = text[:n_int].lstrip("0")
    if len(significant) > 19:  # > 2**63 for sure; also keeps int() away from huge inputs
        raise _invalid(original)
    whole = int(significant or "0")
    if whole > _TWO_POW_63:
        raise _invalid(original)
    rest = text[n_int:]
    frac_value, frac_scale, has_frac = 0, 1.0, False
    if rest.startswith("."):
        n_frac = _leading_digits(rest[1:])
        frac_value, frac_scale = _leading_fraction(rest[1 : 1 + n_frac])
        has_frac, rest = n_frac > 0, rest[1 + n_frac :]
    if not n_int and not has_frac:
        raise _invalid(original)
    n_unit = 0
    while n_unit < len(rest) and rest[n_unit] != "." and rest[n_unit] not in _DIGITS:
        n_unit += 1
    if n_unit == 0:
        raise GoDurationError(f"time: missing unit in duration {_go_quote(original)}")
    unit_name, rest = rest[:n_unit], rest[n_unit:]
    unit = _NS_PER_UNIT.get(unit_name)
    if unit is None:
        raise GoDurationError(f"time: unknown unit {_go_quote(unit_name)} in duration {_go_quote(original)}")
    if whole > _TWO_POW_63 // unit:
        raise _invalid(original)
    nanos = whole * unit
    if frac_value > 0:
        # Go does this step in float64 ("nanosecond accurate for fractions of hours").
        nanos += int(float(frac_value) * (float(unit) / frac_scale))
        if nanos > _TWO_POW_63:
            raise _invalid(original)
    return nanos, rest


def parse_go_duration_ns(text: str) -> int:
    """Parse a Go duration string (``1h2m3.5s``, ``-1.5ms``, ``300us``) into integer nanoseconds.

    Follows Go's ``time.ParseDuration`` grammar ``[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+`` with the units
    ns, us (also µs/μs), ms, s, m and h, its int64 range, and its rounding. The Gateway API
    ``Duration`` type (GEP-2257) is a subset of this grammar.

    Raises ``GoDurationError`` carrying Go's exact error text; raising anything else is a bug.
    """
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if rest == "":
        raise _invalid(text)
    total = 0
    while rest:
        nanos, rest = _duration_component(rest, text)
        total += nanos
        if total > _TWO_POW_63:
            raise _invalid(text)
    if negative:
        return -total
    if total > _TWO_POW_63 - 1:
        raise _invalid(text)
    return total


def parse_go_duration(text: str) -> float:
    """Like ``parse_go_duration_ns`` but returns seconds as a float (may be negative)."""
    return parse_go_duration_ns(text) / 1e9


# --- Go net/url unescaping and query parsing --------------------------------------------------

_HEX: Final = frozenset("0123456789abcdefABCDEF")


def go_unescape(text: str, *, query: bool) -> str:
    """Go's ``url.QueryUnescape`` (``query=True``: ``+`` is a space) or ``url.PathUnescape``.

    Input and output are latin-1 strings standing for bytes (``%C3%A9`` -> ``"\\xc3\\xa9"``).
    Raises ``ValueError`` for a malformed ``%`` escape, as Go returns an ``EscapeError``.
    """
    if "%" not in text and not (query and "+" in text):
        return text
    out: list[str] = []
    i, length = 0, len(text)
    while i < length:
        char = text[i]
        if char == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise ValueError(f"invalid URL escape {text[i : i + 3]!r}")
            out.append(chr(int(pair, 16)))
            i += 3
            continue
        out.append(" " if query and char == "+" else char)
        i += 1
    return "".join(out)


def parse_go_query(raw_query: str) -> dict[str, list[str]]:
    """Go's ``url.ParseQuery`` with errors ignored, as ``URL.Query()`` and ``FormValue`` use it.

    Pairs are split on ``&``; a pair containing ``;`` or a malformed escape is skipped; values
    keep their order. Keys and values are unescaped latin-1 strings. Raising anything is a bug.
    """
    values: dict[str, list[str]] = {}
    for pair in raw_query.split("&"):
        if not pair or ";" in pair:
            continue
        key, _, value = pair.partition("=")
        try:
            key, value = go_unescape(key, query=True), go_unescape(value, query=True)
        except ValueError:  # Go skips just this pair.
            continue
        values.setdefault(key, []).append(value)
    return values


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
