"""Real mirror backends on loopback (``tests.support.backends.Backend``, one mode per way a
mirror can misbehave) and helpers to drive a ``Dispatcher`` directly (no gateway).

``refused_endpoint()`` is a loopback endpoint nothing listens on. Waits are bounded
(``tests.support.waiting.until``), generous, and never asserted on as timings.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from random import Random
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mirrorgate.ir.table import PPM, Mirror, UpstreamAddress
from mirrorgate.mirror import Dispatcher, MirrorConfig
from mirrorgate.mirror.mirrorlog import MirrorLog
from tests.support.backends import Backend, Header, Mode, free_port

ROUTE = "httproute/default/web/rule/0"
BACKEND = "service/default/shadow:80"


def refused_endpoint() -> UpstreamAddress:
    """A loopback endpoint nothing listens on."""
    return UpstreamAddress(address="127.0.0.1", port=free_port())


def make_mirror(
    *endpoints: UpstreamAddress, k: int = 0, ppm: int = PPM, backend: str = BACKEND, route: str = ROUTE
) -> Mirror:
    return Mirror(name=f"{route}/mirror/{k}", backend=backend, ppm=ppm, endpoints=endpoints)


def request_headers(host: bytes = b"a.com:8080", request_id: bytes = b"rid-1") -> list[Header]:
    return [
        (b"host", host),
        (b"user-agent", b"mirror-test"),
        (b"x-forwarded-for", b"10.1.2.3"),
        (b"x-forwarded-proto", b"http"),
        (b"x-request-id", request_id),
    ]


StartBackend = Callable[..., Awaitable[Backend]]
MakeDispatcher = Callable[..., Dispatcher]


@pytest.fixture
async def start_backend() -> AsyncIterator[StartBackend]:
    """``await start_backend(mode, delay=..., status=..., port=...)``; every backend is closed at teardown."""
    started: list[Backend] = []

    async def start(mode: Mode = Mode.OK, *, delay: float = 0.0, status: int = 200, port: int = 0) -> Backend:
        b = Backend(mode, delay=delay, status=status)
        started.append(b)
        return await b.start(port)

    yield start
    for b in started:
        await b.close()


@pytest.fixture
async def make_dispatcher() -> AsyncIterator[MakeDispatcher]:
    """``make_dispatcher(seed=..., access_log=..., **MirrorConfig fields)``; each is shut down at teardown and must
    leave no task behind."""
    made: list[Dispatcher] = []

    def make(*, seed: int = 7, access_log: MirrorLog | None = None, **config: Any) -> Dispatcher:
        d = Dispatcher(MirrorConfig(**config), registry=CollectorRegistry(), rng=Random(seed), access_log=access_log)
        made.append(d)
        return d

    yield make
    for d in made:
        await d.shutdown()
        assert not d.tasks
