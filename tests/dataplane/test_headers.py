"""Unit tests of dataplane.headers, using the tables of the Gateway API type docs
(``HTTPPathModifier.replacePrefixMatch``, ``HTTPRequestRedirectFilter`` port and scheme)."""

import itertools
import uuid

import pytest
from hypothesis import given, strategies as st

from mirrorgate.dataplane import headers as headers_module
from mirrorgate.dataplane.headers import (
    compile_edit,
    encode_forward,
    forward_headers,
    new_request_id,
    redirect_location,
    replace_header,
    rewrite_path,
)
from mirrorgate.ir.table import HeaderModifier, PathModifier, Redirect
from mirrorgate.wire.authority import shadow_host, split_host_port
from mirrorgate.wire.hop import HOP_BY_HOP, strip_hop_by_hop, strip_hop_by_hop_raw


def test_strip_hop_by_hop() -> None:
    headers = [
        (b"Connection", b"keep-alive, X-Secret"),
        (b"keep-alive", b"timeout=5"),
        (b"x-secret", b"1"),
        (b"Proxy-Authorization", b"x"),
        (b"proxy-connection", b"close"),
        (b"TE", b"trailers"),
        (b"trailer", b"x"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"h2c"),
        (b"accept", b"a"),
        (b"accept", b"b"),
        (b"x-keep", b"1"),
    ]
    assert strip_hop_by_hop(headers) == [(b"accept", b"a"), (b"accept", b"b"), (b"x-keep", b"1")]


def test_forward_headers_appends_xff_and_generates_id() -> None:
    headers = [(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b"2.2.2.2"), (b"x-forwarded-proto", b"x")]
    out, rid = forward_headers(headers, b"127.0.0.1", b"http")
    assert out == [
        (b"x-forwarded-for", b"1.1.1.1, 2.2.2.2, 127.0.0.1"),
        (b"x-forwarded-proto", b"http"),
        (b"x-request-id", rid),
    ]
    assert len(rid) == 36
    assert headers[2] == (b"x-forwarded-proto", b"x")  # the input is not modified


def test_forward_headers_drops_hop_by_hop_and_keeps_request_id() -> None:
    headers = [
        (b"connection", b"x-secret, keep-alive"),
        (b"x-secret", b"s"),
        (b"expect", b"100-continue"),
        (b"x-forwarded-for", b"1.1.1.1"),
        (b"accept", b"a"),
        (b"x-request-id", b"rid"),
        (b"x-forwarded-proto", b"https"),
        (b"proxy-authorization", b"p"),
        (b"te", b"trailers"),
        (b"accept", b"b"),
    ]
    out, rid = forward_headers(headers, b"10.0.0.9", b"http")
    assert rid == b"rid"
    assert out == [
        (b"accept", b"a"),
        (b"x-request-id", b"rid"),
        (b"accept", b"b"),
        (b"x-forwarded-for", b"1.1.1.1, 10.0.0.9"),
        (b"x-forwarded-proto", b"http"),
    ]
    out, rid = forward_headers([(b"host", b"h")], b"::1", b"http")
    assert out == [
        (b"host", b"h"),
        (b"x-forwarded-for", b"::1"),
        (b"x-forwarded-proto", b"http"),
        (b"x-request-id", rid),
    ]


def test_request_ids_are_uuid4() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    for rid in list(ids)[:50]:
        assert uuid.UUID(rid.decode()).version == 4
        assert str(uuid.UUID(rid.decode())).encode() == rid


def test_request_ids_spell_the_counter_across_table_and_wrap_boundaries() -> None:
    """An id is the prefix and the counter modulo 2**48 in 12 hex digits, also where the table of
    last digits wraps (every 4096 ids) and where the counter passes 2**48."""
    ids = headers_module._ids
    saved = ids.next, ids.high
    try:
        for start in (4094, 2**48 - 2, 0x123456789FFE):
            ids.next = itertools.count(start).__next__
            got = [new_request_id() for _ in range(4)]
            assert got == [ids.prefix + b"%012x" % ((start + i) & 0xFFFFFFFFFFFF) for i in range(4)]
    finally:
        ids.next, ids.high = saved


def test_request_modifier_set_add_remove() -> None:
    mod = HeaderModifier(
        set=(("X-Header-Set", "set-overwrites-values"), ("x-header-set", "ignored: first entry wins")),
        add=(("X-Header-Add", "add-appends-values"), ("X-New", "n")),
        remove=("X-Header-Remove",),
    )
    edit = compile_edit(mod, lower_names=True)
    assert edit is not None
    headers = [
        (b"x-header-set", b"some-other-value"),
        (b"x-header-add", b"a"),
        (b"x-header-add", b"b"),
        (b"x-header-remove", b"r"),
        (b"x-header-set", b"again"),
        (b"other", b"o"),
    ]
    assert edit.apply(headers) == [
        (b"x-header-set", b"set-overwrites-values"),
        (b"x-header-add", b"a"),
        (b"x-header-add", b"b,add-appends-values"),
        (b"other", b"o"),
        (b"x-new", b"n"),
    ]


def test_response_modifier_keeps_configured_case_and_compares_insensitively() -> None:
    edit = compile_edit(
        HeaderModifier(set=(("X-Mixedcase-SET", "v"),), add=(("x-Mixedcase-ADD-1", "a"),), remove=("X-REMOVE",)),
        lower_names=False,
    )
    assert edit is not None
    got = edit.apply([(b"X-MixedCase-Set", b"old"), (b"x-remove", b"1"), (b"Content-Type", b"text/plain")])
    assert got == [(b"X-Mixedcase-SET", b"v"), (b"Content-Type", b"text/plain"), (b"x-Mixedcase-ADD-1", b"a")]


def test_compile_edit_empty_is_none() -> None:
    assert compile_edit(None, lower_names=True) is None
    assert compile_edit(HeaderModifier(), lower_names=True) is None


def test_replace_header() -> None:
    headers = [(b"host", b"a"), (b"x", b"1"), (b"host", b"b")]
    replace_header(headers, b"host", b"c")
    assert headers == [(b"host", b"c"), (b"x", b"1")]


@pytest.mark.parametrize(
    ("path", "prefix", "replacement", "want"),
    [
        # the table of the HTTPPathModifier.replacePrefixMatch type docs
        (b"/foo/bar", "/foo", "/xyz", b"/xyz/bar"),
        (b"/foo/bar", "/foo/", "/xyz", b"/xyz/bar"),
        (b"/foo/bar", "/foo", "/xyz/", b"/xyz/bar"),
        (b"/foo/bar", "/foo/", "/xyz/", b"/xyz/bar"),
        (b"/foo", "/foo", "/xyz", b"/xyz"),
        (b"/foo/", "/foo", "/xyz", b"/xyz/"),
        (b"/foo/bar", "/foo", "", b"/bar"),
        (b"/foo", "/foo", "", b"/"),
        (b"/foo/", "/foo", "", b"/"),
        (b"/foo", "/foo", "/", b"/"),
        (b"/foo/", "/foo", "/", b"/"),
        # conformance RewritePath
        (b"/prefix/one/two", "/prefix/one", "/one", b"/one/two"),
        (b"/strip-prefix/three", "/strip-prefix", "/", b"/three"),
        (b"/strip-prefix", "/strip-prefix", "/", b"/"),
        (
            b"/prefix/rewrite-path-and-modify-headers/one",
            "/prefix/rewrite-path-and-modify-headers",
            "/prefix",
            b"/prefix/one",
        ),
        # query kept byte-exact; a path the prefix does not cover is unchanged
        (b"/foo/bar?a=%2F&b", "/foo", "/xyz", b"/xyz/bar?a=%2F&b"),
        (b"/foo?", "/foo", "/xyz", b"/xyz?"),
        (b"/foobar", "/foo", "/xyz", b"/foobar"),
        (b"/other", "/foo", "/xyz", b"/other"),
    ],
)
def test_replace_prefix_match(path: bytes, prefix: str, replacement: str, want: bytes) -> None:
    assert rewrite_path(path, PathModifier(type="ReplacePrefixMatch", value=replacement, prefix=prefix)) == want


def test_replace_full_path_keeps_query() -> None:
    mod = PathModifier(type="ReplaceFullPath", value="/one")
    assert rewrite_path(b"/full/one/two", mod) == b"/one"
    assert rewrite_path(b"/full/one/two?x=%20y", mod) == b"/one?x=%20y"


def _loc(
    redirect: Redirect,
    listener_port: int,
    scheme: str = "http",
    host: bytes = b"example.com:9999",
    target: bytes = b"/p?q=1",
) -> bytes:
    return redirect_location(redirect, scheme, host, listener_port, target)


@pytest.mark.parametrize(
    ("redirect", "listener_port", "want"),
    [
        # HTTPRequestRedirectFilter port and scheme (conformance RedirectPortAndScheme), listener 80
        (Redirect(hostname="example.org"), 80, b"http://example.org/p?q=1"),
        (Redirect(hostname="example.org", port=80), 80, b"http://example.org/p?q=1"),
        (Redirect(hostname="example.org", port=8080), 80, b"http://example.org:8080/p?q=1"),
        (Redirect(hostname="example.org", scheme="https"), 80, b"https://example.org/p?q=1"),
        (Redirect(hostname="example.org", scheme="https", port=443), 80, b"https://example.org/p?q=1"),
        (Redirect(hostname="example.org", scheme="https", port=8443), 80, b"https://example.org:8443/p?q=1"),
        # listener 8080
        (Redirect(hostname="example.org"), 8080, b"http://example.org:8080/p?q=1"),
        (Redirect(hostname="example.org", port=80), 8080, b"http://example.org/p?q=1"),
        (Redirect(hostname="example.org", scheme="https"), 8080, b"https://example.org/p?q=1"),
        # no hostname: the request's host, port dropped
        (Redirect(), 80, b"http://example.com/p?q=1"),
        (Redirect(port=8083), 80, b"http://example.com:8083/p?q=1"),
        # paths
        (
            Redirect(path=PathModifier(type="ReplaceFullPath", value="/full-path-replacement")),
            80,
            b"http://example.com/full-path-replacement?q=1",
        ),
    ],
)
def test_redirect_location(redirect: Redirect, listener_port: int, want: bytes) -> None:
    assert _loc(redirect, listener_port) == want


def test_redirect_prefix_and_https_listener_and_ipv6() -> None:
    mod = PathModifier(type="ReplacePrefixMatch", value="/replacement-prefix", prefix="/original-prefix")
    assert (
        _loc(Redirect(path=mod), 80, target=b"/original-prefix/lemon") == b"http://example.com/replacement-prefix/lemon"
    )
    # a listener on 443 whose request scheme is https (conformance RedirectPortAndScheme, listener 443)
    assert _loc(Redirect(hostname="example.org"), 443, scheme="https") == b"https://example.org/p?q=1"
    assert _loc(Redirect(hostname="example.org", scheme="http"), 443, scheme="https") == b"http://example.org/p?q=1"
    assert _loc(Redirect(), 8080, host=b"[::1]:8080") == b"http://[::1]:8080/p?q=1"


@pytest.mark.parametrize(
    ("host", "want"),
    [
        (b"a.com", b"a.com-shadow"),
        (b"httpbin:8000", b"httpbin-shadow:8000"),
        (b"[::1]:80", b"[::1]-shadow:80"),
        (b"[::1]", b"[::1]-shadow"),
        (b"10.0.0.1:80", b"10.0.0.1-shadow:80"),
    ],
)
def test_shadow_host(host: bytes, want: bytes) -> None:
    assert shadow_host(host) == want


def test_split_host_port() -> None:
    assert split_host_port(b"a:1") == (b"a", b"1")
    assert split_host_port(b"[::1]") == (b"[::1]", b"")
    assert split_host_port(b"[::1") == (b"[::1", b"")


FORWARD_CASES = [
    [(b"host", b"h")],
    [(b"host", b"h"), (b"accept", b"a"), (b"accept", b"b"), (b"x-request-id", b"rid"), (b"x-request-id", b"r2")],
    [(b"x-forwarded-for", b"1.1.1.1"), (b"x-forwarded-for", b""), (b"x-forwarded-proto", b"x"), (b"expect", b"e")],
    [(b"proxy-authorization", b"p"), (b"te", b"trailers"), (b"keep-alive", b"1"), (b"upgrade", b"u"), (b"a", b"1")],
    [(b"x-request-id", b""), (b"trailer", b"t"), (b"transfer-encoding", b"chunked"), (b"host", b"[::1]:80")],
    [],
]


@pytest.mark.parametrize("headers", FORWARD_CASES)
def test_encode_forward_matches_forward_headers(headers: list[tuple[bytes, bytes]]) -> None:
    encoded = encode_forward(b"GET", b"/p?q", headers, b"10.0.0.9", b"http")
    assert encoded is not None
    parts, rid, host_at = encoded
    out, rid2 = forward_headers(headers, b"10.0.0.9", b"http")
    if rid2 != rid:  # both generated one: compare with ours
        out = [(n, rid if n == b"x-request-id" and v == rid2 else v) for n, v in out]
    want = b"GET /p?q HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in out)
    assert b"".join(parts) == want
    hosts = [v for n, v in out if n == b"host"]
    if hosts:
        assert parts[host_at - 2 : host_at + 2] == [b"host", b": ", hosts[0], b"\r\n"]
    else:
        assert host_at == -1


def test_encode_forward_declines_connection_headers_naming_other_fields() -> None:
    assert encode_forward(b"GET", b"/", [(b"x-a", b"1"), (b"connection", b"x-a")], b"1.2.3.4", b"http") is None
    assert encode_forward(b"GET", b"/", [(b"connection", b"close"), (b"close", b"1")], b"1.2.3.4", b"http") is None


@pytest.mark.parametrize(
    "headers",
    [
        [(b"host", b"h"), (b"connection", b"keep-alive"), (b"keep-alive", b"timeout=5"), (b"a", b"1")],
        [(b"connection", b"Keep-Alive, TE"), (b"te", b"trailers"), (b"host", b"h")],
        [(b"connection", b"close"), (b"host", b"h"), (b"x-forwarded-proto", b"https")],
        [(b"connection", b" upgrade , keep-alive"), (b"upgrade", b"h2c"), (b"host", b"h")],
    ],
)
def test_encode_forward_takes_connection_headers_naming_only_dropped_fields(headers: list[tuple[bytes, bytes]]) -> None:
    """Browsers send ``Connection: keep-alive``: that must not cost the slow path. The result is
    the same as ``forward_headers``'."""
    encoded = encode_forward(b"GET", b"/", headers, b"1.2.3.4", b"http")
    assert encoded is not None
    parts, rid, _ = encoded
    out, rid2 = forward_headers(headers, b"1.2.3.4", b"http")
    out = [(n, rid if n == b"x-request-id" and v == rid2 else v) for n, v in out]
    assert b"".join(parts) == b"GET / HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in out)


RESPONSE_HEADERS = [
    [(b"Server", b"s"), (b"Content-Length", b"1")],
    [(b"Connection", b"keep-alive"), (b"Date", b"d")],
    [(b"Connection", b"X-Secret, close"), (b"x-secret", b"1"), (b"Proxy-Foo", b"p"), (b"Keep-Alive", b"t")],
    [(b"connection", b"a"), (b"A", b"1"), (b"Connection", b"B"), (b"b", b"2"), (b"c", b"3")],
    [(b"x-proxy-id", b"1"), (b"TE", b"t"), (b"Upgrade", b"u"), (b"te", b"t2"), (b"Trailer", b"x")],
    [(b"CONNECTION", b"Keep-Alive , upgrade"), (b"Upgrade", b"h2c"), (b"X-Te", b"1"), (b"Tee", b"2")],
    [],
]


def block_of(headers: list[tuple[bytes, bytes]], sep: bytes = b": ") -> bytes:
    return b"".join(n + sep + v + b"\r\n" for n, v in headers)


def strip_block(block: bytes) -> bytes | None:
    """``strip_hop_by_hop_raw`` over a whole head made of ``block``."""
    raw = b"HTTP/1.1 200 OK\r\n" + block + b"\r\n"
    return strip_hop_by_hop_raw(raw, raw.lower(), 17)


@pytest.mark.parametrize("headers", RESPONSE_HEADERS)
def test_strip_block_matches_strip(headers: list[tuple[bytes, bytes]]) -> None:
    for sep in (b": ", b":", b":\t "):
        got = strip_block(block_of(headers, sep))
        listed = {t.strip().lower() for n, v in headers if n.lower() == b"connection" for t in v.split(b",")}
        if listed - HOP_BY_HOP - {b""}:  # a Connection token names another field: the caller's slow path
            assert got is None
        else:
            assert got == block_of(strip_hop_by_hop(headers), sep)


_NAMES = st.sampled_from(
    [
        *(b"Connection", b"connection", b"Keep-Alive", b"TE", b"te", b"Trailer", b"Transfer-Encoding", b"Upgrade"),
        *(b"Proxy-Authenticate", b"proxy-x", b"Date", b"X-Te", b"Tee", b"x-connection", b"Content-Length", b"a"),
    ]
)
_VALUES = st.lists(st.sampled_from([b"keep-alive", b"close", b"Upgrade", b"x-te", b"1", b"te", b" "]), max_size=3).map(
    lambda tokens: b",".join(tokens).strip()
)


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=8))
def test_strip_block_agrees_with_strip_on_any_head(headers: list[tuple[bytes, bytes]]) -> None:
    got = strip_block(block_of(headers))
    if got is not None:
        assert got == block_of(strip_hop_by_hop(headers))
    else:
        listed = {t.strip().lower() for n, v in headers if n.lower() == b"connection" for t in v.split(b",")}
        assert listed - HOP_BY_HOP - {b""}
