"""Per-worker resource limits of the client-facing data plane, and of upstream response heads.

Owns: ``Limits``, the frozen set of bounds every client connection of a worker obeys, with the
defaults and the reason for each (docs/threat-model.md has the table and the tests). ``run``'s
``--limit NAME=VALUE`` flags build one; nothing here changes on reload.

Rules: every limit is checked where the data is first seen (a parser callback or the
connection's one timer), never by a scan; a value of 0 means "off" only where the field says so.
"""

from typing import Any

import msgspec

from mirrorgate.settings import parse_setting

KIB = 1024


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    # Request line: a target over this -> 414. NGINX's large_client_header_buffers is 8 KiB per
    # line; URLs of analytics and signed-URL services reach tens of KiB, so the bound is the head's.
    max_target_bytes: int = 64 * KIB
    # Request head (line + headers, as parsed) -> 431. Envoy's max_request_headers_kb is 60.
    max_head_bytes: int = 64 * KIB
    # Request header lines -> 431. Envoy's default (max_headers_count) is 100; browsers send ~20.
    max_headers: int = 100
    # Request body -> 413; 0 = off (bodies stream, they are never buffered whole). Envoy and
    # NGINX (1 MiB) bound it by default; a gateway in front of upload services should not.
    max_body_bytes: int = 0
    # Seconds from a head's first byte to its end -> 408 (NGINX client_header_timeout: 60 s).
    header_timeout: float = 30.0
    # Seconds a request body may go without a byte while the gateway is reading it -> 408 and
    # close (NGINX client_body_timeout: 60 s). Time the gateway itself pauses reading (back-
    # pressure from a slow upstream) does not count.
    body_timeout: float = 60.0
    # Bytes/s a body must average over each ``body_timeout`` window, else 408 (R.U.D.Y.); 0 = off.
    # Apache's mod_reqtimeout uses 500 B/s; a body trickled slower than this holds a client and
    # an upstream connection for ever otherwise.
    min_body_rate: int = 500
    # Seconds a client has to finish the TLS handshake of an HTTPS listener, else the connection
    # is closed (uvloop's default is 60 s; NGINX bounds it by client_header_timeout, 60 s).
    # A handshake that never comes holds a socket and an SSL object until then.
    handshake_timeout: float = 10.0
    # Seconds an idle keep-alive connection is kept (NGINX keepalive_timeout: 75 s).
    keepalive_timeout: float = 75.0
    # Client connections one worker holds; more are closed at once (NGINX worker_connections).
    max_connections: int = 10_000
    # Parsed requests queued behind the running one on a connection; the rest of what the client
    # sent stays unparsed (and reading paused) until the queue drains.
    max_pipelined: int = 32
    # Seconds a WebSocket tunnel (after a 101) may pass with no byte in either direction before
    # both sides are closed (NGINX proxy_read_timeout is 60 s; Envoy's stream idle timeout is
    # 300 s, which keeps a quiet chat or dashboard alive without application pings).
    websocket_idle_timeout: float = 300.0
    # Upstream (primary and mirror) response heads: bytes and header lines -> 502 / mirror drop.
    max_response_head_bytes: int = 64 * KIB
    max_response_headers: int = 200


FIELDS: dict[str, type] = {f: type(getattr(Limits(), f)) for f in Limits.__struct_fields__}


def parse_limit(text: str, into: dict[str, Any]) -> None:
    """One ``NAME=VALUE`` (``max-headers=200``, ``body-timeout=10``) into ``into``; raises
    ValueError naming the limit and the problem."""
    key, number = parse_setting(text, FIELDS, _ZERO_MEANS)
    into[key] = number


_ZERO_MEANS = {"max_body_bytes": "off", "min_body_rate": "off"}
