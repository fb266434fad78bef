"""End-to-end: the real control plane, the in-process gateway on loopback, real echo backends,
a raw-socket client. Statuses and bodies only; no timed assertions."""

import hashlib
import io
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mirrorgate.echo import EchoConfig, start_echo
from mirrorgate.serve.plane import DataPlane
from tests.dataplane.conftest import GatewayFactory
from tests.support.client import Conn, encode_request, request
from tests.support.manifests import grant_doc, service_docs

CONFIG = (Path(__file__).parent / "e2e_data" / "gateway.yaml").read_text()


@pytest.fixture
async def port(gateway_for: GatewayFactory) -> int:
    gw: DataPlane = await gateway_for(CONFIG)
    return gw.port(80)


def pod(resp_json: dict[str, object]) -> str:
    """``infra-backend-v1-7d9f8c-x2x4q`` -> ``infra-backend-v1`` (the conformance suite's rule)."""
    return str(resp_json["pod"]).rsplit("-", 2)[0]


async def test_routes_to_v1_and_v2(port: int) -> None:
    r1 = await request(port, path="/v1/x?q=%2F1")
    assert r1.status == 200
    body = r1.json()
    assert pod(body) == "infra-backend-v1"
    assert body["path"] == "/v1/x?q=%2F1"  # byte-exact
    assert body["host"] == "example.com"
    r2 = await request(port, path="/v2")
    assert pod(r2.json()) == "infra-backend-v2"
    r3 = await request(port, path="/anything", headers=[("Version", "two")])
    assert pod(r3.json()) == "infra-backend-v2"


async def test_forwarding_headers(port: int) -> None:
    r = await request(
        port,
        path="/v1",
        headers=[("X-Forwarded-For", "10.1.1.1"), ("Connection", "x-hop"), ("X-Hop", "1"), ("Dup", "a"), ("Dup", "b")],
    )
    h = r.json()["headers"]
    assert h["X-Forwarded-For"] == ["10.1.1.1, 127.0.0.1"]
    assert h["X-Forwarded-Proto"] == ["http"]
    assert len(h["X-Request-Id"][0]) == 36
    assert "X-Hop" not in h
    assert h["Dup"] == ["a", "b"]
    kept = await request(port, path="/v1", headers=[("X-Request-Id", "abc-123")])
    assert kept.json()["headers"]["X-Request-Id"] == ["abc-123"]


async def test_weights_70_30_0(port: int) -> None:
    conn = await Conn.open(port)
    counts: Counter[str] = Counter()
    for _ in range(300):
        await conn.send(encode_request("GET", "/weights"))
        counts[pod((await conn.read_response()).json())] += 1
    await conn.close()
    assert counts["infra-backend-v3"] == 0
    assert 0.55 < counts["infra-backend-v1"] / 300 < 0.85  # generous bound around 0.7
    assert counts["infra-backend-v1"] + counts["infra-backend-v2"] == 300


async def test_request_and_response_header_modifiers(port: int) -> None:
    r = await request(
        port,
        path="/headers",
        headers=[
            ("X-Header-Set", "some-other-value"),
            ("X-Header-Add", "some-other-value"),
            ("X-Header-Remove", "r"),
            ("X-Echo-Set-Header", "X-Header-Set:x,X-Header-Add:y,X-Header-Remove:z"),
        ],
    )
    assert r.status == 200
    h = r.json()["headers"]
    assert h["X-Header-Set"] == ["set-overwrites-values"]
    assert h["X-Header-Add"] == ["some-other-value,add-appends-values"]
    assert "X-Header-Remove" not in h
    assert r.header("X-Header-Set") == "set-overwrites-values"
    assert r.header("X-Header-Add") == "y,add-appends-values"
    assert r.header("X-Header-Remove") is None


async def test_backend_level_header_modifier(port: int) -> None:
    for _ in range(20):
        body = (await request(port, path="/backend-headers")).json()
        assert body["headers"]["Backend"] == [pod(body)]


async def test_redirect(port: int) -> None:
    r = await request(port, path="/redirect/lemon?x=1")
    assert r.status == 301
    assert r.header("Location") == "http://example.org/moved/lemon?x=1"


async def test_rewrite_host_and_prefix(port: int) -> None:
    body = (await request(port, path="/prefix/one/two?k=v")).json()
    assert body["path"] == "/one/two?k=v"
    assert body["host"] == "one.example.org"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/nothing-matches", 404),
        ("/invalid", 500),
        ("/no-backends", 500),
        ("/no-endpoints", 503),
        ("/refused", 503),
        ("/timeout?delay=2s", 504),
        ("/request-timeout?delay=2s", 504),
    ],
)
async def test_local_replies(port: int, path: str, status: int) -> None:
    r = await request(port, path=path)
    assert r.status == status
    assert r.header("content-length") == str(len(r.body))


async def test_timeout_zero_disables(port: int) -> None:
    assert (await request(port, path="/no-timeout?delay=300ms")).status == 200
    assert (await request(port, path="/timeout?delay=1ms")).status == 200


async def test_keep_alive_and_pipelining_in_order(port: int) -> None:
    conn = await Conn.open(port)
    await conn.send(b"".join(encode_request("GET", p) for p in ("/v1/a", "/v2/b", "/nothing", "/v1/c")))
    got = []
    for _ in range(4):
        r = await conn.read_response()
        got.append((r.status, r.json()["path"] if r.status == 200 else None))
    assert got == [(200, "/v1/a"), (200, "/v2/b"), (404, None), (200, "/v1/c")]
    await conn.send(encode_request("GET", "/v1/again"))
    assert (await conn.read_response()).json()["path"] == "/v1/again"
    await conn.close()


async def test_chunked_upload_is_streamed_intact(port: int) -> None:
    conn = await Conn.open(port)
    await conn.send(b"POST /v1/upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n")
    digest = hashlib.sha256()
    total = 0
    for i in range(64):
        chunk = bytes([i]) * 16_384
        digest.update(chunk)
        total += len(chunk)
        await conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    await conn.send(b"0\r\n\r\n")
    r = await conn.read_response()
    assert r.status == 200
    assert r.header("X-Echo-Body-Length") == str(total)
    assert r.header("X-Echo-Body-Sha256") == digest.hexdigest()
    await conn.close()


async def test_content_length_upload_and_expect_continue(port: int) -> None:
    body = b"x" * 200_000
    conn = await Conn.open(port)
    await conn.send(
        b"PUT /v1/put HTTP/1.1\r\nHost: example.com\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    interim = await conn.read_response()
    assert interim.status == 100
    await conn.send(body)
    r = await conn.read_response()
    assert r.header("X-Echo-Body-Length") == str(len(body))
    assert r.header("X-Echo-Body-Sha256") == hashlib.sha256(body).hexdigest()
    await conn.close()


async def test_head_has_no_body_and_connection_is_reused(port: int) -> None:
    conn = await Conn.open(port)
    await conn.send(encode_request("HEAD", "/v1/h") + encode_request("GET", "/v1/g"))
    head = await conn.read_response(head=True)
    assert head.status == 200
    assert head.header("content-length") is not None
    assert (await conn.read_response()).json()["path"] == "/v1/g"
    await conn.close()


async def test_http10_client(port: int) -> None:
    conn = await Conn.open(port)
    await conn.send(b"GET /v1/old HTTP/1.0\r\nHost: example.com\r\n\r\n")
    r = await conn.read_response()
    assert r.status == 200
    assert r.json()["path"] == "/v1/old"
    assert await conn.closed_by_peer()
    await conn.close()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (
            b"POST /v1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n",
            400,
        ),
        (b"POST /v1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
        (b"GET /v1 HTTP/1.1\r\n\r\n", 400),
        (b"GET /v1 HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"POST /v1 HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ],
)
async def test_bad_requests_get_4xx_and_close(port: int, raw: bytes, status: int) -> None:
    conn = await Conn.open(port)
    await conn.send(raw)
    r = await conn.read_response()
    assert r.status == status
    assert r.header("connection") == "close"
    assert await conn.closed_by_peer()
    await conn.close()


async def test_bad_chunk_mid_body_closes(port: int) -> None:
    conn = await Conn.open(port)
    await conn.send(b"POST /v1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n")
    r = await conn.read_response()
    assert r.status == 400
    assert await conn.closed_by_peer()
    await conn.close()


MESH = """
apiVersion: v1
kind: Service
metadata: {name: infra-backend-v1, namespace: infra}
spec: {clusterIP: 127.0.0.3, ports: [{port: 8080, targetPort: $v1}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: infra-backend-v1, namespace: infra, labels: {kubernetes.io/service-name: infra-backend-v1}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{port: $v1}]
---
apiVersion: v1
kind: Service
metadata: {name: infra-backend-v2, namespace: infra}
spec: {ports: [{port: 8080, targetPort: $v2}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: infra-backend-v2, namespace: infra, labels: {kubernetes.io/service-name: infra-backend-v2}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{port: $v2}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mesh-split, namespace: infra}
spec:
  parentRefs: [{group: "", kind: Service, name: infra-backend-v1, port: 8080}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /to-v2}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
"""


async def test_service_parent_gamma(gateway_for: GatewayFactory) -> None:
    """A Service with a clusterIP is served at clusterIP:port; unmatched requests go to its own
    endpoints, the route decides for what it matches (GEP-1426, Service as a parentRef)."""
    gw = await gateway_for(MESH)
    port = gw.port(8080, "127.0.0.3")
    conn = await Conn.open(port, host="127.0.0.3")
    await conn.send(
        encode_request("GET", "/anything", host="infra-backend-v1:8080")
        + encode_request("GET", "/to-v2/x", host="infra-backend-v1:8080")
    )
    assert pod((await conn.read_response()).json()) == "infra-backend-v1"
    assert pod((await conn.read_response()).json()) == "infra-backend-v2"
    await conn.close()


REFS = (
    service_docs("web-backend", "$v3", namespace="other")
    + service_docs("not-granted", "$v3", namespace="other")
    + grant_doc("other", "infra", to_name="web-backend")
    + """---
apiVersion: v1
kind: Service
metadata: {name: v6-manual, namespace: infra}
spec: {ports: [{port: 8080, targetPort: 9}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: v6-manual, namespace: infra, labels: {kubernetes.io/service-name: v6-manual}}
addressType: IPv6
endpoints: [{addresses: ["::1"]}]
ports: [{port: $v6}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: refs, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /grant}}]
    backendRefs: [{name: web-backend, namespace: other, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /no-grant}}]
    backendRefs: [{name: not-granted, namespace: other, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /partial}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}, {name: not-granted, namespace: other, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /ipv6}}]
    backendRefs: [{name: v6-manual, port: 8080}]
  - matches: [{path: {type: Exact, value: /see-other}}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 303}}]
  - matches: [{path: {type: Exact, value: /temporary}}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 307, port: 8083}}]
  - matches: [{path: {type: Exact, value: /permanent}}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 308, scheme: https}}]
"""
)


@pytest.fixture
async def refs_port(gateway_for: GatewayFactory) -> AsyncIterator[int]:
    v6 = await start_echo(
        EchoConfig(port=0, bind="::1", name="infra-backend-v6-7d9f8c-x2x4q", namespace="infra"), log=io.StringIO()
    )
    gw = await gateway_for(CONFIG + "\n---\n" + REFS.replace("$v6", str(v6.port)))
    yield gw.port(80)
    await v6.close()


async def test_reference_grant_and_partially_invalid_backends(refs_port: int) -> None:
    assert pod((await request(refs_port, path="/grant")).json()) == "infra-backend-v3"
    assert (await request(refs_port, path="/no-grant")).status == 500
    statuses = Counter([(await request(refs_port, path="/partial")).status for _ in range(40)])
    assert set(statuses) == {200, 500}  # the invalid ref's share of traffic gets 500


async def test_ipv6_endpoint_slice(refs_port: int) -> None:
    assert pod((await request(refs_port, path="/ipv6")).json()) == "infra-backend-v6"


@pytest.mark.parametrize(
    ("path", "status", "location"),
    [
        ("/see-other", 303, "http://example.com/see-other"),
        ("/temporary", 307, "http://example.com:8083/temporary"),
        ("/permanent", 308, "https://example.com/permanent"),
    ],
)
async def test_redirect_status_codes(refs_port: int, path: str, status: int, location: str) -> None:
    r = await request(refs_port, method="POST", path=path, body=b"x")
    assert (r.status, r.header("location")) == (status, location)


async def test_request_sent_one_byte_at_a_time(port: int) -> None:
    body = b"0123456789" * 20
    raw = (
        b"POST /v1/bytes?q=1 HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 64]), body[i : i + 64]) for i in range(0, len(body), 64))
        + b"0\r\n\r\n"
        + encode_request("GET", "/v2/after")
    )
    conn = await Conn.open(port)
    for i in range(len(raw)):
        await conn.send(raw[i : i + 1])
    first = await conn.read_response()
    assert first.header("X-Echo-Body-Length") == str(len(body))
    assert first.json()["path"] == "/v1/bytes?q=1"
    assert (await conn.read_response()).json()["path"] == "/v2/after"
    await conn.close()
