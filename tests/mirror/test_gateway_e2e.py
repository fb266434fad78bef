"""Through the real gateway: the real control plane translates a route with RequestMirror
filters, the in-process data plane calls the installed ``Dispatcher``; a raw client talks to it.

Shows what the dispatcher tests cannot: the exchange's tee feeds the mirror the same bytes the
primary gets, and a black-holed or refusing mirror leaves every primary answer intact.
No timed assertions; waits are bounded.
"""

import hashlib
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path
from random import Random

import pytest
from prometheus_client import CollectorRegistry

from mirrorgate.echo import EchoConfig, start_echo
from mirrorgate.ir.table import MirrorCompare
from mirrorgate.mirror import Dispatcher, MirrorConfig
from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane
from tests.support.backends import Backend, Mode
from tests.support.client import Conn, encode_request, roundtrip
from tests.support.manifests import gateway_doc, route_doc, service_docs
from tests.support.waiting import until

from .compare_support import with_compare
from .conftest import StartBackend, refused_endpoint

RULES = """  - matches: [{path: {type: PathPrefix, value: /healthy}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Filtered, value: "yes"}]}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: healthy, port: 8080}}}
    backendRefs: [{name: primary, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /blackhole}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: blackhole, port: 8080}}}]
    backendRefs: [{name: primary, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /refused}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: refused, port: 8080}}}]
    backendRefs: [{name: primary, port: 8080}]"""


class Setup:
    def __init__(self, gateway: DataPlane, dispatcher: Dispatcher, healthy: Backend, blackhole: Backend) -> None:
        self.gateway = gateway
        self.dispatcher = dispatcher
        self.healthy = healthy
        self.blackhole = blackhole
        self.port = gateway.port(80)


@pytest.fixture
def compare() -> MirrorCompare | None:
    """``compare`` of every mirror of the table (a test parametrizes it to run with comparing on)."""
    return None


@pytest.fixture
async def setup(tmp_path: Path, start_backend: StartBackend, compare: MirrorCompare | None) -> AsyncIterator[Setup]:
    primary = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="primary-7d9f8c-x2x4q"), log=io.StringIO())
    healthy, blackhole = await start_backend(), await start_backend(Mode.BLACKHOLE)
    ports = {
        "primary": primary.port,
        "healthy": healthy.port,
        "blackhole": blackhole.port,
        "refused": refused_endpoint().port,
    }
    services = "".join(service_docs(name, port) for name, port in ports.items())
    path = tmp_path / "gateway.yaml"
    path.write_text(gateway_doc() + services + route_doc(RULES, name="mirrored"))
    table = with_compare(load_table([str(path)], "127.0.0.1"), compare)
    gateway = DataPlane(table, port_overrides={80: 0}, rng=Random(1))
    dispatcher = Dispatcher(
        MirrorConfig(timeout=0.3, breaker_failures=3, breaker_open_duration=60.0),
        registry=CollectorRegistry(),
        rng=Random(2),
    )
    gateway.state.mirror = dispatcher
    await gateway.start()
    yield Setup(gateway, dispatcher, healthy, blackhole)
    await dispatcher.shutdown()  # mirrors first, then the primaries (mirrors first: the gateway's shutdown order)
    await gateway.shutdown(1.0)
    await primary.close()


async def test_body_and_head_reach_primary_and_mirror_identically(setup: Setup) -> None:
    body = os.urandom(1 << 20)
    request = encode_request("POST", "/healthy/up?x=%2F1&y=", "shop.example:8080", [("X-Request-Id", "rid-e2e")], body)
    r = await roundtrip(setup.port, request)
    assert r.status == 200
    digest = hashlib.sha256(body).hexdigest()
    assert r.header("x-echo-body-sha256") == digest
    echoed = r.json()
    await until(lambda: len(setup.healthy.seen) == 1)
    got = setup.healthy.seen[0]
    assert got.body_sha256 == digest
    assert got.target == "/healthy/up?x=%2F1&y=" == echoed["path"]
    assert got.values("host") == [b"shop.example-shadow:8080"]
    assert got.values("x-request-id") == [b"rid-e2e"] == [v.encode() for v in echoed["headers"]["X-Request-Id"]]
    assert got.values("x-filtered") == [b"yes"] == [v.encode() for v in echoed["headers"]["X-Filtered"]]
    assert got.values("x-forwarded-for") == [b"127.0.0.1"]


async def test_chunked_upload_reaches_both(setup: Setup) -> None:
    parts = [os.urandom(n) for n in (10, 70000, 1, 4096)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    head = encode_request("PUT", "/healthy/chunks", "a.com", [("Transfer-Encoding", "chunked")])
    r = await roundtrip(setup.port, head + body)
    assert r.status == 200
    digest = hashlib.sha256(b"".join(parts)).hexdigest()
    assert r.header("x-echo-body-sha256") == digest
    await until(lambda: len(setup.healthy.seen) == 1)
    assert setup.healthy.seen[0].body_sha256 == digest
    assert setup.healthy.seen[0].values("transfer-encoding") == [b"chunked"]


@pytest.mark.parametrize("compare", [None, MirrorCompare()], ids=["plain", "compared"])
@pytest.mark.parametrize("path", ["/blackhole", "/refused"])
async def test_a_dead_mirror_leaves_every_primary_answer_intact(
    setup: Setup, path: str, compare: MirrorCompare | None
) -> None:
    async with await Conn.open(setup.port) as conn:
        for i in range(40):  # one keep-alive connection: each answer arrives while the mirrors hang or fail
            await conn.send(encode_request("POST", f"{path}/{i}", "a.com", body=b"hello"))
            r = await conn.read_response()
            assert r.status == 200
            assert r.json()["path"] == f"{path}/{i}"
            assert r.header("x-echo-body-sha256") == hashlib.sha256(b"hello").hexdigest()
    d = setup.dispatcher
    await until(lambda: not d.tasks)
    st = d.stats()
    assert st.completed == {}
    assert sum(st.dropped.values()) == 40
    assert st.dropped.get("breaker_open", 0) >= 40 - 3 - d.config.max_concurrent_per_backend
    assert set(st.dropped) <= {"timeout", "connect_error", "breaker_open"}
    if path == "/blackhole":
        assert setup.blackhole.max_open <= d.config.max_concurrent_per_backend
    board = d.board
    await until(lambda: board.pending == 0, "every comparison settled")
    if compare is None:
        assert board.stats == {}
        return
    # every mirror that was started failed: never a mismatch, each counted with its reason
    (c,) = [s.counts for s in board.stats.values()]
    assert (c.compared, c.primary_failed, c.skipped) == (0, 0, 0)
    started = {k: n for k, n in st.dropped.items() if k != "breaker_open"}
    assert sum(started.values()) >= 1
    assert c.mirror_failed == started
