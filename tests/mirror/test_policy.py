"""The pure parts of MirrorPolicy serving (``mirror/policy.py``, ``matcher.mirror_shapes``) and
the dispatcher's admission of policy mirrors driven directly: the documented hash, where each
key is read, what a header edit may touch, heads of their own, one uniform draw at most."""

from pathlib import Path
from random import Random

import pytest
from prometheus_client import CollectorRegistry

import mirrorgate.mirror.policy as policy_module
from mirrorgate.dataplane.headers import encode_forward
from mirrorgate.dataplane.matcher import mirror_shapes
from mirrorgate.ir.invariants import check
from mirrorgate.ir.table import PPM, HeaderModifier, Mirror, MirrorCompare, MirrorHost, SampleBy
from mirrorgate.mirror import Dispatcher, MirrorConfig
from mirrorgate.mirror.head import MirrorHead, head_from_parts, request_of_parts
from mirrorgate.mirror.policy import Shape, editable, key_draw
from tests.support.backends import Header, Mode

from .conftest import MakeDispatcher, StartBackend, make_mirror, refused_endpoint, request_headers
from .policy_tables import load, with_policy


def shape(**fields: object) -> Shape:
    shapes = mirror_shapes((Mirror(name="m", backend="b", ppm=PPM, policy="mirrorpolicy/ns/p", **fields),))  # type: ignore[arg-type]
    assert shapes is not None
    s = shapes[0]
    assert s is not None
    return s


def test_the_draw_is_the_documented_hash() -> None:
    # the values docs/mirroring.md shows, so that users can predict membership
    assert key_draw(b"alice") == 174_729
    assert key_draw(b"bob") == 429_842
    assert key_draw(b"u-42") == 49_741


def test_a_header_key_is_the_first_line_of_that_name() -> None:
    s = shape(sample_by=SampleBy(source="Header", name="X-User"))  # the IR's name is lower-cased anyway
    assert s.value(b"/", [(b"x-user", b"a, b"), (b"x-user", b"c")]) == b"a, b"
    assert s.value(b"/", [(b"x-user", b"u 1 \t ")]) == b"u 1"  # trailing OWS, as the parser leaves it
    assert s.value(b"/", [(b"x-other", b"a")]) == b""


@pytest.mark.parametrize(
    ("lines", "value"),
    [
        ([b"sid=abc"], b"abc"),
        ([b"a=1; sid=abc; b=2"], b"abc"),
        ([b"a=1;sid=abc"], b"abc"),
        ([b"theme=dark", b"sid=abc"], b"abc"),  # a second Cookie line
        ([b"sid=first; sid=second"], b"first"),
        ([b'sid="quoted"'], b'"quoted"'),  # the cookie-value as sent (RFC 6265 section 4.1.1)
        ([b"SID=upper"], b""),  # names are case-sensitive
        ([b"xsid=abc; sidx=abc"], b""),
        ([b"sid"], b""),
        ([b"sid="], b""),
    ],
)
def test_a_cookie_key(lines: list[bytes], value: bytes) -> None:
    s = shape(sample_by=SampleBy(source="Cookie", name="sid"))
    assert s.value(b"/", [(b"cookie", line) for line in lines]) == value


@pytest.mark.parametrize(
    ("target", "value"),
    [
        (b"/p?uid=7", b"7"),
        (b"/p?a=1&uid=7&uid=8", b"7"),  # the first occurrence
        (b"/p?u%69d=%2F7%20", b"/7 "),  # name and value percent-decoded, as the matcher does
        (b"/p?uid=a+b", b"a+b"),  # ``+`` is not a space
        (b"/p?uid", b""),
        (b"/p?uidx=1", b""),
        (b"/p", b""),
        (b"/p?", b""),
    ],
)
def test_a_query_key(target: bytes, value: bytes) -> None:
    s = shape(sample_by=SampleBy(source="QueryParam", name="uid"))
    assert s.value(target, []) == value


def test_a_missing_key_draws_uniformly_or_skips() -> None:
    random = shape(sample_by=SampleBy(source="Header", name="x-user", missing="Random"))
    skip = shape(sample_by=SampleBy(source="Header", name="x-user", missing="Skip"))
    for headers in ([], [(b"x-user", b"")]):
        assert random.draw(b"/", headers) == -1  # the uniform draw
        assert skip.draw(b"/", headers) == PPM  # below no ppm
    assert random.draw(b"/", [(b"x-user", b"alice")]) == skip.draw(b"/", [(b"x-user", b"alice")]) == 174_729


def test_an_edit_never_touches_the_gateways_own_fields() -> None:
    mod = HeaderModifier(
        set=(("Host", "h"), ("Content-Length", "1"), ("X-A", "1"), ("Connection", "close")),
        add=(("Transfer-Encoding", "chunked"), ("Proxy-Authorization", "x"), ("X-B", "2")),
        remove=("TE", "Upgrade", "X-C", "Expect"),
    )
    assert editable(mod) == HeaderModifier(set=(("X-A", "1"),), add=(("X-B", "2"),), remove=("X-C",))
    assert editable(HeaderModifier(set=(("Host", "h"),))) is None
    assert editable(None) is None


def test_only_mirrors_with_settings_get_a_shape() -> None:
    plain = make_mirror()
    compare_only = Mirror(name="c", backend="b", ppm=PPM, policy="p", compare=MirrorCompare())
    host_only = Mirror(name="h", backend="b", ppm=PPM, policy="p", host=MirrorHost(type="Original"))
    assert mirror_shapes((plain, compare_only)) is None  # served exactly as before
    shapes = mirror_shapes((plain, host_only))
    assert shapes is not None
    assert shapes[0] is None
    assert shapes[1] is not None
    assert shapes[1].own_head
    limits = shape(timeout_ms=1500, max_body_lag=4096)
    assert (limits.own_head, limits.timeout, limits.lag_budget) == (False, 1.5, 4096)


def encoded(headers: list[Header], target: bytes = b"/a?b=1") -> list[bytes]:
    got = encode_forward(b"POST", target, headers, b"10.0.0.1", b"http")
    assert got is not None
    return got[0]


@pytest.mark.parametrize("suffix", [True, False])
def test_a_head_of_its_own_equals_the_shared_head_when_it_changes_nothing(suffix: bool) -> None:
    headers = [(b"host", b"a.com:8080"), (b"x-a", b"1: 2"), (b"content-length", b"3"), (b"x-a", b"3")]
    parts = encoded(headers)
    host_at = parts.index(b"a.com:8080")
    shared = head_from_parts(parts, host_at, True, 3, suffix, False)
    mode = MirrorHost(type="ShadowSuffix" if suffix else "Original")
    own = shape(host=mode).head(*request_of_parts(parts), True, not suffix)
    assert own.prefix + own.suffix == shared.prefix + shared.suffix
    assert (own.content_length, own.chunked) == (3, False)


def test_a_literal_host_replaces_the_host_or_is_added() -> None:
    literal = shape(host=MirrorHost(type="Literal", value="v2.internal:9000"))
    with_host = literal.head(*request_of_parts(encoded([(b"host", b"a.com")])), False, True)
    assert b"\r\nhost: v2.internal:9000\r\n" in with_host.whole
    assert b"a.com" not in with_host.whole
    without = literal.head(*request_of_parts(encoded([])), False, True)
    assert b"\r\nhost: v2.internal:9000\r\n" in without.whole


# --- admission, driven directly -------------------------------------------------------------------


def keyed(k: int, ppm: int, missing: str = "Random") -> Mirror:
    m = make_mirror(k=k, ppm=ppm)
    return Mirror(
        name=m.name,
        backend=f"{m.backend}-{k}",
        ppm=ppm,
        endpoints=m.endpoints,
        policy="mirrorpolicy/default/p",
        sample_by=SampleBy(source="Header", name="x-user", missing=missing),
    )


async def test_keyed_mirrors_with_their_key_make_no_uniform_draw() -> None:
    rng = Random(3)
    d = Dispatcher(MirrorConfig(), registry=CollectorRegistry(), rng=rng)
    mirrors = (keyed(0, 100_000), keyed(1, 500_000))
    shapes = mirror_shapes(mirrors)
    assert shapes is not None
    before = rng.getstate()
    for i in range(50):
        d.admit_shaped(mirrors, shapes, b"/", [(b"x-user", b"u%d" % i)])
    assert rng.getstate() == before
    d.admit_shaped(mirrors, shapes, b"/", [])  # missing, Random: one uniform draw for both
    expected = Random(3)
    expected.randrange(PPM)
    assert rng.getstate() == expected.getstate()
    await d.shutdown()


async def test_an_upgrade_counts_keyed_mirrors_by_their_key(make_dispatcher: MakeDispatcher) -> None:
    d = make_dispatcher()
    mirrors = (keyed(0, 200_000, "Skip"),)
    shapes = mirror_shapes(mirrors)
    # u-42 and alice draw 49,741 and 174,729 (in at 20%), bob 429,842 (out)
    for key in (b"u-42", b"alice", b"bob"):
        d.refuse(mirrors, "upgrade", b"/", [(b"x-user", key)], shapes)
    d.refuse(mirrors, "upgrade", b"/", [], shapes)  # missing with Skip: sampled out
    st = d.stats().mirrors[mirrors[0].name]
    assert st.dropped == {"upgrade": 2}
    assert st.sampled_out == 2


async def test_a_drop_at_admission_builds_no_head_of_its_own(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[bytes] = []
    real = Shape.head

    def counting(self: Shape, method: bytes, target: bytes, *rest: object) -> MirrorHead:
        built.append(target)
        return real(self, method, target, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(policy_module.Shape, "head", counting)
    b = await start_backend(Mode.BLACKHOLE)
    d = make_dispatcher(max_concurrent_per_backend=1, max_queue_per_backend=1, timeout=60.0)
    m = make_mirror(b.endpoint)
    mirror = Mirror(name=m.name, backend=m.backend, ppm=PPM, endpoints=m.endpoints, host=MirrorHost(type="Original"))
    shapes = mirror_shapes((mirror,))
    for i in range(10):
        d.submit((mirror,), b"GET", b"/%d" % i, request_headers(), False, shapes)
    assert built == [b"/0", b"/1"]  # the in-flight one and the queued one; none for the 8 drops
    assert d.stats().dropped == {"over_capacity": 8}


# --- the IR's invariants ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"sample_by": SampleBy(source="Body", name="x")}, "sampleBy source 'Body' is not one of Header, Cookie"),
        ({"sample_by": SampleBy(source="Header", name="x", missing="Drop")}, "sampleBy missing 'Drop' is not one"),
        ({"sample_by": SampleBy(source="Cookie", name="")}, "sampleBy has no name"),
        ({"host": MirrorHost(type="Rewrite")}, "host type 'Rewrite' is not one of Original, ShadowSuffix, Literal"),
        ({"host": MirrorHost(type="Literal")}, "host value must be given exactly when its type is Literal"),
        ({"host": MirrorHost(type="Original", value="a.com")}, "host value must be given exactly when its type is"),
        ({"host": MirrorHost(type="Literal", value="a.com\r\nx: 1")}, "host value 'a.com\\r\\nx: 1' is not a hostname"),
        ({"timeout_ms": 0}, "timeout 0 ms is not positive"),
        ({"max_body_lag": -1}, "maxBodyLag -1 is not positive"),
    ],
)
def test_a_table_with_unusable_policy_settings_breaks_an_invariant(
    tmp_path: Path, fields: dict[str, object], problem: str
) -> None:
    table = load(tmp_path, RULES, {"primary": 1, "shadow": 2})
    assert check(table) == []
    assert check(with_policy(table, "shadow", sample_by=SampleBy(source="QueryParam", name="u"))) == []
    (line,) = check(with_policy(table, "shadow", **fields))
    assert line.startswith("httproute/infra/mirrored/rule/0/mirror/0: " + problem)


RULES = """  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 8080}}}]
    backendRefs: [{name: primary, port: 8080}]"""


async def test_a_roomy_policy_budget_is_still_bounded_by_the_total(make_dispatcher: MakeDispatcher) -> None:
    """``maxBodyLag`` above ``max_buffered_bytes``: the total still cuts the mirror off."""
    d = make_dispatcher(body_lag_budget=64 << 10, max_buffered_bytes=1 << 20)
    m = make_mirror(refused_endpoint())
    mirror = Mirror(name=m.name, backend=m.backend, ppm=PPM, endpoints=m.endpoints, max_body_lag=64 << 20)
    tee = d.submit((mirror,), b"POST", b"/", request_headers(), True, mirror_shapes((mirror,)))
    assert tee is not None
    for _ in range(8):  # 512 KiB: above the gateway's budget, below the total: kept
        tee.feed(b"x" * (64 << 10))
    assert d.stats().dropped == {}
    assert 512 << 10 <= d.stats().buffered_bytes < 1 << 20  # (chunked: the framing counts too)
    for _ in range(9):  # past 1 MiB in all
        tee.feed(b"x" * (64 << 10))
    assert d.stats().dropped == {"body_lag": 1}
    assert d.stats().buffered_bytes == 0
