"""The head of a mirrored request, built once per primary request and shared by its mirrors.

Rules:
1. Method and request-target are copied byte-exact (as the primary sends them); header lines keep their order
   and duplicates. Names arrive lower-case from the data plane.
2. Host: ``-shadow`` is inserted before the port (Envoy's rule, ``wire.authority.shadow_host``) unless turned off.
   A request without Host (HTTP/1.0) gets the endpoint's ``address:port``, treated the same way,
   as the primary does for its endpoint.
3. Framing is ours: any ``transfer-encoding`` line is dropped. A request with a body keeps its
   ``content-length`` when it has one (the body is then checked against it), else it is sent
   chunked. A request without a body is sent as is.
4. Pure: no I/O, no state.
5. A mirror with a head of its own (a MirrorPolicy's Host or header edits, ``policy.py``) builds
   it with ``build_head`` from the request the primary forwards: its header list on the filtered
   path, or the lines of the primary's encoded head (``request_of_parts``) on the plain one.
"""

from mirrorgate.ir.table import UpstreamAddress
from mirrorgate.wire.authority import authority, shadow_host

Header = tuple[bytes, bytes]


class MirrorHead:
    """``prefix`` (request line + header lines) and ``suffix`` (framing line + blank line)."""

    __slots__ = ("chunked", "content_length", "has_body", "is_head", "prefix", "shadow_suffix", "suffix", "whole")

    def __init__(
        self,
        prefix: bytes,
        suffix: bytes,
        *,
        has_host: bool,
        has_body: bool,
        chunked: bool,
        content_length: int | None,
        shadow_suffix: bool,
        is_head: bool = False,
    ) -> None:
        self.is_head = is_head  # a HEAD request: its response has no body whatever its headers say
        self.prefix = prefix
        self.suffix = suffix
        self.whole = prefix + suffix if has_host else b""
        self.has_body = has_body
        self.chunked = chunked
        self.content_length = content_length
        self.shadow_suffix = shadow_suffix

    def for_endpoint(self, endpoint: UpstreamAddress) -> bytes:
        """The complete head for a mirror sent to ``endpoint``."""
        if self.whole:
            return self.whole
        host = authority(endpoint.address, endpoint.port)
        if self.shadow_suffix:
            host = shadow_host(host)
        return self.prefix + b"host: " + host + b"\r\n" + self.suffix


def build_head(method: bytes, target: bytes, headers: list[Header], has_body: bool, shadow_suffix: bool) -> MirrorHead:
    """The mirror head for one primary request (rules 1-3); raising anything is a bug."""
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    has_host = False
    content_length: int | None = None
    for name, value in headers:
        if name == b"transfer-encoding":
            continue
        if name == b"content-length":
            if content_length is not None or not value.isdigit():
                continue  # a duplicate or malformed length: frame it ourselves instead
            content_length = int(value)
        if name == b"host" and not has_host:
            has_host = True
            if shadow_suffix:
                value = shadow_host(value)
        parts += (name, b": ", value, b"\r\n")
    chunked = has_body and content_length is None
    suffix = b"transfer-encoding: chunked\r\n\r\n" if chunked else b"\r\n"
    return MirrorHead(
        b"".join(parts),
        suffix,
        has_host=has_host,
        has_body=has_body,
        chunked=chunked,
        content_length=content_length if has_body else None,
        shadow_suffix=shadow_suffix,
        is_head=method == b"HEAD",
    )


def head_from_parts(
    parts: list[bytes], host_at: int, has_body: bool, content_length: int | None, shadow_suffix: bool, is_head: bool
) -> MirrorHead:
    """The mirror head from the primary's own upstream head as the data plane encoded it:
    ``parts`` is the request line and the header lines (hop-by-hop and framing lines already
    dropped, a valid ``content-length`` kept), before any endpoint-dependent line; ``parts[host_at]``
    is the Host value (-1: none). The same bytes, the Host made the shadow Host (rules 1-3);
    ``content_length`` is the request's, None when it has none (then a body is sent chunked).
    ``parts`` itself is left unchanged (the primary still adds its own lines)."""
    if host_at >= 0 and shadow_suffix:
        parts = parts.copy()
        parts[host_at] = shadow_host(parts[host_at])
    chunked = has_body and content_length is None
    return MirrorHead(
        b"".join(parts),
        b"transfer-encoding: chunked\r\n\r\n" if chunked else b"\r\n",
        has_host=host_at >= 0,
        has_body=has_body,
        chunked=chunked,
        content_length=content_length if has_body else None,
        shadow_suffix=shadow_suffix,
        is_head=is_head,
    )


def request_of_parts(parts: list[bytes]) -> tuple[bytes, bytes, list[Header]]:
    """The method, target and header lines of the primary's encoded upstream head (``parts`` as
    ``head_from_parts`` takes them: the request line as its first four parts, then header lines
    with lower-case names), to build a head of one's own from (rule 5)."""
    lines = b"".join(parts[4:]).split(b"\r\n")
    headers: list[Header] = []
    for line in lines:
        if line:
            name, _, value = line.partition(b": ")
            headers.append((name, value))
    return parts[0], parts[2], headers
