"""Hop-by-hop header fields (RFC 9110 §7.6.1), dropped by every proxy hop, in both the list form
of parsed headers and the raw form of a head as received. Shared by the data plane (requests and
responses) and the upstream connection (which strips a response head once per distinct head).

Rules: pure functions; names compared lower-case; the raw form keeps every other line byte for
byte and declines (None) what only the list form handles exactly.
"""

import re
from collections.abc import Iterable

Header = tuple[bytes, bytes]

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)  # plus every ``proxy-*`` name and every token listed in ``Connection``


def strip_hop_by_hop(headers: Iterable[Header], lows: list[bytes] | None = None) -> list[Header]:
    """Drop RFC 9110 §7.6.1 hop-by-hop fields: Connection, the names it lists, Keep-Alive,
    Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade. Names compared lower-cased; ``lows`` (the
    lower-cased names, when the caller has them) saves lowering twice."""
    headers = list(headers)
    if lows is None:
        lows = [name.lower() for name, _ in headers]
    listed: set[bytes] = set()
    if b"connection" in lows:
        for low, (_, value) in zip(lows, headers, strict=True):
            if low == b"connection":
                listed.update(t.strip().lower() for t in value.split(b","))
    return [
        h
        for low, h in zip(lows, headers, strict=True)
        if low not in HOP_BY_HOP and low not in listed and not low.startswith(b"proxy-")
    ]


# The start of a hop-by-hop line in a lower-cased raw head: the ``\n`` that ends the line before
# (a literal first lets the regex engine jump from line to line). Group 1: a Connection line.
_HOP_LINE = re.compile(rb"\n(?:(connection)|keep-alive|te|trailer|transfer-encoding|upgrade|proxy-[^:\r]*):")


def strip_hop_by_hop_raw(raw: bytes, low: bytes, lines: int) -> bytes | None:
    """``strip_hop_by_hop`` over a raw head as received (validated by llhttp): its header lines,
    from index ``lines`` to the empty line excluded, without the hop-by-hop ones, the others kept
    byte for byte; ``low`` is ``raw`` lower-cased. The response relay's hot path. None when a
    Connection header names a field that is not itself hop-by-hop (rare): use ``strip_hop_by_hop``."""
    search = _HOP_LINE.search
    m = search(low, lines - 1)
    if m is None:
        return raw[lines:-2]
    pieces = []
    at = lines
    while m is not None:
        start = m.start() + 1  # the line's first byte
        cr = low.index(b"\r", start)
        if m.lastindex:  # Connection: every field it names must itself be hop-by-hop
            value = low[start + 11 : cr].strip(b" \t")
            if value != b"keep-alive":
                for token in value.split(b","):
                    token = token.strip(b" \t")
                    if token and token not in HOP_BY_HOP and (token != b"close" or b"\nclose:" in low):
                        return None
        pieces.append(raw[at:start])
        at = cr + 2
        m = search(low, cr + 1)
    pieces.append(raw[at:-2])
    return b"".join(pieces)
