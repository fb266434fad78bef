"""Properties of translate(): deterministic, independent of input order, never raises on
admitted input, and its routing table upholds the IR invariants."""

import random
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings, strategies as st

from mirrorgate.ir import invariants
from mirrorgate.model.meta import Resource
from mirrorgate.model.snapshot import KINDS, Snapshot
from mirrorgate.providers.admission import admit
from mirrorgate.translate import translate

NAMES = st.sampled_from(["a", "b", "c"])
NAMESPACES = st.sampled_from(["default", "other"])
HOSTS = st.sampled_from(["a.com", "*.a.com", "b.a.com", "x.io"])
GW = "gateway.networking.k8s.io/v1"


def meta(name: str, ns: str, ts: str = "") -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "namespace": ns}
    if ts:
        m["creationTimestamp"] = ts
    return m


@st.composite
def gateways(draw: st.DrawFn) -> dict[str, Any]:
    listeners = []
    for i in range(draw(st.integers(1, 3))):
        ln: dict[str, Any] = {
            "name": f"l{i}",
            "port": draw(st.sampled_from([80, 8080])),
            "protocol": "HTTP",
            "allowedRoutes": {"namespaces": {"from": draw(st.sampled_from(["Same", "All"]))}},
        }
        if draw(st.booleans()):
            ln["hostname"] = draw(HOSTS)
        listeners.append(ln)
    return {
        "apiVersion": GW,
        "kind": "Gateway",
        "metadata": meta(draw(NAMES), draw(NAMESPACES)),
        "spec": {"gatewayClassName": "mg", "listeners": listeners},
    }


@st.composite
def backend_refs(draw: st.DrawFn) -> dict[str, Any]:
    ref: dict[str, Any] = {
        "name": draw(NAMES),
        "port": draw(st.sampled_from([80, 81])),
        "weight": draw(st.integers(0, 3)),
    }
    if draw(st.booleans()):
        ref["namespace"] = draw(NAMESPACES)
    return ref


@st.composite
def filters(draw: st.DrawFn) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 2))):
        mirror: dict[str, Any] = {"backendRef": {"name": draw(NAMES), "port": 80}}
        if draw(st.booleans()):
            mirror["percent"] = draw(st.integers(0, 100))
        out.append({"type": "RequestMirror", "requestMirror": mirror})
    if draw(st.booleans()):
        out.append({"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x", "value": "1"}]}})
    return out


@st.composite
def routes(draw: st.DrawFn) -> dict[str, Any]:
    rules = []
    for _ in range(draw(st.integers(1, 3))):
        match: dict[str, Any] = {
            "path": {
                "type": draw(st.sampled_from(["Exact", "PathPrefix"])),
                "value": draw(st.sampled_from(["/", "/a", "/a/b"])),
            }
        }
        if draw(st.booleans()):
            match["headers"] = [{"name": "v", "value": draw(st.sampled_from(["1", "2"]))}]
        rules.append(
            {"matches": [match], "filters": draw(filters()), "backendRefs": draw(st.lists(backend_refs(), max_size=2))}
        )
    parents = [{"name": draw(NAMES), "namespace": draw(NAMESPACES)}]
    spec: dict[str, Any] = {"parentRefs": parents, "rules": rules}
    if draw(st.booleans()):
        spec["hostnames"] = draw(st.lists(HOSTS, max_size=2, unique=True))
    ts = draw(st.sampled_from(["", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"]))
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": meta(draw(NAMES), draw(NAMESPACES), ts), "spec": spec}


@st.composite
def services(draw: st.DrawFn) -> list[dict[str, Any]]:
    name, ns = draw(NAMES), draw(NAMESPACES)
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, ns),
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    eps = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {**meta(f"{name}-x", ns), "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": draw(st.integers(9000, 9003))}],
        "endpoints": [{"addresses": ["127.0.0.1"]}],
    }
    return [svc, eps] if draw(st.booleans()) else [svc]


@st.composite
def object_sets(draw: st.DrawFn) -> list[Resource]:
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": GW,
            "kind": "GatewayClass",
            "metadata": {"name": "mg"},
            "spec": {"controllerName": "mirrorgate.dev/gateway-controller"},
        }
    ]
    docs += draw(st.lists(gateways(), max_size=2))
    docs += draw(st.lists(routes(), max_size=3))
    for group in draw(st.lists(services(), max_size=3)):
        docs += group
    grants = {
        "apiVersion": GW,
        "kind": "ReferenceGrant",
        "metadata": meta("g", "other"),
        "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "default"}],
            "to": [{"group": "", "kind": "Service"}],
        },
    }
    if draw(st.booleans()):
        docs.append(grants)
    objs: dict[object, Resource] = {}
    for d in docs:
        group = d["apiVersion"].rpartition("/")[0]
        obj = msgspec.convert(d, KINDS[(group, d["kind"])])
        if not admit(obj):
            objs.setdefault(obj.key, obj)  # one object per key, as the loader guarantees
    return list(objs.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(object_sets(), st.randoms(use_true_random=False))
def test_translate_is_deterministic_and_order_independent(objs: list[Resource], rnd: random.Random) -> None:
    first = translate(Snapshot.of(objs))
    shuffled = list(objs)
    rnd.shuffle(shuffled)
    second = translate(Snapshot.of(shuffled))
    assert msgspec.json.encode(first.table) == msgspec.json.encode(second.table)
    assert msgspec.json.encode(first.statuses) == msgspec.json.encode(second.statuses)
    assert invariants.check(first.table) == []
