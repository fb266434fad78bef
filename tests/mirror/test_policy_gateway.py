"""MirrorPolicy settings through the real gateway: a translated table whose mirrors carry the IR
policy fields, the in-process data plane, a real echo primary and real mirror backends.

Each behaviour is checked on the two ways the exchange reaches the mirrors: the plain path (a
rule whose only filter is the mirror: the head encoded once, ``admit_shaped``/``start_shaped``)
and the filtered path (a RequestHeaderModifier on the rule: ``submit``). Waits are bounded and
never asserted on as timings.
"""

import hashlib
import io
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from random import Random
from typing import Any

import pytest

from mirrorgate.echo import EchoConfig, start_echo
from mirrorgate.ir.table import HeaderModifier, MirrorCompare, MirrorHost, RoutingTable, SampleBy
from mirrorgate.mirror import MirrorConfig, MirrorStats
from mirrorgate.serve.gwsettings import Settings
from mirrorgate.serve.plane import DataPlane
from tests.support.backends import Backend, Mode
from tests.support.client import Conn, encode_request, request, roundtrip
from tests.support.waiting import until

from .conftest import StartBackend
from .policy_tables import load, mirrors_of, with_policy

PATHS = ["/plain", "/filtered"]  # the exchange's plain path, and its filtered path


def rules(*services: str) -> str:
    """Two rules mirroring to every one of ``services``: ``/plain`` (mirrors only) and
    ``/filtered`` (a RequestHeaderModifier too)."""
    mirrors = "".join(
        f"\n    - {{type: RequestMirror, requestMirror: {{backendRef: {{name: {s}, port: 8080}}}}}}" for s in services
    )
    return f"""  - matches: [{{path: {{type: PathPrefix, value: /plain}}}}]
    filters:{mirrors}
    backendRefs: [{{name: primary, port: 8080}}]
  - matches: [{{path: {{type: PathPrefix, value: /filtered}}}}]
    filters:
    - {{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: X-Rule, value: r}}]}}}}{mirrors}
    backendRefs: [{{name: primary, port: 8080}}]"""


def expected_in(value: bytes, ppm: int) -> bool:
    """Membership as docs/mirroring.md documents it, written here independently."""
    return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big") % 1_000_000 < ppm


def within_5_sigma(hits: int, n: int, p: float) -> bool:
    return abs(hits - n * p) <= 5 * math.sqrt(n * p * (1 - p))


class Env:
    """A started gateway in front of an echo primary and named mirror backends."""

    def __init__(self, gateway: DataPlane, backends: dict[str, Backend]) -> None:
        self.gateway = gateway
        self.backends = backends
        self.port = gateway.port(80)

    def stats(self, service: str, path: str) -> MirrorStats:
        """The counters of the mirror to ``service`` on the rule serving ``path``."""
        rule = 0 if path == "/plain" else 1
        k = list(self.backends).index(service)
        return self.gateway.mirror.stats().mirrors[f"httproute/infra/mirrored/rule/{rule}/mirror/{k}"]

    async def settled(self, service: str, path: str, requests: int) -> MirrorStats:
        """The counters once each of ``requests`` requests is accounted for (sampled out, dropped
        or completed) and nothing is in flight."""

        def done() -> bool:
            st = self.stats(service, path)
            return st.sampled_out + sum(st.dropped.values()) + sum(st.completed.values()) >= requests

        await until(done, f"{requests} outcomes of the mirror to {service}")
        await until(lambda: not self.gateway.mirror.tasks, "no mirror in flight")
        return self.stats(service, path)


Policies = dict[str, dict[str, Any]]
StartEnv = Callable[..., Awaitable[Env]]


@pytest.fixture
async def start_env(tmp_path: Path, start_backend: StartBackend) -> AsyncIterator[StartEnv]:
    """``await start_env({service: (Mode, delay) | None}, {service: Mirror fields}, **MirrorConfig)``."""
    primary = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="primary-7d9f8c-x2x4q"), log=io.StringIO())
    started: list[DataPlane] = []

    async def start(services: dict[str, tuple[Mode, float] | None], policies: Policies, **config: Any) -> Env:
        backends = {}
        for name, spec in services.items():
            mode, delay = spec or (Mode.OK, 0.0)
            backends[name] = await start_backend(mode, delay=delay)
        ports = {"primary": primary.port} | {name: b.port for name, b in backends.items()}
        table: RoutingTable = load(tmp_path, rules(*services), ports)
        for service, fields in policies.items():
            table = with_policy(table, service, **fields)
        gateway = DataPlane(table, port_overrides={80: 0}, rng=Random(1), mirror_config=MirrorConfig(**config))
        await gateway.start()
        started.append(gateway)
        return Env(gateway, backends)

    yield start
    for gateway in started:
        await gateway.shutdown(1.0)
    await primary.close()


# --- sampleBy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_a_header_key_is_always_in_or_always_out(start_env: StartEnv, path: str) -> None:
    ppm = 300_000
    sample = SampleBy(source="Header", name="x-user-id")
    env = await start_env({"keyed": None}, {"keyed": {"ppm": ppm, "sample_by": sample}})
    keys = [f"user-{i}" for i in range(150)]
    rounds = 3
    async with await Conn.open(env.port) as conn:
        for _ in range(rounds):
            for key in keys:
                await conn.send(encode_request("GET", f"{path}/{key}", "a.com", [("X-User-Id", key)]))
                assert (await conn.read_response()).status == 200
    st = await env.settled("keyed", path, rounds * len(keys))
    seen = Counter(s.header("x-user-id") for s in env.backends["keyed"].seen)
    assert set(seen.values()) <= {rounds}, "a key was mirrored on some of its requests only"
    assert set(seen) == {k.encode() for k in keys if expected_in(k.encode(), ppm)}
    assert 0 < len(seen) < len(keys)
    assert st.sampled_out == rounds * (len(keys) - len(seen))
    assert st.completed == {"2xx": rounds * len(seen)}


@pytest.mark.parametrize("path", PATHS)
async def test_cookie_and_query_keys_are_read_as_documented(start_env: StartEnv, path: str) -> None:
    """A cookie among others and in a second Cookie line; a query param percent-decoded, first
    occurrence only: membership follows the decoded value's hash."""
    ppm = 500_000
    env = await start_env(
        {"by-cookie": None, "by-query": None},
        {
            "by-cookie": {"ppm": ppm, "sample_by": SampleBy(source="Cookie", name="sid")},
            "by-query": {"ppm": ppm, "sample_by": SampleBy(source="QueryParam", name="u id")},
        },
    )
    ids = [f"a/b {i}" for i in range(60)]
    async with await Conn.open(env.port) as conn:
        for i, ident in enumerate(ids):
            quoted = ident.replace("/", "%2F").replace(" ", "%20")
            cookies = (
                [("Cookie", "theme=dark"), ("Cookie", f"x=1; sid={ident}; y=2")]
                if i % 2
                else [("Cookie", f"sid={ident}; sid=other")]
            )
            target = f"{path}/{i}?z=1&u%20id={quoted}&u+id=no&u%20id=second"
            await conn.send(encode_request("GET", target, "a.com", cookies))
            assert (await conn.read_response()).status == 200
    await env.settled("by-cookie", path, len(ids))
    await env.settled("by-query", path, len(ids))
    expected = {f"{path}/{i}" for i, ident in enumerate(ids) if expected_in(ident.encode(), ppm)}
    for service in ("by-cookie", "by-query"):
        got = {s.target.partition("?")[0] for s in env.backends[service].seen}
        assert got == expected, service
    assert 0 < len(expected) < len(ids)


@pytest.mark.parametrize("path", PATHS)
async def test_a_missing_key_takes_the_uniform_draw_or_is_skipped(start_env: StartEnv, path: str) -> None:
    ppm = 500_000
    env = await start_env(
        {"skip": None, "random": None},
        {
            "skip": {"ppm": ppm, "sample_by": SampleBy(source="Header", name="x-user-id", missing="Skip")},
            "random": {"ppm": ppm, "sample_by": SampleBy(source="Header", name="x-user-id", missing="Random")},
        },
    )
    n = 300
    async with await Conn.open(env.port) as conn:
        for i in range(n):
            headers = [("X-User-Id", "")] if i % 3 == 0 else []  # an empty key is missing too
            await conn.send(encode_request("GET", f"{path}/{i}", "a.com", headers))
            assert (await conn.read_response()).status == 200
    skip = await env.settled("skip", path, n)
    random = await env.settled("random", path, n)
    assert skip.sampled_out == n  # counted, not a drop
    assert skip.dropped == {}
    assert env.backends["skip"].seen == []
    hits = random.completed.get("2xx", 0)
    assert within_5_sigma(hits, n, ppm / 1_000_000)
    assert hits == len(env.backends["random"].seen)


async def test_keyed_mirrors_nest_whatever_their_order(start_env: StartEnv) -> None:
    """Two mirrors with the same key at 10% and 20%: the 10% sample is a subset of the 20% one."""
    sample = SampleBy(source="Header", name="x-user-id")
    env = await start_env(
        {"twenty": None, "ten": None},
        {"twenty": {"ppm": 200_000, "sample_by": sample}, "ten": {"ppm": 100_000, "sample_by": sample}},
    )
    n = 400
    async with await Conn.open(env.port) as conn:
        for i in range(n):
            await conn.send(encode_request("GET", f"/plain/{i}", "a.com", [("X-User-Id", f"k{i}")]))
            assert (await conn.read_response()).status == 200
    await env.settled("twenty", "/plain", n)
    await env.settled("ten", "/plain", n)
    twenty = {s.target for s in env.backends["twenty"].seen}
    ten = {s.target for s in env.backends["ten"].seen}
    assert ten < twenty
    assert ten


# --- host -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("suffix", [True, False], ids=["suffix-on", "suffix-off"])
async def test_each_host_mode_overrides_the_gateway_setting(start_env: StartEnv, path: str, suffix: bool) -> None:
    env = await start_env(
        {"default": None, "original": None, "shadow": None, "literal": None},
        {
            "original": {"host": MirrorHost(type="Original")},
            "shadow": {"host": MirrorHost(type="ShadowSuffix")},
            "literal": {"host": MirrorHost(type="Literal", value="checkout-v2.internal:9000")},
        },
        shadow_host_suffix=suffix,
    )
    r = await request(env.port, "POST", f"{path}/x", host="shop.example:8080", body=b"payload")
    assert r.status == 200
    assert r.json()["host"] == "shop.example:8080"  # the primary's Host is never touched
    http10 = encode_request("GET", f"{path}/old", None, version="1.0")  # no Host: the endpoint's
    assert (await roundtrip(env.port, http10)).status == 200
    for service in env.backends:
        await env.settled(service, path, 2)
    b = env.backends

    def hosts(service: str) -> list[bytes | None]:
        return [s.header("host") for s in sorted(b[service].seen, key=lambda s: s.target)]

    def endpoint(service: str, shadow: bool) -> bytes:
        return f"127.0.0.1{'-shadow' if shadow else ''}:{b[service].port}".encode()

    # sorted by target: /old then /x
    assert hosts("default") == [
        endpoint("default", suffix),
        b"shop.example-shadow:8080" if suffix else b"shop.example:8080",
    ]
    assert hosts("original") == [endpoint("original", False), b"shop.example:8080"]
    assert hosts("shadow") == [endpoint("shadow", True), b"shop.example-shadow:8080"]
    assert hosts("literal") == [b"checkout-v2.internal:9000", b"checkout-v2.internal:9000"]
    for service in b:  # the head of its own keeps the body and its framing
        posted = next(s for s in b[service].seen if s.method == "POST")
        assert posted.body == b"payload"
        assert posted.values("content-length") == [b"7"]


# --- requestHeaderModifier (the mirrored copy only) ------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_mirror_only_header_edits_never_reach_the_primary(start_env: StartEnv, path: str) -> None:
    edits = HeaderModifier(
        set=(("X-Shadow", "1"), ("Host", "evil.example"), ("Content-Length", "0")),
        add=(("X-Append", "two"),),
        remove=("X-Drop", "Transfer-Encoding"),
    )
    env = await start_env({"edited": None, "plain": None}, {"edited": {"request_headers": edits}})
    body = b"x" * 5000
    headers = [("X-Keep", "a"), ("X-Drop", "secret"), ("X-Append", "one")]
    r = await request(env.port, "POST", f"{path}/h", host="a.com", headers=headers, body=body)
    assert r.status == 200
    seen_by_primary = r.json()["headers"]
    assert "X-Shadow" not in seen_by_primary
    assert seen_by_primary["X-Drop"] == ["secret"]
    assert seen_by_primary["X-Append"] == ["one"]
    assert r.json()["host"] == "a.com"
    await env.settled("edited", path, 1)
    await env.settled("plain", path, 1)
    (edited,) = env.backends["edited"].seen
    assert edited.values("x-shadow") == [b"1"]
    assert edited.values("x-drop") == []
    assert edited.values("x-append") == [b"one,two"]
    assert edited.values("x-keep") == [b"a"]
    assert edited.values("host") == [b"a.com-shadow"]  # Host is the ``host`` setting's, never an edit's
    assert edited.body == body  # framing is the gateway's: the edits of content-length are ignored
    assert edited.values("content-length") == [b"5000"]
    assert edited.values("x-rule") == ([b"r"] if path == "/filtered" else [])  # after the rule's edits
    (plain,) = env.backends["plain"].seen  # a sibling mirror without the policy gets the shared head
    assert plain.values("x-shadow") == []
    assert plain.values("x-drop") == [b"secret"]
    assert plain.values("x-request-id") == edited.values("x-request-id") != []


# --- timeout and maxBodyLag ---------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
async def test_a_per_mirror_timeout_drops_a_slow_mirror_the_global_one_lets_complete(
    start_env: StartEnv, path: str
) -> None:
    env = await start_env(
        {"tight": (Mode.OK, 1.0), "global": (Mode.OK, 1.0)},
        {"tight": {"timeout_ms": 100}},
        timeout=10.0,
    )
    r = await request(env.port, "GET", f"{path}/slow", host="a.com")
    assert r.status == 200
    tight = await env.settled("tight", path, 1)
    glob = await env.settled("global", path, 1)
    assert tight.dropped == {"timeout": 1}
    assert tight.completed == {}
    assert glob.completed == {"2xx": 1}
    assert glob.dropped == {}


@pytest.mark.parametrize("path", PATHS)
async def test_a_per_mirror_timeout_may_be_longer_than_the_global_one(start_env: StartEnv, path: str) -> None:
    env = await start_env(
        {"patient": (Mode.OK, 0.6), "global": (Mode.OK, 0.6)},
        {"patient": {"timeout_ms": 10_000}},
        timeout=0.1,
    )
    r = await request(
        env.port, "POST", f"{path}/slow", host="a.com", body=b"with a body: the deadline starts at its end"
    )
    assert r.status == 200
    patient = await env.settled("patient", path, 1)
    glob = await env.settled("global", path, 1)
    assert patient.completed == {"2xx": 1}
    assert glob.dropped == {"timeout": 1}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("roomy", [True, False], ids=["policy-roomier", "policy-tighter"])
async def test_a_per_mirror_body_lag_budget_replaces_the_global_one(
    start_env: StartEnv, path: str, roomy: bool
) -> None:
    """Two mirrors to backends that stop reading: the one whose budget is below the upload is
    cut for body_lag; the other keeps the whole body buffered and ends by its timeout."""
    small, large = 64 << 10, 48 << 20
    env = await start_env(
        {"policy": (Mode.SLOW_READER, 0.0), "global": (Mode.SLOW_READER, 0.0)},
        {"policy": {"max_body_lag": large if roomy else small}},
        body_lag_budget=small if roomy else large,
        timeout=0.2,
    )
    r = await request(env.port, "POST", f"{path}/upload", host="a.com", body=b"u" * (16 << 20))
    assert r.status == 200
    policy = await env.settled("policy", path, 1)
    glob = await env.settled("global", path, 1)
    cut, kept = (glob, policy) if roomy else (policy, glob)
    assert cut.dropped == {"body_lag": 1}
    assert kept.dropped == {"timeout": 1}


async def test_a_backend_level_policy_mirror(tmp_path: Path, start_backend: StartBackend) -> None:
    """A MirrorPolicy on a backendRef's filters: keyed with Skip, a Literal Host and an edit."""
    primary = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="primary-7d9f8c-x2x4q"), log=io.StringIO())
    shadow = await start_backend()
    backend_rules = """  - backendRefs:
    - name: primary
      port: 8080
      filters: [{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 8080}}}]"""
    table = load(tmp_path, backend_rules, {"primary": primary.port, "shadow": shadow.port})
    table = with_policy(
        table,
        "shadow",
        sample_by=SampleBy(source="Cookie", name="sid", missing="Skip"),
        host=MirrorHost(type="Literal", value="v2.internal"),
        request_headers=HeaderModifier(set=(("X-Shadow", "1"),)),
    )
    (mirror,) = mirrors_of(table)
    gateway = DataPlane(table, port_overrides={80: 0}, rng=Random(1))
    await gateway.start()
    try:
        port = gateway.port(80)
        with_key = await request(port, "GET", "/k", host="a.com", headers=[("Cookie", "sid=u-42")])
        without = await request(port, "GET", "/none", host="a.com")
        assert with_key.status == without.status == 200
        assert "X-Shadow" not in with_key.json()["headers"]
        await until(lambda: gateway.mirror.stats().mirrors[mirror.name].completed == {"2xx": 1})
        (seen,) = shadow.seen
        assert (seen.target, seen.values("host"), seen.values("x-shadow")) == ("/k", [b"v2.internal"], [b"1"])
        assert gateway.mirror.stats().mirrors[mirror.name].sampled_out == 1
    finally:
        await gateway.shutdown(1.0)
        await primary.close()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fresh", [False, True], ids=["reconfigure", "reset"])
@pytest.mark.parametrize("compare", [False, True], ids=["plain", "compared"])
async def test_a_gateway_wide_timeout_change_leaves_a_policy_timeout_alone(
    tmp_path: Path, start_backend: StartBackend, path: str, fresh: bool, compare: bool
) -> None:
    """GatewayConfig settings applied at a reload (``reconfigure``) or before anything was served
    (``reset``): the gateway's new mirror timeout (0.1 s) cuts the mirror without a policy, the
    policy's own (10 s) lets its mirror complete, compared or not."""
    primary = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="primary-7d9f8c-x2x4q"), log=io.StringIO())
    patient, glob = await start_backend(Mode.OK, delay=0.6), await start_backend(Mode.OK, delay=0.6)
    ports = {"primary": primary.port, "patient": patient.port, "global": glob.port}
    table = load(tmp_path, rules("patient", "global"), ports)
    fields: dict[str, Any] = {"timeout_ms": 10_000}
    if compare:
        fields["compare"] = MirrorCompare()
    table = with_policy(table, "patient", **fields)
    gateway = DataPlane(table, port_overrides={80: 0}, rng=Random(1), mirror_config=MirrorConfig(timeout=10.0))
    settings = Settings(mirror=MirrorConfig(timeout=0.1))
    if fresh:
        gateway.reconfigure(settings, fresh=True)
    await gateway.start()
    if not fresh:
        gateway.reconfigure(settings)
    env = Env(gateway, {"patient": patient, "global": glob})
    try:
        # without a body (the deadline is set at admission) and with one (set when it has ended)
        assert (await request(env.port, "GET", f"{path}/slow", host="a.com")).status == 200
        assert (await request(env.port, "POST", f"{path}/slow", host="a.com", body=b"b" * 1000)).status == 200
        assert (await env.settled("patient", path, 2)).completed == {"2xx": 2}
        assert (await env.settled("global", path, 2)).dropped == {"timeout": 2}
        board = gateway.mirror.board
        if compare:  # the echo primary and the mirror answer differently: compared, a mismatch
            name = f"httproute/infra/mirrored/rule/{PATHS.index(path)}/mirror/0"
            await until(lambda: name in board.stats and board.stats[name].counts.compared == 2, "the comparisons")
            assert board.stats[name].counts.mirror_failed == {}
        else:
            assert board.stats == {}
    finally:
        await gateway.shutdown(1.0)
        await primary.close()
