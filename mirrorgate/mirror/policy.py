"""A MirrorPolicy's settings as the data plane uses them (``Shape``), derived once per IR ``Mirror``.

The matcher compiles one ``Shape`` per mirror that has any of the IR ``Mirror`` policy fields
(``dataplane.matcher.mirror_shapes``); a mirror without them has none and is served exactly as
before (the shared head, the uniform draw, the gateway's limits).

Rules:
1. ``sample_by``: the request's draw for that mirror is ``key_draw(value)``, the first 8 bytes of
   the BLAKE2b digest (``digest_size=8``, no key) of the value, big-endian, modulo 1,000,000; the
   mirror fires iff the draw is below its ``ppm``. Only the value is hashed (not the mirror's
   name), so two mirrors with the same key nest as uniform draws do (dispatcher rule 1), and the
   draw is the same in every worker, replica and restart (no per-process hash seed).
2. The value is read from the client's request as received (what the route matcher sees, before
   any filter): Header, the value of the first field line of that (lower-case) name, without
   surrounding spaces and tabs (RFC 9110 section 5.5); Cookie, the first ``name=value`` pair of
   that (case-sensitive) name in the Cookie field lines (RFC 6265 section 4.2.1, ``;``
   separated, whitespace around it trimmed); QueryParam, the first occurrence of that name in the
   request-target's query, name and value percent-decoded as the matcher decodes them for query
   matches (``+`` is not a space). A key that is absent or empty is missing: ``Random`` gives the
   request's uniform draw, ``Skip`` counts the mirror as sampled out.
3. ``host``: ``Original`` sends the Host the primary sends, ``ShadowSuffix`` the ``-shadow`` Host,
   ``Literal`` the given value; each overrides the gateway-wide ``shadow_host_suffix``. A request
   without Host (HTTP/1.0) gets the endpoint's ``address:port`` (with the suffix for
   ShadowSuffix) unless the Host is Literal.
4. ``request_headers`` edit the mirrored copy only, after every edit the primary got. Host (set by
   ``host``), ``content-length``, ``transfer-encoding``, ``expect`` and hop-by-hop fields are the
   gateway's and are left out of the edit (framing is ours, ``head.py`` rule 3).
5. ``timeout_ms`` and ``max_body_lag`` replace the gateway's ``timeout`` and ``body_lag_budget``
   for this mirror; ``max_buffered_bytes`` still bounds all mirrors together.
6. Pure: no I/O, no state; raising anything is a bug.
"""

import hashlib
from collections.abc import Callable, Sequence
from urllib.parse import unquote_to_bytes

from mirrorgate.ir.table import PPM, HeaderModifier, Mirror
from mirrorgate.mirror.head import MirrorHead, build_head
from mirrorgate.wire.hop import HOP_BY_HOP

Header = tuple[bytes, bytes]
Edit = Callable[[list[Header]], list[Header]]  # a compiled RequestHeaderModifier (``dataplane.headers``)

HEADER, COOKIE, QUERY = 0, 1, 2  # ``Shape.source``
_SOURCES = {"Header": HEADER, "Cookie": COOKIE, "QueryParam": QUERY}
# Host modes (``Shape.host``); None: the gateway's ``shadow_host_suffix``
ORIGINAL, SHADOW_SUFFIX, LITERAL = "Original", "ShadowSuffix", "Literal"
_NOT_EDITABLE = frozenset({b"host", b"content-length", b"transfer-encoding", b"expect", *HOP_BY_HOP})
_blake2b = hashlib.blake2b


def key_draw(value: bytes) -> int:
    """The draw of a request whose sampling key is ``value`` (rule 1): in [0, 1,000,000)."""
    return int.from_bytes(_blake2b(value, digest_size=8).digest(), "big") % PPM


class Shape:
    """What a MirrorPolicy changes for one mirror, precomputed (see the module rules).

    ``source`` is None without ``sample_by`` (the uniform draw), else ``HEADER``, ``COOKIE`` or
    ``QUERY`` with ``key`` (bytes: a header name lower-case, a cookie or query name as given) and
    ``skip`` (``missing: Skip``). ``own_head``: the mirror needs a head of its own (a Host mode or
    a header edit) instead of the request's shared one. ``timeout`` (seconds) and ``lag_budget``
    (bytes): None keeps the gateway's."""

    __slots__ = ("edit", "host", "key", "lag_budget", "literal", "own_head", "skip", "source", "timeout")

    def __init__(self, mirror: Mirror, edit: Edit | None) -> None:
        sample = mirror.sample_by
        self.source: int | None = _SOURCES[sample.source] if sample is not None else None
        self.key = b""
        if sample is not None:
            self.key = sample.name.lower().encode() if self.source == HEADER else sample.name.encode()
        self.skip = sample is not None and sample.missing == "Skip"
        host = mirror.host
        self.host: str | None = host.type if host is not None else None
        self.literal = host.value.encode() if host is not None and host.type == LITERAL else b""
        self.edit = edit
        self.own_head = self.host is not None or edit is not None
        self.timeout: float | None = mirror.timeout_ms / 1000 if mirror.timeout_ms else None
        self.lag_budget: int | None = mirror.max_body_lag or None

    def __repr__(self) -> str:
        return f"<Shape source={self.source} key={self.key!r} skip={self.skip} host={self.host} edit={bool(self.edit)}>"

    def draw(self, target: bytes, headers: Sequence[Header]) -> int:
        """This request's keyed draw (rule 1); a missing key: -1 (``Random``: take the uniform
        draw) or ``PPM`` (``Skip``: never below any ``ppm``)."""
        value = self.value(target, headers)
        if value:
            return key_draw(value)
        return PPM if self.skip else -1

    def value(self, target: bytes, headers: Sequence[Header]) -> bytes:
        """The request's sampling key (rule 2), ``b""`` when missing."""
        key = self.key
        source = self.source
        if source == HEADER:
            for name, value in headers:
                if name == key:
                    return value.strip(b" \t")  # a field value has no surrounding OWS (RFC 9110 section 5.5)
            return b""
        if source == COOKIE:
            for name, value in headers:
                if name == b"cookie":
                    found = cookie_value(value, key)
                    if found is not None:
                        return found
            return b""
        _, sep, query = target.partition(b"?")
        return query_value(query, key) if sep else b""

    def suffix(self, default: bool) -> bool:
        """Whether the mirror's Host gets ``-shadow`` (a Literal Host never does)."""
        host = self.host
        if host is None:
            return default
        return host == SHADOW_SUFFIX

    def head(
        self, method: bytes, target: bytes, headers: list[Header], has_body: bool, default_suffix: bool
    ) -> MirrorHead:
        """This mirror's own head from the head the primary forwards (``headers``: lower-case
        names, hop-by-hop fields already dropped): the header edit, then the Host (rules 3-4)."""
        if self.edit is not None:
            headers = self.edit(headers)
        if self.host == LITERAL:
            headers = _with_host(headers, self.literal)
            return build_head(method, target, headers, has_body, False)
        return build_head(method, target, headers, has_body, self.suffix(default_suffix))


def cookie_value(field: bytes, name: bytes) -> bytes | None:
    """The value of cookie ``name`` in one Cookie field value (``a=1; b=2``), None when absent."""
    for pair in field.split(b";"):
        n, eq, v = pair.partition(b"=")
        if eq and n.strip() == name:
            return v.strip()
    return None


def query_value(query: bytes, name: bytes) -> bytes:
    """The percent-decoded value of the first ``name`` param of ``query`` (``b""`` when absent)."""
    for part in query.split(b"&"):
        n, _, v = part.partition(b"=")
        if n == name or (b"%" in n and unquote_to_bytes(n) == name):
            return unquote_to_bytes(v)
    return b""


def _with_host(headers: list[Header], host: bytes) -> list[Header]:
    """``headers`` with the first Host line's value replaced by ``host`` (added when there is none)."""
    out = list(headers)
    for i, (name, _) in enumerate(out):
        if name == b"host":
            out[i] = (name, host)
            return out
    out.append((b"host", host))
    return out


def editable(mod: HeaderModifier | None) -> HeaderModifier | None:
    """``mod`` without the fields the gateway owns (rule 4); None when nothing is left."""
    if mod is None:
        return None

    def ok(name: str) -> bool:
        low = name.lower().encode()
        return low not in _NOT_EDITABLE and not low.startswith(b"proxy-")

    kept = HeaderModifier(
        set=tuple(p for p in mod.set if ok(p[0])),
        add=tuple(p for p in mod.add if ok(p[0])),
        remove=tuple(n for n in mod.remove if ok(n)),
    )
    return kept if kept.set or kept.add or kept.remove else None


def has_policy(mirror: Mirror) -> bool:
    """Whether ``mirror`` has any setting a ``Shape`` carries."""
    return (
        mirror.sample_by is not None
        or mirror.host is not None
        or editable(mirror.request_headers) is not None
        or bool(mirror.timeout_ms)
        or bool(mirror.max_body_lag)
    )
