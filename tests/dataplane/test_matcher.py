"""Unit tests of the matcher's parts: host handling, weighted and endpoint choice, local decisions."""

from collections import Counter
from random import Random

import pytest
from hypothesis import given, settings, strategies as st

from mirrorgate.dataplane.matcher import (
    Decision,
    HostIndex,
    Plan,
    RoundRobin,
    RuleSet,
    _Rule,
    compile,
    normalize_host,
    parse_query,
)
from mirrorgate.ir.table import (
    Action,
    Backend,
    HTTPListener,
    Match,
    PathType,
    Route,
    RoutingTable,
    Server,
    UpstreamAddress,
    VirtualHost,
)

EP = (
    UpstreamAddress(address="10.0.0.1", port=1),
    UpstreamAddress(address="10.0.0.2", port=2),
    UpstreamAddress(address="10.0.0.3", port=3),
)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (b"Foo.COM", b"foo.com"),
        (b"foo.com:8080", b"foo.com"),
        (b"[::1]:80", b"[::1]"),
        (b"[::1]", b"[::1]"),
        (b"", b""),
        (b"10.0.0.1:80", b"10.0.0.1"),
    ],
)
def test_normalize_host(raw: bytes, want: bytes) -> None:
    assert normalize_host(raw) == want


def test_host_index_order() -> None:
    idx = HostIndex([("a.example.com", 1), ("*.foo.example.com", 2), ("*.example.com", 3), ("", 4)])
    assert idx.lookup(b"a.example.com") == 1
    assert idx.lookup(b"x.foo.example.com") == 2
    assert idx.lookup(b"x.y.foo.example.com") == 2
    assert idx.lookup(b"foo.example.com") == 3
    assert idx.lookup(b"example.com") == 4
    assert HostIndex([("*.example.com", 1)]).lookup(b"example.com") is None
    assert HostIndex([("*.example.com", 1)]).lookup(b".example.com") is None


def test_parse_query_first_occurrence_and_decoding() -> None:
    assert parse_query(b"a=1&a=2&b&c=%41+x&&") == {b"a": b"1", b"b": b"", b"c": b"A+x"}


def _plan(*weights: int) -> Plan:
    backends = tuple(Backend(name=f"b{i}", weight=w, endpoints=EP[:1]) for i, w in enumerate(weights))
    return Plan(Action(rule="r", backends=backends), {})


def test_weights_70_30_0() -> None:
    plan = _plan(70, 30, 0)
    rng = Random(7)
    counts = Counter(t.name for t in (plan.pick(rng) for _ in range(10_000)) if t is not None)
    assert counts["b2"] == 0
    assert 0.65 < counts["b0"] / 10_000 < 0.75
    assert 0.25 < counts["b1"] / 10_000 < 0.35


def test_weight_zero_first_is_never_chosen() -> None:
    plan = _plan(0, 1)
    rng = Random(1)
    assert {t.name for t in (plan.pick(rng) for _ in range(1000)) if t is not None} == {"b1"}


def test_single_backend_takes_no_draw_and_all_zero_gives_none() -> None:
    class NoRandom(Random):
        def random(self) -> float:
            raise AssertionError("no draw expected")

    single = _plan(5).pick(NoRandom())
    assert single is not None
    assert single.name == "b0"
    assert _plan(0, 0).pick(Random()) is None


def test_round_robin_and_empty() -> None:
    rr = RoundRobin(EP)
    assert [rr.choose() for _ in range(4)] == [EP[0], EP[1], EP[2], EP[0]]
    assert RoundRobin(()).choose() is None


def _table(listener: HTTPListener) -> RoutingTable:
    return RoutingTable(servers=(Server(address="0.0.0.0", port=80, listeners=(listener,)),))


def test_balancer_shared_by_rules_naming_the_same_backend() -> None:
    b = Backend(name="svc", weight=1, endpoints=EP[:2])
    routes = tuple(
        Route(
            name=f"r{i}",
            match=Match(path_type=PathType.EXACT, path=f"/{i}"),
            action=Action(rule=f"r{i}", backends=(b,)),
        )
        for i in range(2)
    )
    m = compile(_table(HTTPListener(name="l", port=80, virtual_hosts=(VirtualHost(hostname="", routes=routes),))))
    d0 = m.select(("0.0.0.0", 80), b"h", b"GET", b"/0", [])
    d1 = m.select(("0.0.0.0", 80), b"h", b"GET", b"/1", [])
    assert d0.plan is not None
    assert d1.plan is not None
    assert d0.plan.targets[0].balancer is d1.plan.targets[0].balancer


def test_default_action_and_local_statuses() -> None:
    svc = Backend(name="service/ns/s:80", weight=1, endpoints=EP[:1])
    exact = Match(path_type=PathType.EXACT, path="/nb")
    no_backends = Route(name="nb", match=exact, action=Action(rule="nb", status=500))
    listener = HTTPListener(
        name="service/ns/s:80",
        port=80,
        default_action=Action(rule="service/ns/s:80/default", backends=(svc,)),
        virtual_hosts=(VirtualHost(hostname="", routes=(no_backends,)),),
    )
    m = compile(_table(listener))
    assert m.select(("0.0.0.0", 80), b"x", b"GET", b"/nb", []).status == 500
    d = m.select(("0.0.0.0", 80), b"x", b"GET", b"/other", [])
    assert d.status == 0
    assert d.route == "service/ns/s:80/default"
    assert m.select(("0.0.0.0", 81), b"x", b"GET", b"/other", []).status == 404
    empty = compile(_table(HTTPListener(name="l", port=80)))
    nf = empty.select(("0.0.0.0", 80), b"x", b"GET", b"/", [])
    assert nf.status == 404
    assert nf.listener is not None


SEGMENTS = st.sampled_from(["a", "b", "ab", "v2", "x"])
PATHS = st.lists(SEGMENTS, max_size=4).map(lambda segs: "/" + "/".join(segs))
RULES = st.lists(
    st.tuples(st.sampled_from([PathType.EXACT, PathType.PREFIX, PathType.REGEX]), PATHS), min_size=0, max_size=30
)


def _rules(specs: list[tuple[PathType, str]]) -> tuple[_Rule, ...]:
    out = []
    for i, (kind, path) in enumerate(specs):
        value = path.rstrip("/") if kind == PathType.PREFIX else (path + ".*" if kind == PathType.REGEX else path)
        out.append(_Rule(Match(path_type=kind, path=value), Decision(f"r{i}", None, None, 0)))
    return tuple(out)


@settings(max_examples=300, deadline=None)
@given(RULES, st.lists(st.one_of(PATHS, PATHS.map(lambda p: p + "/")), min_size=1, max_size=10))
def test_path_index_equals_linear_scan(specs: list[tuple[PathType, str]], paths: list[str]) -> None:
    rules = _rules(specs)
    linear = list(RuleSet(rules, index_threshold=1_000_000).candidates(b"/"))
    forced = RuleSet(rules, index_threshold=-1)
    for p in paths:
        raw = p.encode()
        want = [r.decision.route for r in linear if r.path_matches(raw)]
        got = [r.decision.route for r in forced.candidates(raw) if r.path_matches(raw)]
        assert got == want, p


def test_large_virtual_hosts_use_the_index() -> None:
    rules = _rules([(PathType.PREFIX, f"/p{i}") for i in range(100)] + [(PathType.EXACT, "/p7/x")])
    rs = RuleSet(rules)
    assert rs.index
    assert [r.decision.route for r in rs.candidates(b"/p7/x")] == ["r7", "r100"]
    assert list(rs.candidates(b"/nothing")) == []
