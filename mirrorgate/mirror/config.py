"""Mirror settings and the closed set of drop reasons.

Rules:
1. ``MirrorConfig`` is frozen and validated once (``__post_init__``); nothing reads settings from
   anywhere else, and nothing is parsed per request.
2. Every default is chosen so that conformance-level load (tens of concurrent requests per mirror
   backend) is never dropped: limits exist for overload, not for normal traffic. The
   reason for each default is in ``docs/mirroring.md``.
3. ``DropReason`` values are metric label values: a small closed enum, never request data.
"""

from enum import StrEnum
from typing import Any

import msgspec

from mirrorgate.settings import parse_setting


class DropReason(StrEnum):
    """Why a sampled mirror request was not completed (``mirrorgate_mirror_dropped_total{reason}``)."""

    OVER_CAPACITY = "over_capacity"  # backend concurrency cap and its queue are full
    BREAKER_OPEN = "breaker_open"  # the backend's circuit breaker is open (or probing)
    NO_ENDPOINTS = "no_endpoints"  # the mirror backend has no ready endpoint
    BODY_LAG = "body_lag"  # the mirror fell more than its lag budget behind the primary's body
    BODY_MISMATCH = "body_mismatch"  # the body disagreed with its content-length
    PRIMARY_ABORTED = "primary_aborted"  # the client vanished before the body ended
    CONNECT_ERROR = "connect_error"  # refused, unreachable, closed while connecting
    TLS = "tls"  # the TLS handshake failed or the certificate did not verify (BackendTLSPolicy)
    DNS = "dns"  # an ExternalName Service's host did not resolve
    TIMEOUT = "timeout"  # connect timeout, or no complete response within ``timeout``
    RESET = "reset"  # the backend closed or reset the connection before the response ended
    PROTOCOL_ERROR = "protocol_error"  # the backend answered something that is not HTTP/1.x
    UPGRADE = "upgrade"  # the request was a protocol upgrade (WebSocket): a tunnel is never mirrored
    SHUTDOWN = "shutdown"  # the dispatcher shut down while the mirror was queued or in flight
    INTERNAL_ERROR = "internal_error"  # a bug in mirrorgate (logged with its traceback)


class MirrorConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Limits and timeouts of mirror traffic; one instance for the whole process."""

    max_concurrent_per_backend: int = 256  # mirror requests in flight per backend (all its endpoints)
    max_queue_per_backend: int = 64  # waiting for a slot beyond the cap; 0 = no queue, drop at once
    timeout: float = 5.0  # seconds from the end of the mirrored request to the end of its response
    connect_timeout: float = 1.0  # seconds to establish a mirror connection
    body_lag_budget: int = 1 << 20  # bytes one mirror may be behind the primary's body (1 MiB)
    max_buffered_bytes: int = 64 << 20  # bytes all mirrors together may be behind (64 MiB)
    breaker_failures: int = 5  # consecutive connect failures / timeouts that open a backend's breaker; 0 = off
    breaker_open_duration: float = 5.0  # seconds the breaker stays open before one probe is let through
    max_idle_per_endpoint: int = 256  # idle keep-alive connections kept per mirror endpoint
    idle_timeout: float = 30.0  # seconds an idle mirror connection is kept
    shadow_host_suffix: bool = True  # insert ``-shadow`` into the mirror's Host (Envoy's rule)

    def __post_init__(self) -> None:
        for name in _POSITIVE:
            value = getattr(self, name)
            if value <= 0:
                raise ValueError(f"MirrorConfig.{name} must be positive, got {value!r}")
        for name in _NON_NEGATIVE:
            count = getattr(self, name)
            if count < 0:
                raise ValueError(f"MirrorConfig.{name} must not be negative, got {count!r}")


_POSITIVE = (
    "max_concurrent_per_backend",
    "timeout",
    "connect_timeout",
    "body_lag_budget",
    "max_buffered_bytes",
    "breaker_open_duration",
    "idle_timeout",
)
_NON_NEGATIVE = ("max_queue_per_backend", "breaker_failures", "max_idle_per_endpoint")
# What ``run --mirror-limit NAME=VALUE`` may set (the Host suffix has its own flag).
FIELDS: dict[str, type] = {name: type(getattr(MirrorConfig(), name)) for name in (*_POSITIVE, *_NON_NEGATIVE)}


def parse_mirror_limit(text: str, into: dict[str, Any]) -> None:
    """One ``NAME=VALUE`` (``max-concurrent-per-backend=64``, ``timeout=2``) into ``into``; raises
    ValueError naming the setting and the problem."""
    key, number = parse_setting(text, FIELDS, _ZERO_MEANS)
    into[key] = number


_ZERO_MEANS = {
    "max_queue_per_backend": "no queue",
    "breaker_failures": "no breaker",
    "max_idle_per_endpoint": "no idle connections kept",
}
