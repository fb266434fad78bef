"""The echo server over real sockets: echo-basic's JSON, headers, special paths, and HTTP/1.x framing."""

import asyncio
import hashlib
import http.client
import io
import os
import socket

import pytest

from mirrorgate.echo import EchoConfig, default_pod_name, resolve_identity, start_echo
from tests.echo.conftest import Echo, echo_request
from tests.support.client import WAIT, Conn, Response, roundtrip

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
ECHO_KEYS = ["path", "host", "method", "proto", "headers", "httpPort", "namespace", "ingress", "service", "pod"]


def _http_client_get(port: int, target: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


async def test_json_fields_order_and_exact_content_type(echo: Echo) -> None:
    status, headers, body = await asyncio.to_thread(_http_client_get, echo.port, "/hello", {"X-Test": "1"})
    response = Response(status, headers, body)

    assert status == 200
    assert response.header("Content-Type") == "application/json"
    assert response.header("X-Content-Type-Options") == "nosniff"
    data = response.json()
    assert list(data) == ECHO_KEYS
    assert data["path"] == "/hello"
    assert data["host"] == f"127.0.0.1:{echo.port}"
    assert data["method"] == "GET"
    assert data["proto"] == "HTTP/1.1"
    assert data["headers"]["X-Test"] == ["1"]
    assert data["namespace"] == "gateway-conformance-infra"
    assert data["pod"] == "infra-backend-v1-7d9c5b8f4-x2x7q"
    assert data["pod"].rsplit("-", 2)[0] == "infra-backend-v1"
    assert data["httpPort"] == str(echo.port)
    assert (data["ingress"], data["service"]) == ("", "")


async def test_json_layout_is_go_marshal_indent(echo: Echo) -> None:
    response = await roundtrip(echo.port, echo_request("/p", headers=(("Host", "h"), ("B", "2"), ("A", "1"))))

    lines = response.body.decode().split("\n")
    assert lines[:5] == ["{", ' "path": "/p",', ' "host": "h",', ' "method": "GET",', ' "proto": "HTTP/1.1",']
    assert lines[5:12] == [' "headers": {', '  "A": [', '   "1"', "  ],", '  "B": [', '   "2"', "  ]"]
    assert lines[12:14] == [" },", f' "httpPort": "{echo.port}",']
    assert lines[-1] == "}"


@pytest.mark.parametrize(
    "target",
    [
        "/a%2Fb?x=1&x=2&gateway-api-conformance-request-id=abc",
        "/mirror?gateway-api-conformance-request-id=6f1c1d6e-3a8e-4f25-9b1c-1b9f8e7d6c5a",
        "//double//slash/?q=%20+&empty=&=v",
        "/UPPER/Case.html;param?%7E=%7e",
    ],
)
async def test_raw_path_and_query_are_byte_exact(echo: Echo, target: str) -> None:
    response = await roundtrip(echo.port, echo_request(target))

    assert response.status == 200
    assert response.json()["path"] == target


async def test_absolute_form_target_gives_host_from_url(echo: Echo) -> None:
    response = await roundtrip(echo.port, echo_request("http://example.com:8080/p?q=1", headers=(("Host", "other"),)))

    assert response.json()["path"] == "http://example.com:8080/p?q=1"
    assert response.json()["host"] == "example.com:8080"


async def test_headers_are_go_canonicalised_lists_without_host(echo: Echo) -> None:
    headers = (
        ("Host", "echo.test:8080"),
        ("x-custom-header", "a"),
        ("X-CUSTOM-HEADER", "b"),
        ("content-TYPE", "text/plain"),
        ("x_under_score", "u"),
        ("X-Header-Add-Append", "append-val-1,header-val-2"),
        ("x-spaces", "  padded value  "),
    )
    response = await roundtrip(echo.port, echo_request(headers=headers))
    data = response.json()

    assert data["host"] == "echo.test:8080"
    assert data["headers"] == {
        "X-Custom-Header": ["a", "b"],
        "Content-Type": ["text/plain"],
        "X_under_score": ["u"],
        "X-Header-Add-Append": ["append-val-1,header-val-2"],
        "X-Spaces": ["padded value"],
    }


async def test_go_json_escaping_and_invalid_utf8(echo: Echo) -> None:
    raw = echo_request("/j?a=<b>&c", headers=(("Host", "h"), ("X-Odd", 'q"\\\xe9\xff')))
    response = await roundtrip(echo.port, raw)

    assert '"path": "/j?a=\\u003cb\\u003e\\u0026c"' in response.body.decode()
    assert response.json()["headers"]["X-Odd"] == ['q"\\\ufffd\ufffd']


async def test_go_pragma_fix_adds_cache_control(echo: Echo) -> None:
    response = await roundtrip(echo.port, echo_request(headers=(("Host", "h"), ("Pragma", "no-cache"))))

    assert response.json()["headers"]["Cache-Control"] == ["no-cache"]


async def test_echo_set_header_sets_response_headers(echo: Echo) -> None:
    headers = (("Host", "h"), ("X-Echo-Set-Header", "X-Foo: bar, x-lower:v1,X-Foo:baz"))
    response = await roundtrip(echo.port, echo_request(headers=headers))

    assert ("X-Foo", "bar,baz") in response.headers
    assert ("x-lower", "v1") in response.headers  # case preserved, as echo-basic writes the map key
    assert response.header("Content-Type") == "application/json"


async def test_empty_echo_set_header_adds_nothing(echo: Echo) -> None:
    plain = await roundtrip(echo.port, echo_request())
    empty = await roundtrip(echo.port, echo_request(headers=(("Host", "h"), ("X-Echo-Set-Header", ""))))

    assert empty.names() == plain.names()


async def test_delay_answers_later_without_blocking_other_connections(echo: Echo) -> None:
    async with await Conn.open(echo.port) as slow, await Conn.open(echo.port) as fast:
        await slow.send(echo_request("/slow?delay=1s"))
        pending = asyncio.ensure_future(slow.read_response())
        await fast.send(echo_request("/fast"))
        fast_response = await fast.read_response()

        assert fast_response.json()["path"] == "/fast"
        assert not pending.done()  # a 1s delay cannot have elapsed before another answer
        slow_response = await asyncio.wait_for(pending, WAIT)
        assert slow_response.status == 200
        assert slow_response.json()["path"] == "/slow?delay=1s"


@pytest.mark.parametrize(
    ("value", "message"),
    [("abc", 'time: invalid duration "abc"'), ("5", 'time: missing unit in duration "5"')],
)
async def test_invalid_delay_is_a_500_json_error(echo: Echo, value: str, message: str) -> None:
    response = await roundtrip(echo.port, echo_request(f"/x?delay={value}"))

    assert response.status == 500
    assert response.header("Content-Type") == "application/json"
    assert response.json() == {"message": message}


async def test_status_path_answers_that_status_with_empty_body(echo: Echo) -> None:
    response = await roundtrip(echo.port, echo_request("/status/503"))

    assert (response.status, response.reason) == (503, "Service Unavailable")
    assert response.header("Content-Length") == "0"
    assert response.body == b""


@pytest.mark.parametrize("target", ["/status/503?x=1", "/status/5030", "/status/abc"])
async def test_status_path_must_match_request_uri_exactly(echo: Echo, target: str) -> None:
    response = await roundtrip(echo.port, echo_request(target))

    assert response.status == 400


async def test_status_with_unknown_code_uses_go_reason(echo: Echo) -> None:
    response = await roundtrip(echo.port, echo_request("/status/599"))

    assert (response.status, response.reason) == (599, "status code 599")


async def test_health(echo: Echo) -> None:
    response = await roundtrip(echo.port, echo_request("/health"))

    assert (response.status, response.body) == (200, b"OK")


async def test_retry_fails_then_echoes(echo: Echo) -> None:
    target = "/retry/x?uuid=u1&succeedAfter=2&responseCode=503"
    statuses = [(await roundtrip(echo.port, echo_request(target))).status for _ in range(3)]

    assert statuses == [503, 503, 200]


async def test_retry_without_response_code_resets_the_connection(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        await conn.send(echo_request("/retry/x?uuid=u2&succeedAfter=1"))
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await conn.read_response()
    response = await roundtrip(echo.port, echo_request("/retry/x?uuid=u2&succeedAfter=1"))
    assert response.json()["path"] == "/retry/x?uuid=u2&succeedAfter=1"


async def test_retry_requires_uuid(echo: Echo) -> None:
    response = await roundtrip(echo.port, echo_request("/retry/x?succeedAfter=1"))

    assert (response.status, response.body) == (400, b"uuid is required")


async def test_keep_alive_three_sequential_requests(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        for index in range(3):
            await conn.send(echo_request(f"/seq/{index}"))
            response = await conn.read_response()
            assert response.status == 200
            assert response.header("Connection") is None
            assert response.json()["path"] == f"/seq/{index}"

    peers = {line.split("(")[1].split(")")[0] for line in echo.log_lines() if "/seq/" in line}
    assert peers == {f"127.0.0.1:{conn.local_port}"}


async def test_pipelined_requests_are_answered_in_order(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        await conn.send(echo_request("/first?delay=200ms") + echo_request("/second"))
        first, second = await conn.read_response(), await conn.read_response()

    assert first.json()["path"] == "/first?delay=200ms"
    assert second.json()["path"] == "/second"


async def test_many_pipelined_requests_with_flow_control(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        await conn.send(b"".join(echo_request(f"/p/{index}") for index in range(100)))
        paths = [(await conn.read_response()).json()["path"] for _ in range(100)]

    assert paths == [f"/p/{index}" for index in range(100)]


async def test_chunked_body_is_counted_and_hashed(echo: Echo) -> None:
    chunks = [b"hello ", b"chunked ", os.urandom(70_000), b"world"]
    body = b"".join(chunks)
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    head = echo_request("/upload", method="POST", headers=(("Host", "h"), ("Transfer-Encoding", "chunked")))
    async with await Conn.open(echo.port) as conn:
        await conn.send(head)
        for index in range(0, len(encoded), 4096):
            await conn.send(encoded[index : index + 4096])
        response = await conn.read_response()

    assert response.status == 200
    assert response.header("X-Echo-Body-Length") == str(len(body))
    assert response.header("X-Echo-Body-Sha256") == hashlib.sha256(body).hexdigest()
    assert "Transfer-Encoding" not in response.json()["headers"]
    assert f"body_length={len(body)} body_sha256={hashlib.sha256(body).hexdigest()}" in echo.log.getvalue()


async def test_one_mib_content_length_body_is_hashed(echo: Echo) -> None:
    body = os.urandom(1 << 20)
    async with await Conn.open(echo.port) as conn:
        await conn.send(echo_request("/big", method="PUT", body=body))
        response = await conn.read_response()
        await conn.send(echo_request("/after"))  # the connection is still usable
        after = await conn.read_response()

    assert response.header("X-Echo-Body-Length") == str(1 << 20)
    assert response.header("X-Echo-Body-Sha256") == hashlib.sha256(body).hexdigest()
    assert response.json()["headers"]["Content-Length"] == [str(1 << 20)]
    assert after.header("X-Echo-Body-Sha256") == EMPTY_SHA256


async def test_expect_100_continue(echo: Echo) -> None:
    head = echo_request(
        "/e", method="POST", headers=(("Host", "h"), ("Expect", "100-continue"), ("Content-Length", "3"))
    )
    async with await Conn.open(echo.port) as conn:
        await conn.send(head)
        interim = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), WAIT)
        await conn.send(b"abc")
        response = await conn.read_response()

    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert response.header("X-Echo-Body-Length") == "3"


async def test_head_has_length_but_no_body(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        await conn.send(echo_request("/h", method="HEAD") + echo_request("/next"))
        head = await conn.read_response(head=True)
        following = await conn.read_response()

    assert head.status == 200
    assert int(head.header("Content-Length") or "0") > 0
    assert following.json()["path"] == "/next"


async def test_http10_closes_after_response(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        await conn.send(b"GET /old HTTP/1.0\r\n\r\n")
        response = await conn.read_response()

        assert response.version == "HTTP/1.0"
        assert response.json()["proto"] == "HTTP/1.0"
        assert response.json()["host"] == ""
        assert await conn.closed_by_peer()


async def test_http10_keep_alive_stays_open(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        for _ in range(2):
            await conn.send(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            response = await conn.read_response()
            assert response.header("Connection") == "keep-alive"


async def test_connection_close_is_honoured(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        await conn.send(echo_request(headers=(("Host", "h"), ("Connection", "close"))) + echo_request("/ignored"))
        response = await conn.read_response()

        assert response.header("Connection") == "close"
        assert await conn.closed_by_peer()


@pytest.mark.parametrize(
    ("data", "status", "body"),
    [
        (b"GET / HTTP/1.1\r\nbad header\r\n\r\n", 400, b"400 Bad Request"),
        (b"NONSENSE\r\n\r\n", 400, b"400 Bad Request"),
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, b"400 Bad Request"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, b"400 Bad Request: missing required Host header"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, b"400 Bad Request: too many Host headers"),
        (b"GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400, b"400 Bad Request"),
    ],
)
async def test_malformed_request_is_400_and_close(echo: Echo, data: bytes, status: int, body: bytes) -> None:
    async with await Conn.open(echo.port) as conn:
        await conn.send(data)
        response = await conn.read_response()

        assert (response.status, response.body) == (status, body)
        assert await conn.closed_by_peer()


async def test_bad_chunk_after_good_request_answers_both(echo: Echo) -> None:
    bad = b"POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    async with await Conn.open(echo.port) as conn:
        await conn.send(echo_request("/good") + bad)
        good, failed = await conn.read_response(), await conn.read_response()

        assert good.json()["path"] == "/good"
        assert failed.status == 400
        assert await conn.closed_by_peer()


async def test_oversized_header_block_is_431(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        conn.writer.write(echo_request(headers=(("Host", "h"), ("X-Big", "a" * (1 << 21)))))
        response = await conn.read_response()  # the server answers while we are still sending

        assert response.status == 431
        assert await conn.closed_by_peer()


async def test_log_line_matches_echo_basic(echo: Echo) -> None:
    target = "/mirror?gateway-api-conformance-request-id=abc"
    async with await Conn.open(echo.port) as conn:
        await conn.send(echo_request(target))
        await conn.read_response()

    expected = f"Echoing back request made to {target} to client (127.0.0.1:{conn.local_port})"
    assert f"{expected} body_length=0 body_sha256={EMPTY_SHA256} host=echo.test" in echo.log_lines()
    assert echo.log_lines()[0] == f"Starting server, listening on port {echo.port} (http)"


@pytest.mark.parametrize(
    ("target", "version", "headers", "host"),
    [
        ("http://absolute.test:81/p", "1.1", (("Host", "ignored.test"),), "absolute.test:81"),  # Go's r.Host
        ("/p", "1.0", (), ""),  # HTTP/1.0 without Host: an empty field
    ],
)
async def test_log_line_names_the_host_as_go_sees_it(
    echo: Echo, target: str, version: str, headers: tuple[tuple[str, str], ...], host: str
) -> None:
    async with await Conn.open(echo.port) as conn:
        await conn.send(echo_request(target, headers=headers, version=version))
        await conn.read_response()

    assert echo.log_lines()[-1].endswith(f" body_sha256={EMPTY_SHA256} host={host}")


class _LogWatch(io.StringIO):
    """A log stream that sets ``seen`` once a line containing ``needle`` is written."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = asyncio.Event()

    def write(self, text: str) -> int:
        if self.needle in text:
            self.seen.set()
        return super().write(text)


async def test_close_ends_a_delayed_request() -> None:
    log = _LogWatch("/forever")
    server = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="x-a-b"), log=log)
    async with await Conn.open(server.port) as conn:
        await conn.send(echo_request("/forever?delay=1h"))
        await asyncio.wait_for(log.seen.wait(), WAIT)  # the request is now sleeping in its delay
        await server.close()
        assert await conn.closed_by_peer()


async def test_port_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"0\.\.65535"):
        await start_echo(EchoConfig(port=70000, bind="127.0.0.1"))


def test_identity_defaults_come_from_env_then_host() -> None:
    env = {"NAMESPACE": "ns", "SERVICE_NAME": "svc", "INGRESS_NAME": "ing", "HTTP_PORT": "3000"}
    identity = resolve_identity(EchoConfig(port=8080), 8080, env)

    assert (identity.namespace, identity.service, identity.ingress, identity.http_port) == ("ns", "svc", "ing", "3000")
    assert identity.pod.rsplit("-", 2)[0] == default_pod_name(socket.gethostname(), 8080).rsplit("-", 2)[0]
    assert resolve_identity(EchoConfig(port=1), 1, {"POD_NAME": "web-abc-def"}).pod == "web-abc-def"
    assert resolve_identity(EchoConfig(port=1, name="n-a-b"), 1, {"POD_NAME": "p"}).pod == "n-a-b"
    assert resolve_identity(EchoConfig(port=0), 4321, {}).http_port == "4321"


def test_default_pod_name_is_deployment_shaped_and_stable() -> None:
    name = default_pod_name("My_Laptop.example.org", 3000)

    backend, replica_set, pod = name.rsplit("-", 2)
    assert backend == "my-laptop-3000"
    assert (len(replica_set), len(pod)) == (10, 5)
    assert name == default_pod_name("My_Laptop.example.org", 3000)


async def test_status_204_has_no_content_length(echo: Echo) -> None:
    response = await roundtrip(echo.port, echo_request("/status/204"))

    assert response.status == 204
    assert response.header("Content-Length") is None


async def test_status_1xx_is_interim_then_200_like_go(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        await conn.send(echo_request("/status/103"))
        interim = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), WAIT)
        final = await conn.read_response()

    assert interim == b"HTTP/1.1 103 Early Hints\r\n\r\n"
    assert final.status == 200


async def test_status_below_100_closes_without_response_like_go_panic(echo: Echo) -> None:
    async with await Conn.open(echo.port) as conn:
        await conn.send(echo_request("/status/099"))

        assert await conn.closed_by_peer()
