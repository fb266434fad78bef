"""Per-backend runtime state of mirror traffic: concurrency slots, the bounded queue, round-robin
position and the circuit breaker.

Rules: ``inflight`` counts mirror requests holding a slot (in the dispatcher's in-flight set);
``inflight <= cap`` always; ``queue`` holds at most ``max_queue`` requests that have no slot yet;
``rr`` is the round-robin position over the backend's endpoints, one endpoint per mirrored
request; ``blocked`` is true exactly while the breaker denies every new mirror; ``open_since``
is non-zero exactly while the breaker was last logged open (``logs.py`` rule 3).
Only the dispatcher changes these fields.

Pure helpers of the dispatcher about one backend: ``secured_endpoint`` (a TLS or ExternalName
mirror's endpoint and pool key), ``classify`` (a failure's drop reason and whether it feeds the
breaker, dispatcher rule 5), ``breaker_state`` (the breaker as admission sees it) and
``mirror_pool`` (the mirrors' own pool, dispatcher rule 4).
"""

import asyncio
from collections import deque
from typing import Any, Generic, TypeVar

from mirrorgate.errors import ConnectError, ConnectTimeout, PoolTimeout, UpstreamError, UpstreamProtocolError
from mirrorgate.ir.table import Mirror, UpstreamAddress
from mirrorgate.mirror.breaker import Breaker
from mirrorgate.mirror.config import DropReason, MirrorConfig
from mirrorgate.tls.client import BackendTlsError
from mirrorgate.upstream.dns import DnsError
from mirrorgate.upstream.pool import Pool, PoolConfig
from mirrorgate.upstream.tls import Key, current_trust, keys_for

_UNLIMITED = 1 << 30  # the pool's limits: the per-backend caps bound mirror traffic, so ``acquire`` never waits
Queued = TypeVar("Queued")  # a queued mirror (``shadow.Shadow``; a parameter, so neither module imports the other)


class BackendState(Generic[Queued]):
    __slots__ = (
        "blocked",
        "breaker",
        "breaker_timer",
        "failed_probes",
        "inflight",
        "name",
        "open_since",
        "pump_scheduled",
        "queue",
        "rr",
    )

    def __init__(self, name: str, breaker: Breaker) -> None:
        self.name = name
        self.breaker = breaker
        self.inflight = 0
        self.queue: deque[Queued] = deque()
        self.rr = 0  # round-robin position over the backend's endpoints
        self.open_since = 0.0  # loop time the breaker was logged open; 0: logged closed (``logs.py``)
        self.failed_probes = 0  # probes failed since it was logged open
        self.pump_scheduled = False  # a call to start queued mirrors is pending (dispatcher ``_end``)
        # The breaker as admission sees it, kept up to date by the dispatcher on every breaker
        # change and by a timer at the end of the open period, so that dropping a mirror to an
        # open breaker reads one flag (no clock): open and not yet over, or a probe in flight.
        self.blocked = False
        self.breaker_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<BackendState {self.name} inflight={self.inflight} queued={len(self.queue)} {self.breaker!r}>"


def secured_endpoint(mirror: Mirror, i: int) -> tuple[UpstreamAddress, Key]:
    """The ``i``-th endpoint of a TLS or ExternalName mirror and its pool key (``upstream/tls.py``)."""
    ext = mirror.external
    endpoints = mirror.endpoints if ext is None else (UpstreamAddress(address=ext.host, port=ext.port),)
    keys = keys_for(mirror.endpoints, mirror.tls, ext, current_trust())
    return endpoints[i % len(endpoints)], keys[i % len(keys)]


def classify(exc: UpstreamError) -> tuple[DropReason, bool]:
    """Drop reason of an upstream failure, and whether it counts against the breaker."""
    if isinstance(exc, BackendTlsError):
        return DropReason.TLS, True
    if isinstance(exc, DnsError):
        return DropReason.DNS, True
    if isinstance(exc, ConnectTimeout):
        return DropReason.TIMEOUT, True
    if isinstance(exc, ConnectError):
        return DropReason.CONNECT_ERROR, True
    if isinstance(exc, PoolTimeout):
        return DropReason.OVER_CAPACITY, False
    if isinstance(exc, UpstreamProtocolError):
        return DropReason.PROTOCOL_ERROR, False
    return DropReason.RESET, False


def breaker_state(backend: BackendState[Any]) -> str:
    """``closed``, ``open`` or ``half_open`` as admission sees it (``blocked`` and the breaker)."""
    breaker = backend.breaker
    if not breaker.open_until:
        return "closed"
    return "open" if backend.blocked and not breaker.probing else "half_open"


def mirror_pool(cfg: MirrorConfig, head_limits: tuple[int, int]) -> Pool:
    """The mirrors' own pool (dispatcher rule 4): no count limits (the per-backend caps are the limits)."""
    return Pool(
        PoolConfig(
            limit=_UNLIMITED,
            limit_per_key=_UNLIMITED,
            max_idle_per_key=cfg.max_idle_per_endpoint,
            idle_timeout=cfg.idle_timeout,
            connect_timeout=cfg.connect_timeout,
            pool_timeout=cfg.timeout,
            max_response_head_bytes=head_limits[0],
            max_response_headers=head_limits[1],
        )
    )
