"""Through the real gateway: the real control plane translates a route with RequestMirror
filters, the in-process data plane calls the installed ``Dispatcher``; a raw client talks to it.

Shows what the dispatcher tests cannot: the exchange's tee feeds the mirror the same bytes the
primary gets, and a black-holed or refusing mirror leaves every primary answer intact.
No timed assertions; waits are bounded.
"""

import asyncio
import hashlib
import io
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from random import Random
from string import Template

import pytest
from prometheus_client import CollectorRegistry

from mirrorgate.echo import EchoConfig, start_echo
from mirrorgate.mirror import Dispatcher, MirrorConfig
from mirrorgate.runtime import Gateway, load_table
from tests.support.waiting import until

from .conftest import Backend, Mode, StartBackend, refused_endpoint

CONFIG = Template("""
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: mirrorgate}
spec: {controllerName: mirrorgate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: mirrorgate
  listeners: [{name: http, port: 80, protocol: HTTP}]
$services
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mirrored, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /healthy}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Filtered, value: "yes"}]}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: healthy, port: 8080}}}
    backendRefs: [{name: primary, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /blackhole}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: blackhole, port: 8080}}}]
    backendRefs: [{name: primary, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /refused}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: refused, port: 8080}}}]
    backendRefs: [{name: primary, port: 8080}]
""")

SERVICE = Template("""---
apiVersion: v1
kind: Service
metadata: {name: $name, namespace: infra}
spec: {ports: [{port: 8080, targetPort: $port}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name, namespace: infra, labels: {kubernetes.io/service-name: $name}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{port: $port}]""")


class Setup:
    def __init__(self, gateway: Gateway, dispatcher: Dispatcher, healthy: Backend, blackhole: Backend) -> None:
        self.gateway = gateway
        self.dispatcher = dispatcher
        self.healthy = healthy
        self.blackhole = blackhole
        self.port = gateway.port(80)


@pytest.fixture
async def setup(tmp_path: Path, start_backend: StartBackend) -> AsyncIterator[Setup]:
    primary = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="primary-7d9f8c-x2x4q"), log=io.StringIO())
    healthy, blackhole = await start_backend(), await start_backend(Mode.BLACKHOLE)
    ports = {
        "primary": primary.port,
        "healthy": healthy.port,
        "blackhole": blackhole.port,
        "refused": refused_endpoint().port,
    }
    services = "\n".join(SERVICE.substitute(name=name, port=port) for name, port in ports.items())
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG.substitute(services=services))
    table = load_table([str(path)], "127.0.0.1")
    gateway = Gateway(table, port_overrides={80: 0}, rng=Random(1))
    dispatcher = Dispatcher(
        MirrorConfig(timeout=0.3, breaker_failures=3, breaker_open_duration=60.0),
        registry=CollectorRegistry(),
        rng=Random(2),
    )
    gateway.state.mirror = dispatcher
    await gateway.start()
    yield Setup(gateway, dispatcher, healthy, blackhole)
    await dispatcher.shutdown()  # mirrors first, then the primaries (DESIGN: shutdown order)
    await gateway.shutdown(1.0)
    await primary.close()


Request = Callable[..., Awaitable[tuple[int, dict[str, str], bytes]]]


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    writer.write(head + body)
    await writer.drain()
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    headers = {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines[1:] if line)}
    payload = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split(" ")[1]), headers, payload


async def test_body_and_head_reach_primary_and_mirror_identically(setup: Setup) -> None:
    body = os.urandom(1 << 20)
    reader, writer = await asyncio.open_connection("127.0.0.1", setup.port)
    head = (
        b"POST /healthy/up?x=%2F1&y= HTTP/1.1\r\nHost: shop.example:8080\r\nX-Request-Id: rid-e2e\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    status, headers, payload = await exchange(reader, writer, head, body)
    assert status == 200
    digest = hashlib.sha256(body).hexdigest()
    assert headers["x-echo-body-sha256"] == digest
    echoed = json.loads(payload)
    await until(lambda: len(setup.healthy.requests) == 1)
    got = setup.healthy.requests[0]
    assert got.body_sha256 == digest
    assert got.target == b"/healthy/up?x=%2F1&y=" == echoed["path"].encode()
    assert got.header(b"host") == [b"shop.example-shadow:8080"]
    assert got.header(b"x-request-id") == [b"rid-e2e"] == [v.encode() for v in echoed["headers"]["X-Request-Id"]]
    assert got.header(b"x-filtered") == [b"yes"] == [v.encode() for v in echoed["headers"]["X-Filtered"]]
    assert got.header(b"x-forwarded-for") == [b"127.0.0.1"]
    writer.close()
    await writer.wait_closed()


async def test_chunked_upload_reaches_both(setup: Setup) -> None:
    parts = [os.urandom(n) for n in (10, 70000, 1, 4096)]
    reader, writer = await asyncio.open_connection("127.0.0.1", setup.port)
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    head = b"PUT /healthy/chunks HTTP/1.1\r\nHost: a.com\r\nTransfer-Encoding: chunked\r\n\r\n"
    status, headers, _ = await exchange(reader, writer, head, body)
    assert status == 200
    digest = hashlib.sha256(b"".join(parts)).hexdigest()
    assert headers["x-echo-body-sha256"] == digest
    await until(lambda: len(setup.healthy.requests) == 1)
    assert setup.healthy.requests[0].body_sha256 == digest
    assert setup.healthy.requests[0].header(b"transfer-encoding") == [b"chunked"]
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("path", [b"/blackhole", b"/refused"])
async def test_a_dead_mirror_leaves_every_primary_answer_intact(setup: Setup, path: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", setup.port)
    for i in range(40):  # one keep-alive connection: each answer arrives while the mirrors hang or fail
        head = b"POST %s/%d HTTP/1.1\r\nHost: a.com\r\nContent-Length: 5\r\n\r\n" % (path, i)
        status, headers, payload = await exchange(reader, writer, head, b"hello")
        assert status == 200
        assert json.loads(payload)["path"] == f"{path.decode()}/{i}"
        assert headers["x-echo-body-sha256"] == hashlib.sha256(b"hello").hexdigest()
    writer.close()
    await writer.wait_closed()
    d = setup.dispatcher
    await until(lambda: not d.tasks)
    st = d.stats()
    assert st.completed == {}
    assert sum(st.dropped.values()) == 40
    assert st.dropped.get("breaker_open", 0) >= 40 - 3 - d.config.max_concurrent_per_backend
    assert set(st.dropped) <= {"timeout", "connect_error", "breaker_open"}
    if path == b"/blackhole":
        assert setup.blackhole.max_open <= d.config.max_concurrent_per_backend
