"""The admin server over real sockets: every endpoint, readiness, bad input."""

from prometheus_client import CollectorRegistry, Counter

from mirrorgate.admin.server import AdminApp, is_loopback, local_host, start_admin
from mirrorgate.ir.table import HTTPListener, RoutingTable, Server
from tests.support.client import Conn, Response


async def get(port: int, raw: bytes) -> Response:
    """One request on a fresh connection; the server answers, then closes with nothing more."""
    async with await Conn.open(port) as conn:
        await conn.send(raw)
        response = await conn.read_response(head=raw.startswith(b"HEAD "))
        assert await conn.closed_by_peer()
    return response


async def test_admin_endpoints() -> None:
    registry = CollectorRegistry()
    Counter("mirrorgate_test_things", "things", registry=registry).inc(3)
    table = RoutingTable(servers=(Server(address="127.0.0.1", port=80, listeners=(HTTPListener(name="l", port=80),)),))
    ready = {"v": False}
    app = AdminApp(
        registry=registry,
        table=lambda: table,
        status=lambda: {"items": [], "lastReloadError": None},
        ready=lambda: ready["v"],
    )
    server = await start_admin(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await get(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")).status == 200
        assert (await get(port, b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")).status == 503
        ready["v"] = True
        assert (await get(port, b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")).status == 200
        r = await get(port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert r.status == 200
        assert (r.header("Content-Type") or "").startswith("text/plain")
        assert b"mirrorgate_test_things_total 3.0" in r.body
        r = await get(port, b"GET /config_dump HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert r.header("Content-Type") == "application/json"
        assert r.json()["servers"][0]["listeners"][0]["name"] == "l"
        r = await get(port, b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert r.json() == {"items": [], "lastReloadError": None}
        r = await get(port, b"HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (r.status, r.header("Content-Length"), r.body) == (200, "3", b"")  # and nothing after the head
        assert (await get(port, b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")).status == 404
        post = b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        assert (await get(port, post)).status == 405
        assert (await get(port, b"GARBAGE\r\n\r\n")).status == 400
        r = await get(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")
        assert (r.status, r.reason) == (431, "Request Header Fields Too Large")  # RFC 6585, section 5
    finally:
        server.close()
        await server.wait_closed()


def test_the_dump_never_holds_a_private_key() -> None:
    from mirrorgate.ir.dump import table_to_builtins
    from mirrorgate.ir.table import Certificate, RoutingTable

    cert = Certificate(
        digest="sha256:ab", source="secret/default/tls", dns_names=("a.example",), chain_pem="CHAIN", key_pem="KEY"
    )
    dumped = table_to_builtins(RoutingTable(certificates=(cert,)))
    assert dumped["certificates"] == [
        {"digest": "sha256:ab", "source": "secret/default/tls", "dnsNames": ["a.example"]}
    ]
    assert "KEY" not in repr(dumped)


def test_a_certificate_repr_hides_the_key() -> None:
    from mirrorgate.ir.table import Certificate

    cert = Certificate(digest="sha256:ab", source="secret/default/tls", chain_pem="CHAIN", key_pem="PRIVATE")
    assert "PRIVATE" not in repr(cert)
    assert "PRIVATE" not in str(cert)
    assert "PRIVATE" not in repr((cert,))


async def test_a_loopback_admin_server_answers_only_local_hosts() -> None:
    """DNS rebinding: a page whose name was rebound to 127.0.0.1 sends that name as Host."""
    app = AdminApp(
        registry=CollectorRegistry(),
        table=RoutingTable,
        status=lambda: {"items": [], "lastReloadError": None},
        ready=lambda: True,
    )
    server = await start_admin(app, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for host in (b"127.0.0.1", b"127.0.0.1:%d" % port, b"localhost:9901", b"LocalHost", b"[::1]:9901", b"10.0.0.7"):
            r = await get(port, b"GET /status HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            assert r.status == 200, host
        assert (await get(port, b"GET /status HTTP/1.0\r\n\r\n")).status == 200  # no Host at all
        for host in (b"evil.example", b"evil.example:9901", b"localhost.evil.example", b"127.0.0.1.nip.io:9901"):
            r = await get(port, b"GET /mirrors HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
            assert r.status == 403, host
            assert b"Host localhost or an IP address" in r.body
    finally:
        server.close()
        await server.wait_closed()


def test_only_a_loopback_bind_checks_the_host() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("10.1.2.3")
    assert not local_host(b"[::1")
