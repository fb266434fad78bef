"""The mirror head: byte-exact request line, shadow Host (Envoy's: ``-shadow`` before the port), framing rules."""

import pytest

from mirrorgate.dataplane.headers import encode_forward, forward_headers
from mirrorgate.ir.table import UpstreamAddress
from mirrorgate.mirror.head import build_head, head_from_parts

EP = UpstreamAddress(address="10.0.0.9", port=8080)


def head_of(
    headers: list[tuple[bytes, bytes]],
    *,
    has_body: bool = False,
    suffix: bool = True,
    method: bytes = b"GET",
    target: bytes = b"/",
) -> bytes:
    return build_head(method, target, headers, has_body, suffix).for_endpoint(EP)


@pytest.mark.parametrize(
    ("host", "shadow"),
    [
        (b"a.com", b"a.com-shadow"),
        (b"httpbin:8000", b"httpbin-shadow:8000"),
        (b"[::1]:80", b"[::1]-shadow:80"),
        (b"[::1]", b"[::1]-shadow"),
        (b"127.0.0.1:9000", b"127.0.0.1-shadow:9000"),
    ],
)
def test_shadow_host_inserted_before_the_port(host: bytes, shadow: bytes) -> None:
    assert b"\r\nhost: " + shadow + b"\r\n" in head_of([(b"host", host)])


def test_shadow_host_suffix_can_be_turned_off() -> None:
    assert b"\r\nhost: httpbin:8000\r\n" in head_of([(b"host", b"httpbin:8000")], suffix=False)


def test_request_line_and_headers_are_byte_exact_and_ordered() -> None:
    target = b"/a%2Fb/./c;p=1?q=%20x&q=y&&empty=&%zz"
    headers = [(b"host", b"a.com"), (b"x-dup", b"1"), (b"x-request-id", b"rid"), (b"x-dup", b"2")]
    assert head_of(headers, method=b"PATCH", target=target) == (
        b"PATCH " + target + b" HTTP/1.1\r\nhost: a.com-shadow\r\nx-dup: 1\r\nx-request-id: rid\r\nx-dup: 2\r\n\r\n"
    )


def test_missing_host_gets_the_endpoint_authority() -> None:
    assert b"\r\nhost: 10.0.0.9-shadow:8080\r\n" in head_of([])
    v6 = build_head(b"GET", b"/", [], False, True).for_endpoint(UpstreamAddress(address="::1", port=80))
    assert b"\r\nhost: [::1]-shadow:80\r\n" in v6
    assert b"\r\nhost: 10.0.0.9:8080\r\n" in head_of([], suffix=False)


def test_body_without_length_is_sent_chunked_and_transfer_encoding_is_ours() -> None:
    head = build_head(b"POST", b"/", [(b"host", b"a"), (b"transfer-encoding", b"gzip, chunked")], True, True)
    assert head.chunked
    assert head.content_length is None
    raw = head.for_endpoint(EP)
    assert raw.count(b"transfer-encoding") == 1
    assert raw.endswith(b"\r\ntransfer-encoding: chunked\r\n\r\n")


def test_body_with_length_keeps_it() -> None:
    head = build_head(b"PUT", b"/", [(b"host", b"a"), (b"content-length", b"12")], True, True)
    assert not head.chunked
    assert head.content_length == 12
    assert head.for_endpoint(EP).endswith(b"\r\ncontent-length: 12\r\n\r\n")


def test_no_body_no_framing() -> None:
    head = build_head(b"GET", b"/", [(b"host", b"a")], False, True)
    assert not head.chunked
    assert head.content_length is None
    assert b"transfer-encoding" not in head.for_endpoint(EP)


def test_head_method_is_flagged() -> None:
    assert build_head(b"HEAD", b"/", [], False, True).is_head
    assert not build_head(b"GET", b"/", [], False, True).is_head


@pytest.mark.parametrize(
    ("headers", "has_body", "content_length"),
    [
        ([(b"host", b"a.com:8080"), (b"accept", b"*/*")], False, None),
        ([(b"host", b"[::1]:80"), (b"x-request-id", b"rid"), (b"content-length", b"5")], True, 5),
        ([(b"host", b"a"), (b"transfer-encoding", b"chunked"), (b"x-forwarded-for", b"1.2.3.4")], True, None),
        ([(b"x-a", b"1"), (b"expect", b"100-continue"), (b"content-length", b"3")], True, 3),
        ([(b"host", b"h"), (b"content-length", b"0"), (b"keep-alive", b"1"), (b"proxy-x", b"p")], False, None),
        ([], False, None),
    ],
)
@pytest.mark.parametrize("suffix", [True, False])
@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"POST"])
def test_head_from_the_primarys_parts_equals_the_head_from_its_headers(
    headers: list[tuple[bytes, bytes]], has_body: bool, content_length: int | None, suffix: bool, method: bytes
) -> None:
    """The hot path builds the mirror head from the primary's own encoded head; it must be the
    head ``build_head`` makes from the same request's forwarded headers (same request id)."""
    encoded = encode_forward(method, b"/p?q=1", headers, b"10.0.0.1", b"http")
    assert encoded is not None
    parts, request_id, host_at = encoded
    forwarded, rid = forward_headers(headers, b"10.0.0.1", b"http")
    forwarded = [(n, request_id if n == b"x-request-id" and v == rid else v) for n, v in forwarded]
    fast = head_from_parts(
        parts,
        host_at,
        has_body=has_body,
        content_length=content_length,
        shadow_suffix=suffix,
        is_head=method == b"HEAD",
    )
    slow = build_head(method, b"/p?q=1", forwarded, has_body, suffix)
    for ep in (EP, UpstreamAddress(address="::1", port=80)):
        assert fast.for_endpoint(ep) == slow.for_endpoint(ep)
    assert (fast.chunked, fast.content_length, fast.has_body, fast.is_head) == (
        slow.chunked,
        slow.content_length,
        slow.has_body,
        slow.is_head,
    )
