"""Request framing and target checks of the client connection (``protocol.py`` rule 2), as pure
functions of the head's values.

Rules:
1. ``request_framing`` reads Content-Length, Transfer-Encoding, Expect and Upgrade lines in order
   and raises ``ProtocolError`` on conflicting or unsupported framing (RFC 9112 §6.1, §6.3): two
   Content-Lengths, both headers, chunked on HTTP/1.0, chunked not last -> 400; another coding
   -> 501; a declared body over ``max_body_bytes`` -> 413.
2. ``origin_form`` turns an absolute-form target into origin-form plus the authority that
   replaces Host (RFC 9112 §3.2.2); anything else that is not origin-form is a 400.
3. ``upgrade_protocols``: an Upgrade header counts only when Connection lists ``upgrade``
   (RFC 9110 §7.8); the protocols are compared without their version, case-insensitively.
4. ``check_host``: Host = uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986 IP-literal or
   reg-name), else a 400; values that passed are remembered in ``valid_hosts`` (bounded:
   clients send a few Host values over and over).
"""

import re

from mirrorgate.errors import ProtocolError

valid_hosts: set[bytes] = set()  # Host values that passed _VALID_HOST
_VALID_HOST = re.compile(
    rb"(?:\[[0-9A-Za-z:._~%!$&'()*+,;=-]+\]"  # IP-literal
    rb"|[A-Za-z0-9._~%!$&'()*+,;=-]*)"  # reg-name or IPv4address
    rb"(?::[0-9]*)?"
).fullmatch


def check_host(host: bytes) -> None:
    """Rule 4 for a Host not in ``valid_hosts``."""
    if not _VALID_HOST(host):
        raise ProtocolError("invalid Host")
    if len(valid_hosts) >= 1024:
        valid_hosts.clear()
    valid_hosts.add(host)


def request_framing(
    special: list[tuple[bytes, bytes]], version: str, max_body_bytes: int
) -> tuple[int | None, bool, bool, bytes]:
    """(content length, chunked, expect 100-continue, the Upgrade values joined) from the
    Content-Length, Transfer-Encoding, Expect and Upgrade lines, in order; raises on
    conflicting framing (rule 2)."""
    length: bytes | None = None
    lengths = 0
    chunked = False
    codings: list[bytes] = []
    expect = False
    upgrade = b""
    for name, value in special:
        if name == b"content-length":
            lengths += 1
            if lengths == 1:
                length = value
        elif name == b"transfer-encoding":
            chunked = True
            codings += [c.strip().lower() for c in value.split(b",")]
        elif name == b"upgrade":
            upgrade = value if not upgrade else upgrade + b"," + value
        elif not expect:  # expect
            expect = value.strip().lower() == b"100-continue"
    if lengths > 1 or (lengths and chunked):
        raise ProtocolError("conflicting message framing")
    cap = max_body_bytes
    if cap and length is not None and length.isdigit() and int(length) > cap:
        raise ProtocolError("request body too large", 413)
    if chunked and version == "1.0":
        raise ProtocolError("Transfer-Encoding on HTTP/1.0")
    if chunked and codings != [b"chunked"]:  # RFC 9112 §6.3: chunked must be final, else 400
        if codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
            raise ProtocolError("invalid Transfer-Encoding")
        raise ProtocolError("unsupported transfer coding", 501)  # §6.1: a coding we cannot decode
    return (None if length is None else int(length)), chunked, expect, upgrade


def origin_form(target: bytes) -> tuple[bytes, bytes]:
    """``http://host:port/p?q`` -> (``/p?q``, ``host:port``); anything else is a 400."""
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        raise ProtocolError("invalid request-target")
    slash = rest.find(b"/")
    query = rest.find(b"?")
    cut = min(i for i in (slash, query, len(rest)) if i >= 0)
    authority, path = rest[:cut], rest[cut:]
    if not authority or b"@" in authority:
        raise ProtocolError("invalid request-target")
    if not path.startswith(b"/"):
        path = b"/" + path
    return path, authority


def upgrade_protocols(headers: list[tuple[bytes, bytes]], upgrade: bytes) -> set[bytes] | None:
    """The protocols an ``Upgrade`` value asks for (rule 3), or None when Connection does not list
    ``upgrade`` (then it is a plain request)."""
    listed: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            listed.update(t.strip(b" \t").lower() for t in value.split(b","))
    if b"upgrade" not in listed:
        return None
    return {t.strip(b" \t").lower().partition(b"/")[0] for t in upgrade.split(b",")}
