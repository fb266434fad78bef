"""A table-driven corpus of malformed and adversarial requests against the real gateway.

Each row: raw bytes sent on a fresh connection -> the exact statuses of the replies (in order),
whether the gateway must close the connection, and the requests (``METHOD target``) the primary
backend must have received. The mirror backend must have received exactly the primary's requests
whose target starts with ``/mirrored`` (the route mirrors that prefix 100%). After the replies a
probe request is sent on the same connection: it must be answered when the connection must stay
open (and is then expected at the backend too) and must find the end of the stream when it must
close. Then a sentinel request on a new connection proves that the backends have received
everything they ever will from the row (``Harness.settle``); the gateway must have logged no
error and hold no connection or task.

Expected values follow RFC 9110/9112 (and Envoy/NGINX where the RFC leaves a choice). Rows
where mirrorgate is wrong are ``xfail(strict=True)`` with the reason; see docs/threat-model.md.
"""

from dataclasses import dataclass

import pytest

from tests.hardening.conftest import Harness
from tests.support.client import Conn

CLOSE = True
KEEP = False


@dataclass(frozen=True)
class Case:
    family: str
    name: str
    raw: bytes
    statuses: tuple[int, ...]  # replies in order; () = no reply at all
    close: bool
    seen: tuple[str, ...]  # what the primary backend must receive
    xfail: str = ""

    @property
    def id(self) -> str:
        return f"{self.family}-{self.name}"


def req(target: str = "/ok", *headers: str, method: str = "GET", version: str = "1.1", host: str | None = "a") -> bytes:
    lines = [f"{method} {target} HTTP/{version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += headers
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


GET_OK = req("/ok")
GET_NEXT = req("/next")  # pipelined after an error: must never be answered nor forwarded
CHUNKED = "Transfer-Encoding: chunked"


def post(target: str, *headers: str) -> bytes:
    return req(target, *headers, method="POST")


def cl_te(te: str) -> bytes:
    return post("/s", "Content-Length: 4", f"Transfer-Encoding: {te}") + b"1\r\nZ\r\n0\r\n\r\n"


def te_only(te: str, body: bytes = b"3\r\nabc\r\n0\r\n\r\n") -> bytes:
    return post("/s", f"Transfer-Encoding: {te}") + body


def cl(value: str, body: bytes = b"abc") -> bytes:
    return post("/s", f"Content-Length: {value}") + body


def chunked(body: bytes) -> bytes:
    return post("/c", CHUNKED) + body


BAD = 400

CASES = [
    # --- smuggling: Content-Length and Transfer-Encoding -------------------------------------------
    Case("smuggle", "cl-then-te", cl_te("chunked") + GET_NEXT, (BAD,), CLOSE, ()),
    Case(
        "smuggle",
        "te-then-cl",
        post("/s", CHUNKED, "Content-Length: 4") + b"1\r\nZ\r\n0\r\n\r\n" + GET_NEXT,
        (BAD,),
        CLOSE,
        (),
    ),
    Case("smuggle", "cl-te-mirrored", cl_te("chunked").replace(b"/s", b"/mirrored/s"), (BAD,), CLOSE, ()),
    Case("smuggle", "te-xchunked", te_only("xchunked") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("smuggle", "te-chunked-identity", te_only("chunked, identity") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("smuggle", "te-gzip", te_only("gzip") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("smuggle", "te-empty", te_only("") + GET_NEXT, (BAD,), CLOSE, ()),
    Case(
        "smuggle",
        "te-duplicate-headers",
        post("/s", CHUNKED, CHUNKED) + b"3\r\nabc\r\n0\r\n\r\n" + GET_NEXT,
        (BAD,),
        CLOSE,
        (),
    ),
    Case(
        "smuggle",
        "te-chunked-then-gzip-headers",
        post("/s", CHUNKED, "Transfer-Encoding: gzip") + b"3\r\nabc\r\n0\r\n\r\n" + GET_NEXT,
        (BAD,),
        CLOSE,
        (),
    ),
    Case(
        "smuggle",
        "te-gzip-chunked",  # chunked is final, but gzip would be silently dropped: 501 (RFC 9112 §6.1)
        te_only("gzip, chunked") + GET_NEXT,
        (501,),
        CLOSE,
        (),
    ),
    Case(
        "smuggle",
        "te-gzip-then-chunked-lines",  # two lines, combined "gzip, chunked": chunked final, gzip unsupported
        post("/s", "Transfer-Encoding: gzip", CHUNKED) + b"3\r\nabc\r\n0\r\n\r\n" + GET_NEXT,
        (501,),
        CLOSE,
        (),
    ),
    Case("smuggle", "te-chunked-twice-list", te_only("chunked, chunked") + GET_NEXT, (BAD,), CLOSE, ()),
    Case(
        "smuggle", "te-chunked-trailing-space", te_only("chunked ") + GET_OK, (200, 200), KEEP, ("POST /s", "GET /ok")
    ),
    Case("smuggle", "te-chunked-tab-ows", te_only("\tchunked") + GET_OK, (200, 200), KEEP, ("POST /s", "GET /ok")),
    Case("smuggle", "te-chunked-uppercase", te_only("CHUNKED"), (200,), KEEP, ("POST /s",)),
    Case(
        "smuggle",
        "te-space-before-colon",
        post("/s", "Transfer-Encoding : chunked", "Content-Length: 4") + b"1\r\nZ\r\n0\r\n\r\n",
        (BAD,),
        CLOSE,
        (),
    ),
    Case(
        "smuggle",
        "te-obs-fold",
        post("/s", "Transfer-Encoding:", " chunked", "Content-Length: 4") + b"1\r\nZ\r\n0\r\n\r\n",
        (BAD,),
        CLOSE,
        (),
    ),
    Case("smuggle", "te-http10", te_only("chunked").replace(b"HTTP/1.1", b"HTTP/1.0"), (BAD,), CLOSE, ()),
    Case(
        "smuggle",
        "cl-duplicate-equal",
        post("/s", "Content-Length: 3", "Content-Length: 3") + b"abc",
        (BAD,),
        CLOSE,
        (),
    ),
    Case(
        "smuggle",
        "cl-duplicate-differ",
        post("/s", "Content-Length: 3", "Content-Length: 4") + b"abcd",
        (BAD,),
        CLOSE,
        (),
    ),
    Case("smuggle", "cl-list", cl("3, 3"), (BAD,), CLOSE, ()),
    Case("smuggle", "cl-negative", cl("-3"), (BAD,), CLOSE, ()),
    Case("smuggle", "cl-plus", cl("+3"), (BAD,), CLOSE, ()),
    Case("smuggle", "cl-hex", cl("0x3"), (BAD,), CLOSE, ()),
    Case("smuggle", "cl-non-numeric", cl("abc"), (BAD,), CLOSE, ()),
    Case("smuggle", "cl-exponent", cl("3e0"), (BAD,), CLOSE, ()),
    Case("smuggle", "cl-inner-space", cl("1 2"), (BAD,), CLOSE, ()),
    Case("smuggle", "cl-empty", cl(""), (BAD,), CLOSE, ()),
    Case("smuggle", "cl-overflow", cl("99999999999999999999999999"), (BAD,), CLOSE, ()),
    Case("smuggle", "cl-ows-ok", cl(" 3 ") + GET_OK, (200, 200), KEEP, ("POST /s", "GET /ok")),
    Case(
        "smuggle",
        "cl-short-next-is-pipelined",  # consistent framing: the bytes after the body are the next request
        cl("5", b"helloGET /second HTTP/1.1\r\nHost: a\r\n\r\n"),
        (200, 200),
        KEEP,
        ("POST /s", "GET /second"),
    ),
    Case(
        "smuggle",
        "chunked-body-then-request",
        chunked(b"0\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n"),
        (200, 200),
        KEEP,
        ("POST /c", "GET /second"),
    ),
    Case("smuggle", "valid-then-cl-te", GET_OK + cl_te("chunked") + GET_NEXT, (200, BAD), CLOSE, ("GET /ok",)),
    Case(
        "smuggle",
        "valid-mirrored-then-cl-te",
        req("/mirrored/a") + cl_te("chunked") + GET_NEXT,
        (200, BAD),
        CLOSE,
        ("GET /mirrored/a",),
    ),
    # --- chunk framing ----------------------------------------------------------------------------
    Case("chunk", "bad-hex", chunked(b"zz\r\nabc\r\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "0x-prefix", chunked(b"0x3\r\nabc\r\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "negative", chunked(b"-3\r\nabc\r\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "size-overflow", chunked(b"1" + b"0" * 20 + b"\r\nabc\r\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "size-leading-space", chunked(b" 3\r\nabc\r\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "missing-crlf-after-data", chunked(b"3\r\nabcX0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "data-longer-than-size", chunked(b"3\r\nabcdef\r\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "bare-lf-after-size", chunked(b"3\nabc\r\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "bare-lf-after-data", chunked(b"3\r\nabc\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "bare-cr-after-size", chunked(b"3\rabc\r\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "bare-lf-last-chunk", chunked(b"3\r\nabc\r\n0\n\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "ext-nul", chunked(b"3;a\x00b\r\nabc\r\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "ext-bare-lf", chunked(b"3;a\nabc\r\n0\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("chunk", "bad-trailer", chunked(b"3\r\nabc\r\n0\r\nno colon here\r\n\r\n") + GET_NEXT, (BAD,), CLOSE, ()),
    Case(
        "chunk",
        "ext-ok",
        chunked(b'3;name=val;q="x y"\r\nabc\r\n0\r\n\r\n') + GET_OK,
        (200, 200),
        KEEP,
        ("POST /c", "GET /ok"),
    ),
    Case(
        "chunk",
        "trailer-dropped",
        chunked(b"3\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n") + GET_OK,
        (200, 200),
        KEEP,
        ("POST /c", "GET /ok"),
    ),
    Case(
        "chunk",
        "mid-body-error-after-forwarding",  # the body was streaming upstream when it broke
        chunked(b"3\r\nabc\r\nzz\r\n") + GET_NEXT,
        (BAD,),
        CLOSE,
        (),
    ),
    # --- header syntax ----------------------------------------------------------------------------
    Case("header", "space-before-colon", req("/h", "X-A : 1") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "tab-before-colon", req("/h", "X-A\t: 1") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "obs-fold-space", req("/h", "X-A: 1", " 2") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "obs-fold-tab", req("/h", "X-A: 1", "\t2") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "nul-in-value", req("/h", "X-A: 1\x002") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "cr-in-value", req("/h", "X-A: 1\r2") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "bare-lf-line-end", b"GET /h HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n" + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "all-bare-lf", b"GET /h HTTP/1.1\nHost: a\n\n" + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "del-in-value", req("/h", "X-A: 1\x7f2") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "non-token-name-paren", req("/h", "X(A): 1") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "non-token-name-at", req("/h", "X@A: 1") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "empty-name", req("/h", ": 1") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "no-colon", req("/h", "X-A") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "missing-host", req("/h", host=None) + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "repeated-host", req("/h", "Host: b") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("header", "repeated-host-case", req("/h", "hOST: a") + GET_NEXT, (BAD,), CLOSE, ()),
    Case(
        "header",
        "host-with-space",
        req("/h", host="a b") + GET_NEXT,
        (BAD,),
        CLOSE,
        (),
    ),
    Case(
        "header",
        "host-with-slash",
        req("/h", host="a/b") + GET_NEXT,
        (BAD,),
        CLOSE,
        (),
    ),
    Case(
        "header",
        "host-with-userinfo",
        req("/h", host="u@a") + GET_NEXT,
        (BAD,),
        CLOSE,
        (),
    ),
    Case(
        "header",
        "absolute-form-invalid-authority",
        req("http://a<b/h") + GET_NEXT,
        (BAD,),
        CLOSE,
        (),
    ),
    Case("header", "host-ipv6-ok", req("/h", host="[::1]:8080") + GET_OK, (200, 200), KEEP, ("GET /h", "GET /ok")),
    Case("header", "host-empty-ok", req("/h", host="") + GET_OK, (200, 200), KEEP, ("GET /h", "GET /ok")),
    Case("header", "http10-no-host-ok", req("/h", version="1.0", host=None), (200,), CLOSE, ("GET /h",)),
    Case("header", "obs-text-value-ok", req("/h", "X-A: caf\xe9") + GET_OK, (200, 200), KEEP, ("GET /h", "GET /ok")),
    Case("header", "empty-value-ok", req("/h", "X-A:") + GET_OK, (200, 200), KEEP, ("GET /h", "GET /ok")),
    Case(
        "header",
        "too-large",
        req("/h", "X-Big: " + "a" * 70_000) + GET_NEXT,
        (431,),
        CLOSE,
        (),
    ),
    Case(
        "header",
        "too-many-by-bytes",
        req("/h", *(["X-Y: z"] * 9000)) + GET_NEXT,
        (431,),
        CLOSE,
        (),
    ),
    Case(
        "header",
        "too-many-by-count",  # 5000 header lines in 35 KB: under the byte limit, over max_headers (100)
        req("/h", *(["Y: z"] * 5000)) + GET_NEXT,
        (431,),
        CLOSE,
        (),
    ),
    # --- request line -----------------------------------------------------------------------------
    Case("line", "invalid-method-char", req("/l", method="G@T") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "empty-method", b" /l HTTP/1.1\r\nHost: a\r\n\r\n" + GET_NEXT, (BAD,), CLOSE, ()),
    Case(
        "line",
        "double-space-ok",  # RFC 9112 §3: MAY parse on whitespace; re-encoded with one SP upstream
        b"GET  /l HTTP/1.1\r\nHost: a\r\n\r\n" + GET_OK,
        (200, 200),
        KEEP,
        ("GET /l", "GET /ok"),
    ),
    Case("line", "space-in-target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n" + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "ctl-in-target", req("/a\x01b") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "nul-in-target", req("/a\x00b") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "relative-target", req("l") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "ftp-absolute", req("ftp://a/l") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "absolute-userinfo", req("http://u:p@a/l") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "absolute-empty-authority", req("http:///l") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "authority-form-get", req("a:443") + GET_NEXT, (BAD,), CLOSE, ()),
    Case(
        "line",
        "absolute-form-ok",  # the authority replaces Host (RFC 9112 §3.2.2)
        req("http://b.example/l?q=1", host="ignored") + GET_OK,
        (200, 200),
        KEEP,
        ("GET /l?q=1", "GET /ok"),
    ),
    Case(
        "line",
        "connect-authority",
        req("a:443", method="CONNECT") + GET_NEXT,
        (501,),
        CLOSE,
        (),
    ),
    Case(
        "line",
        "connect-origin-form",
        req("/l", method="CONNECT") + GET_NEXT,
        (501,),
        CLOSE,
        (),
    ),
    Case(
        "line",
        "asterisk-get",
        req("*") + GET_NEXT,
        (BAD,),
        CLOSE,
        (),
    ),
    Case("line", "asterisk-options", req("*", method="OPTIONS") + GET_OK, (200, 200), KEEP, ("OPTIONS *", "GET /ok")),
    Case(
        "line",
        "fragment-in-target",
        req("/l#frag") + GET_NEXT,
        (BAD,),
        CLOSE,
        (),
    ),
    Case("line", "pct-nul-ok", req("/l%00?x=%0d%0a") + GET_OK, (200, 200), KEEP, ("GET /l%00?x=%0d%0a", "GET /ok")),
    Case("line", "raw-non-ascii-target", req("/\xff") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "unknown-method", req("/l", method="FOO") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "lowercase-method", req("/l", method="get") + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "http09", b"GET /l\r\n\r\n" + GET_NEXT, (505,), CLOSE, ()),
    Case("line", "http2", req("/l", version="2.0") + GET_NEXT, (505,), CLOSE, ()),
    Case("line", "http3", req("/l", version="3.0") + GET_NEXT, (BAD,), CLOSE, ()),  # llhttp: unknown version
    Case("line", "http12", req("/l", version="1.2") + GET_NEXT, (BAD,), CLOSE, ()),  # llhttp: unknown version
    Case("line", "lowercase-http", b"GET /l http/1.1\r\nHost: a\r\n\r\n" + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + GET_NEXT, (BAD,), CLOSE, ()),
    Case("line", "tls-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32, (BAD,), CLOSE, ()),
    Case(
        "line",
        "uri-too-long",
        req("/" + "a" * 70_000) + GET_NEXT,
        (414,),
        CLOSE,
        (),
    ),
    Case("line", "leading-crlf-ok", b"\r\n" + GET_OK, (200,), KEEP, ("GET /ok",)),
    Case(
        "line",
        "upgrade-answered-then-closed",
        req("/u", "Upgrade: websocket", "Connection: upgrade"),
        (200,),
        CLOSE,
        ("GET /u",),
    ),
    # --- pipelining after an error ----------------------------------------------------------------
    Case(
        "pipeline",
        "two-good-then-bad",
        GET_OK + req("/two") + req("/h", "Host: b") + GET_NEXT,
        (200, 200, BAD),
        CLOSE,
        ("GET /ok", "GET /two"),
    ),
    Case(
        "pipeline", "good-then-garbage", GET_OK + b"\x00\x01garbage\r\n\r\n" + GET_NEXT, (200, BAD), CLOSE, ("GET /ok",)
    ),
    Case(
        "pipeline",
        "post-body-then-bad",
        cl("3") + req("/h", "X A: 1") + GET_NEXT,
        (200, BAD),
        CLOSE,
        ("POST /s",),
    ),
    Case("pipeline", "http10-close-then-more", req("/h", version="1.0") + GET_NEXT, (200,), CLOSE, ("GET /h",)),
    Case(
        "pipeline", "connection-close-then-more", req("/h", "Connection: close") + GET_NEXT, (200,), CLOSE, ("GET /h",)
    ),
]


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
    return pytest.param(case, id=case.id, marks=marks)


def test_corpus_size() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
async def test_request_corpus(harness: Harness, case: Case) -> None:
    client = await Conn.open(harness.port)
    statuses = []
    try:
        await client.send(case.raw)
        for _ in case.statuses:
            reply = await client.read_reply()
            if reply is None:
                break
            statuses.append(reply.status)
        # A probe on the same connection: answered when the connection must stay open; when it
        # must be closed the gateway has stopped reading, so it only finds the end of the stream.
        await client.send(req("/probe"))
        probe = await client.read_reply()
        if probe is not None:
            statuses.append(probe.status)
    finally:
        await client.close()
    await harness.settle()
    closed = probe is None
    want_statuses = list(case.statuses) + ([] if case.close else [200])
    want_seen = list(case.seen) + ([] if case.close else ["GET /probe"])
    assert (statuses, closed, harness.primary.targets()) == (want_statuses, case.close, want_seen)
    assert harness.mirror.targets() == [t for t in want_seen if t.split(" ")[1].startswith("/mirrored")]
    assert harness.primary.parse_errors == 0
    assert harness.log.errors() == []
    assert harness.leaks()[:2] == (0, 0)
