"""Authorities (``host[:port]``) as they appear in a Host header or an absolute-form target.

Owns: host/port splitting, the ``address:port`` authority of an upstream endpoint, and the
``-shadow`` Host of a mirrored request.

Rules: pure functions over bytes (the shadow Host keeps a bounded cache); IPv6 literals are
bracketed (RFC 3986 §3.2.2) and their brackets kept; a missing port is ``b""``, never a default.
"""


def split_host_port(host: bytes) -> tuple[bytes, bytes]:
    """``a.com:80`` -> (``a.com``, ``80``); ``[::1]:80`` -> (``[::1]``, ``80``); no port -> ``b""``."""
    if host.startswith(b"["):
        end = host.find(b"]")
        if end > 0:
            rest = host[end + 1 :]
            return host[: end + 1], rest[1:] if rest.startswith(b":") else b""
        return host, b""
    name, _, port = host.partition(b":")
    return name, port


def authority(address: str, port: int) -> bytes:
    """``address:port`` for a Host header (IPv6 addresses bracketed)."""
    return (f"[{address}]:{port}" if ":" in address else f"{address}:{port}").encode()


def shadow_host(host: bytes) -> bytes:
    """Envoy's shadow Host for a mirrored request: ``-shadow`` inserted before the port, so that
    the mirror's backend can tell mirrored traffic from the primary's.

    ``a.com`` -> ``a.com-shadow``; ``httpbin:8000`` -> ``httpbin-shadow:8000``;
    ``[::1]:80`` -> ``[::1]-shadow:80``.
    """
    shadow = _shadow_hosts.get(host)
    if shadow is None:
        name, port = split_host_port(host)
        shadow = name + b"-shadow" + (b":" + port if port else b"")
        if len(_shadow_hosts) >= 1024:  # clients send a few Host values over and over
            _shadow_hosts.clear()
        _shadow_hosts[host] = shadow
    return shadow


_shadow_hosts: dict[bytes, bytes] = {}  # Host -> its shadow Host (bounded)
