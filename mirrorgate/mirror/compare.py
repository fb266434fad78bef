"""Comparing a mirror's response with the primary's (pure: no I/O, no clock, no state).

``compare(primary, mirror, settings)`` returns the differences between two captured responses
(``Side``) as ``MirrorCompare`` (the IR) says to look at them.

Rules:
1. Status: the codes differ -> one ``status`` difference, ``detail`` ``class`` when their classes
   (2xx, 4xx, ...) differ too, else ``code``.
2. Headers: names are case-insensitive; the values of a name repeated are joined with ``", "``
   (RFC 9110 section 5.3). With ``headers`` listed only those names are compared, else every
   name but ``ignore_headers`` and ``DEFAULT_IGNORED`` (values that differ on every response:
   date, age, expires, framing and connection headers, the request id). A name present on one
   side only is a difference (``absent`` names the side that lacks it).
3. Bodies: bodies of the same length and digest are equal (nothing is parsed). Otherwise, when
   both sides are JSON (content type ``application/json`` or ``*/*+json``, any parameters), both
   were kept whole (not longer than ``max_body_bytes``), neither is longer than
   ``MAX_JSON_BYTES`` and both parse, they are compared member by member: the differences are
   JSON paths (``$.a.b[0]``, ``$['a key']``), minus the ones ``ignore_paths`` cover (a path
   covers its whole subtree; ``[*]`` and ``.*`` match any index or member). Numbers compare by
   value (``1 == 1.0``), booleans never equal numbers. Otherwise the bodies compare by length
   and digest (of the whole body, even when only the first ``max_body_bytes`` were kept); a JSON
   body that was not compared member by member only because it is larger than
   ``MAX_JSON_BYTES`` gets a ``note`` saying so.
4. Bounded output: at most ``MAX_DIFFERENCES`` differences per comparison; a JSON value longer
   than ``MAX_VALUE_CHARS`` once encoded is shown as ``"<object: N bytes>"`` (or array, string).
   Bounded work (a comparison runs on the event loop that relays the primary, ``board.py`` rule
   2): at most ``2 x MAX_JSON_BYTES`` are parsed and ``MAX_JSON_NODES`` values visited; a walk
   that reaches the cap stops, keeps the differences it found and adds the length-and-digest
   difference with a ``note`` ("too large to compare field by field").
5. A malformed ``ignore_paths`` entry raises ``ValueError`` naming it (``parse_path``). Bad
   input never reaches here: MirrorPolicy admission's ``ignorePaths`` pattern accepts only
   paths ``parse_path`` reads (a property test checks the two agree).
"""

import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from mirrorgate.ir.table import COMPARE_IGNORED_HEADERS, COMPARE_REDACTED_HEADERS, MirrorCompare

DEFAULT_IGNORED = frozenset(COMPARE_IGNORED_HEADERS)
ALWAYS_REDACTED = frozenset(COMPARE_REDACTED_HEADERS)
MAX_DIFFERENCES = 100
MAX_VALUE_CHARS = 256
MAX_JSON_BYTES = 256 << 10  # a larger body is compared by length and digest (rule 3)
MAX_JSON_NODES = 20_000  # JSON values one comparison visits at most (rule 4)
REDACTED = "[redacted]"

# a path segment: ("key", name) | ("index", n) | ("any", None)
Segment = tuple[str, str | int | None]
Path = tuple[Segment, ...]
_ANY: Segment = ("any", None)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class Side(msgspec.Struct, frozen=True, kw_only=True):
    """One captured response: the status, the header lines as received (names as sent), the
    first ``max_body_bytes`` of the body (``body``), the whole body's ``length`` and ``digest``,
    and the latency in seconds."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    length: int = 0
    digest: str = ""
    latency: float = 0.0

    @property
    def truncated(self) -> bool:
        return self.length > len(self.body)


class Difference(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One difference: ``kind`` ``status`` | ``header`` | ``body``; ``name`` (a header's, lower
    case) or ``path`` (a JSON body's); the value on each side; ``absent``: the side that lacks
    the header or member (``primary`` or ``mirror``); ``detail``: for a status, ``class`` or
    ``code``; for a body, ``json`` or ``bytes`` (how it was compared); ``note``: why a JSON
    body was (also) compared by its bytes."""

    kind: str
    primary: Any = None
    mirror: Any = None
    name: str | None = None
    path: str | None = None
    absent: str | None = None
    detail: str | None = None
    note: str | None = None  # why a JSON body was compared by its bytes (rules 3 and 4)


# --- paths -------------------------------------------------------------------------------------


def parse_path(text: str) -> Path:
    """``$.a.b``, ``$.items[*].id``, ``$['a key'][0]``, ``$.*`` -> segments; raises ValueError."""
    if not text.startswith("$"):
        raise ValueError(f"invalid JSON path {text!r}: must start with '$'")
    segments: list[Segment] = []
    i, n = 1, len(text)
    while i < n:
        c = text[i]
        if c == ".":
            if text.startswith("*", i + 1):
                segments.append(_ANY)
                i += 2
                continue
            m = _IDENT.match(text, i + 1)
            if m is None:
                raise ValueError(f"invalid JSON path {text!r}: expected a member name at offset {i + 1}")
            segments.append(("key", m.group()))
            i = m.end()
        elif c == "[":
            close = _bracket(text, i)
            inner = text[i + 1 : close]
            if inner == "*":
                segments.append(_ANY)
            elif inner.isdigit() and inner.isascii():
                segments.append(("index", int(inner)))
            elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
                segments.append(("key", _unquote(inner, text)))
            else:
                raise ValueError(f"invalid JSON path {text!r}: {inner!r} is not an index, '*' or a quoted name")
            i = close + 1
        else:
            raise ValueError(f"invalid JSON path {text!r}: unexpected {c!r} at offset {i}")
    return tuple(segments)


def _bracket(text: str, start: int) -> int:
    """The index of the ``]`` closing the bracket at ``start`` (quotes may hold ``]``)."""
    i = start + 1
    quote = text[i] if i < len(text) and text[i] in "'\"" else ""
    if quote:
        i += 1
        while i < len(text) and text[i] != quote:
            i += 2 if text[i] == "\\" else 1
        i += 1
    close = text.find("]", i)
    if close < 0:
        raise ValueError(f"invalid JSON path {text!r}: '[' at offset {start} is never closed")
    return close


def _unquote(inner: str, text: str) -> str:
    body = inner[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            if i + 1 == len(body):
                raise ValueError(f"invalid JSON path {text!r}: dangling '\\' in {inner}")
            out.append(body[i + 1])
            i += 2
            continue
        if c == inner[0]:
            raise ValueError(f"invalid JSON path {text!r}: unescaped quote in {inner}")
        out.append(c)
        i += 1
    return "".join(out)


def format_path(path: Sequence[str | int]) -> str:
    """Concrete segments (member names and indexes) -> ``$.a['b c'][0]`` (``parse_path`` reads it back)."""
    out = ["$"]
    for seg in path:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif _IDENT.fullmatch(seg):
            out.append(f".{seg}")
        else:
            out.append("['" + seg.replace("\\", "\\\\").replace("'", "\\'") + "']")
    return "".join(out)


def _covered(path: Sequence[str | int], patterns: Iterable[Path]) -> bool:
    """Some pattern matches a prefix of ``path`` (it covers the subtree)."""
    for pattern in patterns:
        if len(pattern) > len(path):
            continue
        for (kind, want), got in zip(pattern, path, strict=False):
            if kind == "any":
                continue
            if kind == "index":
                if not isinstance(got, int) or got != want:
                    break
            elif isinstance(got, int) or got != want:
                break
        else:
            return True
    return False


# --- comparing ---------------------------------------------------------------------------------


def compare(primary: Side, mirror: Side, settings: MirrorCompare) -> list[Difference]:
    """Every difference between the two responses (rules 1-4), status first, then headers, then body."""
    out: list[Difference] = []
    if primary.status != mirror.status:
        detail = "code" if primary.status // 100 == mirror.status // 100 else "class"
        out.append(Difference(kind="status", primary=primary.status, mirror=mirror.status, detail=detail))
    out += compare_headers(primary.headers, mirror.headers, settings)
    out += compare_bodies(primary, mirror, settings, MAX_DIFFERENCES - len(out))
    return out[:MAX_DIFFERENCES]


def joined(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case name -> values joined with ``", "`` in order (rule 2)."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        old = out.get(key)
        out[key] = value if old is None else f"{old}, {value}"
    return out


def compare_headers(
    primary: Iterable[tuple[str, str]], mirror: Iterable[tuple[str, str]], settings: MirrorCompare
) -> list[Difference]:
    a, b = joined(primary), joined(mirror)
    if settings.headers:
        names: Iterable[str] = sorted({n.lower() for n in settings.headers})
    else:
        ignored = DEFAULT_IGNORED | {n.lower() for n in settings.ignore_headers}
        names = sorted((a.keys() | b.keys()) - ignored)
    out = []
    for name in names:
        va, vb = a.get(name), b.get(name)
        if va == vb:
            continue
        absent = "primary" if va is None else "mirror" if vb is None else None
        out.append(Difference(kind="header", name=name, primary=va, mirror=vb, absent=absent))
    return out


def is_json(content_type: str | None) -> bool:
    """``application/json`` or ``<type>/<subtype>+json``, parameters ignored (RFC 6839 section 3.1)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.count("/") == 1 and media.endswith("+json"))


_UNPARSED = object()


def _json_of(side: Side) -> Any:
    if side.truncated or len(side.body) > MAX_JSON_BYTES or not is_json(joined(side.headers).get("content-type")):
        return _UNPARSED
    try:
        return msgspec.json.decode(side.body)
    except (msgspec.DecodeError, RecursionError):
        return _UNPARSED


def _too_large(side: Side) -> bool:
    """Rule 3's note: JSON kept whole, but longer than ``MAX_JSON_BYTES``."""
    return not side.truncated and len(side.body) > MAX_JSON_BYTES and is_json(joined(side.headers).get("content-type"))


def compare_bodies(
    primary: Side, mirror: Side, settings: MirrorCompare, limit: int = MAX_DIFFERENCES
) -> list[Difference]:
    if primary.length == mirror.length and primary.digest == mirror.digest:
        return []  # the same bytes (rule 3): nothing to parse
    note = None
    a = _json_of(primary)
    b = _json_of(mirror) if a is not _UNPARSED else _UNPARSED
    if a is not _UNPARSED and b is not _UNPARSED:
        patterns = [parse_path(p) for p in settings.ignore_paths]
        out, complete = walk(a, b, patterns, limit)
        if complete:
            return out
        note = f"too large to compare field by field: more than {MAX_JSON_NODES} JSON values"
        out = out[: limit - 1]
    else:
        out = []
        if _too_large(primary) or _too_large(mirror):
            note = f"too large to compare field by field: longer than {MAX_JSON_BYTES} bytes"
    out.append(
        Difference(
            kind="body",
            primary={"length": primary.length, "digest": primary.digest},
            mirror={"length": mirror.length, "digest": mirror.digest},
            detail="bytes",
            note=note,
        )
    )
    return out


def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def json_differences(a: Any, b: Any, ignore: Sequence[Path] = (), limit: int = MAX_DIFFERENCES) -> list[Difference]:
    """The JSON paths where ``a`` and ``b`` differ, outside ``ignore`` (rule 3), in document
    order (members sorted), at most ``limit``; the first ``MAX_JSON_NODES`` values only (rule 4)."""
    return walk(a, b, ignore, limit)[0]


def walk(
    a: Any, b: Any, ignore: Sequence[Path] = (), limit: int = MAX_DIFFERENCES, max_nodes: int = MAX_JSON_NODES
) -> tuple[list[Difference], bool]:
    """``json_differences`` and whether the walk was complete (False: it stopped after visiting
    ``max_nodes`` values, rule 4). Iterative: any nesting depth."""
    out: list[Difference] = []
    stack: list[tuple[tuple[str | int, ...], Any, Any, str | None]] = [((), a, b, None)]
    visited = 0
    while stack and len(out) < limit:
        if visited == max_nodes:
            return out, False
        visited += 1
        path, x, y, absent = stack.pop()
        if ignore and _covered(path, ignore):
            continue
        if absent is not None:
            out.append(_body_diff(path, x, y, absent))
        elif isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(x.keys() | y.keys(), reverse=True):
                if key not in y:
                    stack.append(((*path, key), x[key], None, "mirror"))
                elif key not in x:
                    stack.append(((*path, key), None, y[key], "primary"))
                else:
                    stack.append(((*path, key), x[key], y[key], None))
        elif isinstance(x, list) and isinstance(y, list):
            for i in range(max(len(x), len(y)) - 1, -1, -1):
                if i >= len(y):
                    stack.append(((*path, i), x[i], None, "mirror"))
                elif i >= len(x):
                    stack.append(((*path, i), None, y[i], "primary"))
                else:
                    stack.append(((*path, i), x[i], y[i], None))
        elif isinstance(x, dict | list) or isinstance(y, dict | list) or not _scalar_equal(x, y):
            out.append(_body_diff(path, x, y, None))  # the types differ, or two scalars do
    return out, True


def _body_diff(path: tuple[str | int, ...], x: Any, y: Any, absent: str | None) -> Difference:
    return Difference(
        kind="body",
        path=format_path(path),
        primary=shown(x) if absent != "primary" else None,
        mirror=shown(y) if absent != "mirror" else None,
        absent=absent,
        detail="json",
    )


def shown(value: Any) -> Any:
    """``value`` as kept in a difference: itself when short once encoded, else a summary (rule 4)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    size = len(msgspec.json.encode(value))
    if size <= MAX_VALUE_CHARS:
        return value
    kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "string"
    return f"<{kind}: {size} bytes>"
