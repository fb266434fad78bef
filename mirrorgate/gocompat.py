"""Behaviour of Go's standard library that mirrorgate must reproduce byte for byte.

The Kubernetes apiserver (whose admission messages ``providers.admission`` copies) and the
Gateway API conformance backend ``echo-basic`` (which ``echo`` copies) are Go programs; where
their output depends on a Go library function, this module holds the Python equivalent:

* ``parse_duration_ns`` / ``parse_duration_seconds``: ``time.ParseDuration``, with its int64
  range, its float64 rounding of fractions and its exact error messages (``DurationError``).
* ``quote``: ``strconv.Quote`` (what ``%q`` prints); ``time_quote``: the ``time`` package's own
  quoting in its error messages.
* ``json_marshal`` / ``json_string``: ``encoding/json``'s ``Marshal`` (compact, sorted keys,
  HTML-safe escaping of ``<``, ``>``, ``&``, U+2028, U+2029); ``decode_utf8``: how Go's
  encoder reads bytes that are not valid UTF-8 (each such byte becomes U+FFFD).
* ``re2_to_python``: an RE2 pattern rewritten so that ``re`` gives Go's ``regexp`` result.
* ``url_unescape`` / ``parse_query``: ``net/url``'s ``QueryUnescape`` / ``PathUnescape`` and
  ``ParseQuery`` (as ``URL.Query()`` uses it); ``atoi``: ``strconv.Atoi`` on a 64-bit platform.
* ``parse_ip`` / ``ip_to4``: the legacy ``net.ParseIP`` (``netutils.ParseIPSloppy``), which
  accepts IPv4 octets with leading zeros, and ``IP.To4``.

Rules:
1. A leaf: the standard library only, nothing from the rest of ``mirrorgate``.
2. Pure functions and immutable tables; no I/O, no state.
3. Each function copies its Go function exactly, error messages included, and names it. A Go
   string is a byte string; here it is a ``str``. ``time_quote`` (and so ``parse_duration_ns``'s
   messages) reads a lone surrogate U+DC80..U+DCFF as a byte that is not valid UTF-8 (Python's
   ``surrogateescape``); ``quote`` and ``json_marshal`` expect valid Unicode (bytes go through
   ``decode_utf8`` first).
4. Raising anything but the documented exception is a bug.
"""

import ipaddress
import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "DurationError",
    "atoi",
    "decode_utf8",
    "ip_to4",
    "json_marshal",
    "json_string",
    "parse_duration_ns",
    "parse_duration_seconds",
    "parse_ip",
    "parse_query",
    "quote",
    "re2_to_python",
    "time_quote",
    "url_unescape",
]


# --- Quoting: strconv.Quote and time.quote -----------------------------------------------------

_QUOTE_ESCAPES: Final[Mapping[str, str]] = MappingProxyType(
    {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
)


def quote(text: str) -> str:
    """Go's ``strconv.Quote`` (``%q``): named escapes, ``\\xNN`` for other controls, ``\\u``/``\\U``
    for non-printable runes, printable runes as they are.

    ``str.isprintable`` and Go's ``strconv.IsPrint`` accept the same categories (letters, marks,
    numbers, punctuation, symbols, the ASCII space); only their Unicode versions may differ.
    """
    out = ['"']
    for char in text:
        code = ord(char)
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x80 or char.isprintable():
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _go_bytes(char: str) -> bytes:
    """The bytes of one character of a Go string (rule 3); other lone surrogates as UTF-8 would encode them."""
    try:
        return char.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return char.encode("utf-8", "surrogatepass")


def time_quote(text: str) -> str:
    """Go's ``time.quote``: double quotes, ``"`` and ``\\`` escaped, every byte of a non-ASCII or
    control character as ``\\xNN``."""
    out = ['"']
    for char in text:
        if char < " " or char >= "\x80":
            out.extend(f"\\x{byte:02x}" for byte in _go_bytes(char))
        elif char in '"\\':
            out.append("\\" + char)
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


# --- time.ParseDuration ------------------------------------------------------------------------

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


class DurationError(ValueError):
    """A string Go's ``time.ParseDuration`` rejects; ``str(err)`` is Go's exact message."""


def _invalid(original: str) -> DurationError:
    return DurationError(f"time: invalid duration {time_quote(original)}")


def _leading_digits(text: str) -> int:
    """Number of leading ASCII digits in ``text``."""
    count = 0
    for char in text:
        if char not in _DIGITS:
            break
        count += 1
    return count


def _leading_fraction(digits: str) -> tuple[int, float]:
    """Go's ``leadingFraction``: the digits' value and scale, ignoring the digits that would overflow."""
    value, scale = 0, 1.0
    for char in digits:
        candidate = value * 10 + ord(char) - 48
        if candidate > _TWO_POW_63:
            break
        value, scale = candidate, scale * 10
    return value, scale


def _unit(rest: str, original: str) -> tuple[int, str]:
    """Consume the unit (everything up to the next digit or ``.``); return (ns per unit, rest)."""
    n_unit = 0
    while n_unit < len(rest) and rest[n_unit] != "." and rest[n_unit] not in _DIGITS:
        n_unit += 1
    if n_unit == 0:
        raise DurationError(f"time: missing unit in duration {time_quote(original)}")
    name, rest = rest[:n_unit], rest[n_unit:]
    unit = _NS_PER_UNIT.get(name)
    if unit is None:
        raise DurationError(f"time: unknown unit {time_quote(name)} in duration {time_quote(original)}")
    return unit, rest


def _duration_component(text: str, original: str) -> tuple[int, str]:
    """Parse one ``[0-9]*(\\.[0-9]*)?unit`` component; return (nanoseconds, rest)."""
    if text[0] != "." and text[0] not in _DIGITS:
        raise _invalid(original)
    n_int = _leading_digits(text)
    significant = text[:n_int].lstrip("0")
    if len(significant) > 19:  # > 2**63 for sure (Go's leadingInt overflow); keeps int() off huge inputs
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
    unit, rest = _unit(rest, original)
    if whole > _TWO_POW_63 // unit:
        raise _invalid(original)
    nanos = whole * unit
    if frac_value > 0:
        # Go does this step in float64 ("nanosecond accurate for fractions of hours").
        nanos += int(float(frac_value) * (float(unit) / frac_scale))
        if nanos > _TWO_POW_63:
            raise _invalid(original)
    return nanos, rest


def parse_duration_ns(text: str) -> int:
    """Parse a Go duration string (``1h2m3.5s``, ``-1.5ms``, ``300us``) into integer nanoseconds.

    Follows Go's ``time.ParseDuration`` grammar ``[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+`` with the units
    ns, us (also µs/μs), ms, s, m and h, its int64 range, and its rounding; a bare ``0`` is the
    only unitless value. The Gateway API ``Duration`` type (GEP-2257) is a subset of this grammar.

    Raises ``DurationError`` carrying Go's exact error text.
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


def parse_duration_seconds(text: str) -> float:
    """Like ``parse_duration_ns`` but returns seconds as a float (may be negative)."""
    return parse_duration_ns(text) / 1e9


# --- encoding/json ----------------------------------------------------------------------------

_JSON_PLAIN: Final = re.compile(r"[ !#-%'-;=?-\[\]-~]*")  # printable ASCII Go emits unescaped
_HTML_ESCAPES: Final = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _html_safe(encoded: str) -> str:
    for char, escape in _HTML_ESCAPES:
        encoded = encoded.replace(char, escape)
    return encoded


def json_marshal(value: object) -> str:
    """Go's ``json.Marshal``: compact, map keys sorted, HTML-safe string escaping.

    Strings must be valid Unicode: a lone surrogate is written as it is (Go would write ``\\ufffd``
    for an invalid byte); ``decode_utf8`` turns raw bytes into such a string first.
    """
    return _html_safe(json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True))


def json_string(text: str) -> str:
    """``json_marshal(text)`` for a ``str``, with a fast path for plain printable ASCII."""
    if _JSON_PLAIN.fullmatch(text):
        return f'"{text}"'
    return _html_safe(json.dumps(text, ensure_ascii=False))


def decode_utf8(raw: bytes) -> str:
    """Decode like Go's JSON encoder reads a string: each byte that is not valid UTF-8 becomes U+FFFD.

    ``json_string(decode_utf8(raw))`` then writes that U+FFFD as the character itself, where Go's
    encoder writes the six characters ``\\ufffd``: the same JSON value in different bytes.
    """
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


# --- regexp (RE2) -----------------------------------------------------------------------------


def re2_to_python(source: str) -> str:
    """Rewrite an RE2 pattern for ``re``: an unescaped ``$`` outside a class becomes ``\\Z``.

    In RE2 (without the ``m`` flag) ``$`` matches only at the end of the text; in ``re`` it also
    matches before a final newline. Go's ``MatchString`` is a search, as ``re.search`` is.
    Limitation: a ``]`` first in a class (``[]a]``) is taken as the end of the class; no CRD
    pattern has one.
    """
    out: list[str] = []
    in_class = escaped = False
    for char in source:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            out.append(char)
            escaped = True
        elif in_class:
            out.append(char)
            in_class = char != "]"
        elif char == "[":
            out.append(char)
            in_class = True
        else:
            out.append(r"\Z" if char == "$" else char)
    return "".join(out)


# --- net.ParseIP (legacy) and IP.To4 ----------------------------------------------------------


def _parse_ipv4_sloppy(text: str) -> bytes | None:
    parts = text.split(".")
    if len(parts) != 4 or any(not p.isascii() or not p.isdigit() or int(p) > 255 for p in parts):
        return None
    return bytes(int(p) for p in parts)


def _parse_ipv6_sloppy_v4_tail(text: str) -> bytes | None:
    """IPv6 with an embedded IPv4 tail whose octets have leading zeros (Go accepts, Python does not)."""
    head, sep, tail = text.rpartition(":")
    v4 = _parse_ipv4_sloppy(tail) if sep and "." in tail else None
    if v4 is None:
        return None
    try:
        return ipaddress.IPv6Address(f"{head}:{ipaddress.IPv4Address(v4)}").packed
    except ValueError:
        return None


def parse_ip(text: str) -> bytes | None:
    """Go's legacy ``net.ParseIP``: 16 bytes for IPv6, 4 for IPv4, None if invalid.

    The first ``.`` or ``:`` decides the family, as in Go; IPv4 octets may have leading zeros
    (``010.1.1.1`` is 10.1.1.1); zones (``%eth0``) are rejected.
    """
    for char in text:
        if char == ".":
            return _parse_ipv4_sloppy(text)
        if char == ":":
            if "%" in text or not text.isascii():
                return None
            try:
                return ipaddress.IPv6Address(text).packed
            except ValueError:
                return _parse_ipv6_sloppy_v4_tail(text)
    return None


def ip_to4(ip: bytes) -> bytes | None:
    """Go's ``IP.To4``: the 4 bytes of an IPv4 or IPv4-mapped IPv6 address, else None."""
    if len(ip) == 4:
        return ip
    if ip[:12] == b"\x00" * 10 + b"\xff\xff":
        return ip[12:]
    return None


# --- Go net/url unescaping and query parsing --------------------------------------------------

_HEX: Final = frozenset("0123456789abcdefABCDEF")


def url_unescape(text: str, *, query: bool) -> str:
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


def parse_query(raw_query: str) -> dict[str, list[str]]:
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
            key, value = url_unescape(key, query=True), url_unescape(value, query=True)
        except ValueError:  # Go skips just this pair.
            continue
        values.setdefault(key, []).append(value)
    return values


# --- Go strconv.Atoi -------------------------------------------------------------------------


def atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi`` on a 64-bit platform; None where Go returns an error."""
    if re.fullmatch(r"[+-]?[0-9]{1,19}", text, re.ASCII) is None:
        return None
    value = int(text)
    return value if -(1 << 63) <= value < (1 << 63) else None
