"""Go standard-library behaviour the echo server copies, because the Gateway API conformance backend
``echo-basic`` (which ``mirrorgate echo`` replaces) is written in Go.

Owns: ``textproto.CanonicalMIMEHeaderKey``, ``time.ParseDuration``, ``url.QueryUnescape`` /
``PathUnescape`` and ``url.ParseQuery``, ``strconv.Atoi``, and the string encoding of
``encoding/json`` (UTF-8 repair and HTML-safe escaping).

Rules:
1. Pure functions and immutable tables only; no I/O, no asyncio, no logging.
2. Each helper copies the behaviour of the Go function it names exactly, error messages included.
3. Strings that stand for raw wire bytes are latin-1 decoded, so every byte round-trips.
"""

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Final

from mirrorgate.echo.http11 import is_token

__all__ = [
    "GoDurationError",
    "canonical_header_key",
    "go_atoi",
    "go_json_headers",
    "go_json_str",
    "go_unescape",
    "go_utf8",
    "parse_go_duration",
    "parse_go_duration_ns",
    "parse_go_query",
]


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


# --- Go strconv.Atoi -------------------------------------------------------------------------


def go_atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi`` on a 64-bit platform; None where Go returns an error."""
    if re.fullmatch(r"[+-]?[0-9]{1,19}", text, re.ASCII) is None:
        return None
    value = int(text)
    return value if -(1 << 63) <= value < (1 << 63) else None


# --- Go encoding/json compatibility -----------------------------------------------------------

_JSON_PLAIN: Final = re.compile(r"[ !#-%'-;=?-\[\]-~]*")  # printable ASCII Go emits unescaped


def go_utf8(raw: bytes) -> str:
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


def go_json_str(text: str) -> str:
    """A JSON string literal exactly as Go's ``encoding/json`` writes it (HTML-safe escaping)."""
    if _JSON_PLAIN.fullmatch(text):
        return f'"{text}"'
    encoded = json.dumps(text, ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        encoded = encoded.replace(char, escape)
    return encoded.replace("\u2029", "\\u2029")


def go_json_headers(headers: dict[str, list[str]]) -> str:
    """The ``headers`` member as ``json.MarshalIndent(v, "", " ")`` nests it: sorted keys."""
    if not headers:
        return "{}"
    entries = []
    for name in sorted(headers):
        values = ",\n".join(f"   {go_json_str(value)}" for value in headers[name])
        entries.append(f"  {go_json_str(name)}: [\n{values}\n  ]")
    return "{\n" + ",\n".join(entries) + "\n }"
