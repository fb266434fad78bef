"""The leader's status writer against the fake API server over real HTTP.

Each test names the rule it guards; outcomes are awaited with generous deadlines, never timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from mirrorgate.kube.client import GATEWAY_CLASSES, GATEWAYS, HTTP_ROUTES, KubeClient
from mirrorgate.kube.features import supported_features
from mirrorgate.kube.source import BACKEND_TLS_POLICIES, MIRROR_POLICIES
from mirrorgate.kube.status import Rejected, StatusSync
from tests.kube.fakeapi import FakeApiServer
from tests.kube.helpers import eventually

Obj = dict[str, Any]
OURS = "mirrorgate.dev/gateway-controller"
OTHER = "example.net/other-controller"
GW_API = "gateway.networking.k8s.io"
RESOURCES = {
    "GatewayClass": GATEWAY_CLASSES,
    "Gateway": GATEWAYS,
    "HTTPRoute": HTTP_ROUTES,
    "BackendTLSPolicy": BACKEND_TLS_POLICIES,
    "MirrorPolicy": MIRROR_POLICIES,
}
PLURAL = {
    "GatewayClass": "gatewayclasses",
    "Gateway": "gateways",
    "HTTPRoute": "httproutes",
    "BackendTLSPolicy": "backendtlspolicies",
    "MirrorPolicy": "mirrorpolicies",
    "Service": "services",
    "ConfigMap": "configmaps",
}
OLD = "2020-01-01T00:00:00Z"


def cond(kind: str, ok: bool, gen: int, reason: str = "", message: str = "") -> Obj:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason or (kind if ok else "Invalid"),
        "message": message or f"{kind}.",
        "observedGeneration": gen,
    }


def gateway_class(name: str = "mg", controller: str = OURS) -> Obj:
    return {
        "apiVersion": f"{GW_API}/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": controller},
    }


def gateway(name: str = "gw", cls: str = "mg", ns: str = "default") -> Obj:
    spec = {"gatewayClassName": cls, "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}
    return {"apiVersion": f"{GW_API}/v1", "kind": "Gateway", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def route(name: str = "r", parents: tuple[str, ...] = ("gw",), ns: str = "default") -> Obj:
    spec = {"parentRefs": [{"group": GW_API, "kind": "Gateway", "name": p} for p in parents], "rules": [{}]}
    return {
        "apiVersion": f"{GW_API}/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def parent(gw: str, ok: bool, gen: int, controller: str = OURS) -> Obj:
    return {
        "parentRef": {"group": GW_API, "kind": "Gateway", "name": gw},
        "controllerName": controller,
        "conditions": [cond("Accepted", ok, gen), cond("ResolvedRefs", True, gen)],
    }


def item(obj: Obj, status: Obj | None, gen: int = 1) -> Obj:
    """One ``list_view`` item: the object as translated, with its generation and computed status."""
    out = copy.deepcopy(obj)
    out["metadata"]["generation"] = gen
    if status is not None:
        out["status"] = status
    return out


def class_status(gen: int = 1, ok: bool = True) -> Obj:
    return {"conditions": [cond("Accepted", ok, gen)]}


def gateway_status(gen: int = 1, attached: int = 1) -> Obj:
    listener = {
        "name": "http",
        "supportedKinds": [{"group": GW_API, "kind": "HTTPRoute"}],
        "attachedRoutes": attached,
        "conditions": [cond("Accepted", True, gen), cond("Programmed", True, gen)],
    }
    conditions = [cond("Accepted", True, gen), cond("Programmed", True, gen)]
    return {"addresses": [{"type": "IPAddress", "value": "0.0.0.0"}], "conditions": conditions, "listeners": [listener]}


def listing(*items: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "List", "items": list(items)}


def world(route_status: Obj | None = None, gen: int = 1) -> Obj:
    """GatewayClass mg (ours), Gateway gw, HTTPRoute r attached to gw, all at generation ``gen``."""
    rs = route_status if route_status is not None else {"parents": [parent("gw", True, gen)]}
    return listing(
        item(gateway_class(), class_status(gen), gen),
        item(gateway(), gateway_status(gen), gen),
        item(route(), rs, gen),
    )


def store_live(api: FakeApiServer) -> Callable[[str, str, str], Obj | None]:
    """A cache that is always up to date: the fake store itself."""

    def live(kind: str, ns: str, name: str) -> Obj | None:
        try:
            return api.get(PLURAL[kind], name, ns)
        except Exception:
            return None

    return live


def status_of(api: FakeApiServer, kind: str, name: str, ns: str = "") -> Obj:
    st: Obj = api.get(PLURAL[kind], name, ns).get("status") or {}
    return st


def set_status(api: FakeApiServer, kind: str, name: str, status: Obj, ns: str = "") -> None:
    """Another writer (a user, another controller) replaces the status directly in the store."""
    k = api.kind(PLURAL[kind])
    api.store.replace_status(k, ns, name, {"metadata": {"name": name}, "status": status})


def status_puts(api: FakeApiServer) -> list[str]:
    return [w.path for w in api.writes if w.verb == "PUT" and w.path.endswith("/status")]


@pytest.fixture
async def sync(api: FakeApiServer, client: KubeClient) -> AsyncIterator[StatusSync]:
    async with running(make_sync(client, store_live(api))) as s:
        yield s


@contextlib.asynccontextmanager
async def running(s: StatusSync) -> AsyncIterator[StatusSync]:
    task = asyncio.create_task(s.run())
    try:
        yield s
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def make_sync(
    client: KubeClient,
    live: Callable[[str, str, str], Obj | None],
    addresses: Callable[[], list[dict[str, str]]] = list,
) -> StatusSync:
    s = StatusSync(client, controller_name=OURS, live=live, resources=RESOURCES, addresses=addresses)
    s.BACKOFF = 0.01
    return s


def seed(api: FakeApiServer, *objs: Obj) -> None:
    for o in objs:
        api.put(PLURAL[o["kind"]], o)


async def settle(s: StatusSync) -> None:
    await eventually(lambda: s.idle, what="the status writer to go idle")


async def apply(s: StatusSync, status_list: Obj, rejected: tuple[Rejected, ...] = ()) -> None:
    s.update(status_list, rejected)
    await settle(s)


# ---- ownership and merge


async def test_route_parents_of_other_controllers_stay_untouched_and_in_order(
    api: FakeApiServer, sync: StatusSync
) -> None:
    seed(api, gateway_class(), gateway(), gateway(name="gw2"), route(parents=("gw", "gw2", "theirs")))
    first, last = parent("theirs", True, 7, OTHER), parent("elsewhere", False, 2, OTHER)
    set_status(api, "HTTPRoute", "r", {"parents": [first, parent("gw", False, 1), last]}, "default")
    sync.set_leading(True)
    gw2 = item(gateway(name="gw2"), gateway_status())
    both = {"parents": [parent("gw", True, 1), parent("gw2", True, 1)]}
    await apply(sync, listing(*world()["items"], gw2, item(route(parents=("gw", "gw2", "theirs")), both)))
    parents = status_of(api, "HTTPRoute", "r", "default")["parents"]
    assert [p["parentRef"]["name"] for p in parents] == ["theirs", "gw", "elsewhere", "gw2"]  # ours updated in place
    assert parents[0] == first
    assert parents[2] == last
    assert parents[1]["conditions"][0]["status"] == "True"

    only_gw2 = {"parents": [parent("gw2", True, 1)]}
    await apply(sync, listing(*world()["items"], gw2, item(route(parents=("gw", "gw2", "theirs")), only_gw2)))
    parents = status_of(api, "HTTPRoute", "r", "default")["parents"]
    assert parents[0] == first
    assert parents[1] == last
    assert [p["parentRef"]["name"] for p in parents] == ["theirs", "elsewhere", "gw2"]  # our stale entry dropped

    await apply(sync, listing(*world()["items"], gw2, item(route(parents=("gw", "gw2", "theirs")), None)))
    assert status_of(api, "HTTPRoute", "r", "default")["parents"] == [first, last]


async def test_other_controllers_class_and_its_gateway_are_never_written(api: FakeApiServer, sync: StatusSync) -> None:
    theirs_gw = gateway(name="their-gw", cls="theirs")
    seed(api, gateway_class(), gateway_class("theirs", OTHER), gateway(), theirs_gw, route(parents=("gw", "their-gw")))
    sync.set_leading(True)
    rs = {"parents": [parent("gw", True, 1), parent("their-gw", True, 1)]}
    other_items = [item(gateway_class("theirs", OTHER), class_status()), item(theirs_gw, gateway_status())]
    await apply(sync, listing(*world(rs)["items"], *other_items))
    assert status_of(api, "GatewayClass", "theirs") == {}
    assert status_of(api, "Gateway", "their-gw", "default") == {}
    assert status_of(api, "GatewayClass", "mg")["conditions"][0]["status"] == "True"
    parents = status_of(api, "HTTPRoute", "r", "default")["parents"]
    assert [p["parentRef"]["name"] for p in parents] == ["gw"]  # no entry for a Gateway that is not ours
    assert not any("theirs" in p or "their-gw" in p for p in status_puts(api))


async def test_gateway_class_gets_sorted_supported_features(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class())
    sync.set_leading(True)
    await apply(sync, listing(item(gateway_class(), class_status())))
    features = status_of(api, "GatewayClass", "mg")["supportedFeatures"]
    assert features == supported_features()
    names = [f["name"] for f in features]
    assert names == sorted(names)
    assert "HTTPRouteRequestMirror" in names
    assert all(set(f) == {"name"} for f in features)


async def test_gateway_addresses_come_from_addresses(api: FakeApiServer, client: KubeClient) -> None:
    seed(api, gateway_class(), gateway(), route())
    published = [{"type": "IPAddress", "value": "203.0.113.7"}, {"type": "Hostname", "value": "lb.example"}]
    s = make_sync(client, store_live(api), addresses=lambda: published)
    async with running(s):
        s.set_leading(True)
        await apply(s, world())
        st = status_of(api, "Gateway", "gw", "default")
        assert st["addresses"] == published  # the translator's bind address is not published
        assert st["listeners"][0]["attachedRoutes"] == 1
        published.clear()
        s.set_leading(False)
        s.set_leading(True)  # a new term: full pass
        await settle(s)
        assert "addresses" not in status_of(api, "Gateway", "gw", "default")


# ---- generations and transition times


async def test_observed_generation_is_the_translated_one(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class(), gateway(), route())
    sync.set_leading(True)
    await apply(sync, world(gen=3))
    cls = status_of(api, "GatewayClass", "mg")
    assert [c["observedGeneration"] for c in cls["conditions"]] == [3]
    assert {
        c["observedGeneration"] for c in status_of(api, "HTTPRoute", "r", "default")["parents"][0]["conditions"]
    } == {3}

    writes = len(status_puts(api))
    await apply(sync, world(gen=2))  # a cache behind what was already written: left alone
    assert len(status_puts(api)) == writes
    assert status_of(api, "GatewayClass", "mg")["conditions"][0]["observedGeneration"] == 3

    reworded = {"conditions": [cond("Accepted", True, 3, message="Same generation, new words.")]}
    await apply(sync, listing(item(gateway_class(), reworded, gen=3)))  # not behind: written
    assert status_of(api, "GatewayClass", "mg")["conditions"][0]["message"] == "Same generation, new words."


async def test_last_transition_time_kept_unless_status_flips(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class())
    sync.set_leading(True)
    await apply(sync, listing(item(gateway_class(), class_status())))
    written = status_of(api, "GatewayClass", "mg")["conditions"][0]
    assert written["lastTransitionTime"].endswith("Z")
    assert len(written["lastTransitionTime"]) == 20
    set_status(api, "GatewayClass", "mg", {"conditions": [{**written, "lastTransitionTime": OLD}]})

    reworded = {"conditions": [cond("Accepted", True, 2, message="Reworded.")]}
    await apply(sync, listing(item(gateway_class(), reworded, gen=2)))
    kept = status_of(api, "GatewayClass", "mg")["conditions"][0]
    assert kept["message"] == "Reworded."
    assert kept["observedGeneration"] == 2
    assert kept["lastTransitionTime"] == OLD

    await apply(sync, listing(item(gateway_class(), class_status(gen=2, ok=False), gen=2)))
    flipped = status_of(api, "GatewayClass", "mg")["conditions"][0]
    assert flipped["status"] == "False"
    assert flipped["lastTransitionTime"] != OLD


async def test_conditions_of_unknown_types_are_kept(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class())
    foreign = {**cond("example.net/Audited", True, 1), "lastTransitionTime": OLD}
    set_status(
        api, "GatewayClass", "mg", {"conditions": [foreign, {**cond("Programmed", True, 1), "lastTransitionTime": OLD}]}
    )
    sync.set_leading(True)
    await apply(sync, listing(item(gateway_class(), class_status())))
    types = [c["type"] for c in status_of(api, "GatewayClass", "mg")["conditions"]]
    assert types == ["example.net/Audited", "Accepted"]  # ours set, our type no longer set dropped


# ---- writes: settle, conflicts, failures


async def test_a_settled_cluster_gets_no_writes(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class(), gateway(), route())
    sync.set_leading(True)
    await apply(sync, world())
    assert len(status_puts(api)) == 3
    await apply(sync, world())
    await apply(sync, copy.deepcopy(world()))
    sync.set_leading(False)
    sync.set_leading(True)
    await settle(sync)
    assert len(status_puts(api)) == 3
    assert sync.writes == 3
    assert sync.errors == 0


async def test_a_settled_cluster_gets_no_writes_with_a_lagging_cache(api: FakeApiServer, client: KubeClient) -> None:
    seed(api, gateway_class())
    before = api.get("gatewayclasses", "mg")
    s = make_sync(client, lambda kind, ns, name: copy.deepcopy(before))  # never sees our own write
    async with running(s):
        s.set_leading(True)
        await apply(s, listing(item(gateway_class(), class_status())))
        await apply(s, listing(item(gateway_class(), class_status())))
        assert len(status_puts(api)) == 1
        assert s.conflicts == 0


async def test_an_injected_conflict_is_retried_after_rereading(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class())
    api.fail_next(1, 409, "Conflict")
    api.requests.clear()
    sync.set_leading(True)
    await apply(sync, listing(item(gateway_class(), class_status())))
    verbs = [m for m, p in api.requests if "/gatewayclasses/mg" in p]
    assert verbs == ["PUT", "GET", "PUT"]
    assert sync.conflicts == 1
    assert sync.writes == 1
    assert status_of(api, "GatewayClass", "mg")["conditions"][0]["type"] == "Accepted"


async def test_a_concurrent_write_conflicts_and_is_merged_after_rereading(
    api: FakeApiServer, client: KubeClient
) -> None:
    seed(api, gateway_class(), gateway(), route(parents=("gw", "theirs")))
    stale = {k: api.get(PLURAL[k], n, ns) for k, ns, n in [("GatewayClass", "", "mg"), ("Gateway", "default", "gw")]}
    stale["HTTPRoute"] = api.get("httproutes", "r", "default")
    theirs = parent("theirs", True, 1, OTHER)
    set_status(api, "HTTPRoute", "r", {"parents": [theirs]}, "default")  # after our cache was filled
    s = make_sync(client, lambda kind, ns, name: copy.deepcopy(stale.get(kind)))
    async with running(s):
        s.set_leading(True)
        await apply(s, world())
        assert s.conflicts == 1
        parents = status_of(api, "HTTPRoute", "r", "default")["parents"]
        assert parents[0] == theirs  # the entry written behind our back survives the retry
        assert [p["controllerName"] for p in parents] == [OTHER, OURS]


async def test_server_errors_are_retried_and_gone_objects_skipped(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class(), gateway(), route())
    api.fail_next(2, 503, "ServiceUnavailable")
    sync.set_leading(True)
    await apply(sync, listing(*world()["items"], item(route(name="deleted"), {"parents": [parent("gw", True, 1)]})))
    assert status_of(api, "HTTPRoute", "r", "default")["parents"][0]["controllerName"] == OURS
    assert sync.writes == 3
    assert sync.errors >= 1
    assert "503" in (sync.last_error or "")


async def test_a_refused_write_is_recorded_and_skipped(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class(), gateway(), route())
    api.fail_next(1, 422, "Invalid")
    sync.set_leading(True)
    await apply(sync, world())
    assert sync.errors == 1
    assert "422" in (sync.last_error or "")
    assert status_of(api, "GatewayClass", "mg") == {}  # the first object in order was refused
    assert status_of(api, "Gateway", "gw", "default")["conditions"]


# ---- leadership


async def test_not_leading_writes_nothing_and_becoming_leader_writes_everything(
    api: FakeApiServer, sync: StatusSync
) -> None:
    seed(api, gateway_class(), gateway(), route())
    await apply(sync, world())
    await apply(sync, world())
    assert status_puts(api) == []
    sync.set_leading(True)
    await settle(sync)
    assert len(status_puts(api)) == 3


async def test_losing_leadership_stops_writing_at_once(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class(), gateway(), route())
    api.hooks.append(lambda request: sync.set_leading(False) if request.method == "PUT" else None)
    sync.set_leading(True)
    await apply(sync, world())
    assert len(status_puts(api)) == 1  # the write in flight completed; nothing after it
    api.hooks.clear()
    await apply(sync, world(gen=2))
    assert len(status_puts(api)) == 1
    assert not sync.leading


# ---- refused by our admission


async def test_rejected_route_gets_accepted_false_with_the_message(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class(), gateway(), route(parents=("gw", "theirs")))
    theirs = parent("theirs", True, 1, OTHER)
    set_status(api, "HTTPRoute", "r", {"parents": [theirs, parent("gw", True, 1)]}, "default")
    sync.set_leading(True)
    bad = Rejected("HTTPRoute", "default", "r", 4, "spec.rules[0].matches: Too many: 65: must have at most 64 items")
    items = [i for i in world()["items"] if i["kind"] != "HTTPRoute"]
    await apply(sync, listing(*items), (bad,))
    parents = status_of(api, "HTTPRoute", "r", "default")["parents"]
    assert parents[0] == theirs
    assert len(parents) == 2
    accepted = parents[1]["conditions"]
    assert [(c["type"], c["status"], c["reason"]) for c in accepted] == [("Accepted", "False", "UnsupportedValue")]
    assert accepted[0]["message"] == bad.message
    assert accepted[0]["observedGeneration"] == 4


async def test_rejected_gateway_and_class_get_accepted_false(api: FakeApiServer, sync: StatusSync) -> None:
    seed(api, gateway_class(), gateway_class("other", OTHER), gateway())
    sync.set_leading(True)
    bad_gw = Rejected("Gateway", "default", "gw", 2, "spec.listeners: Too many: 65: must have at most 64 items")
    bad_cls = Rejected("GatewayClass", "", "mg", 3, "spec.description: Too long: may not be more than 64 bytes")
    not_ours = Rejected("GatewayClass", "", "other", 1, "spec.description: Too long")
    await apply(sync, listing(), (bad_gw, bad_cls, not_ours))
    gw = status_of(api, "Gateway", "gw", "default")
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in gw["conditions"]] == [
        ("Accepted", "False", "Invalid", bad_gw.message),
        ("Programmed", "False", "Invalid", bad_gw.message),
    ]
    assert "listeners" not in gw
    assert "addresses" not in gw
    cls = status_of(api, "GatewayClass", "mg")
    assert [(c["status"], c["reason"], c["observedGeneration"]) for c in cls["conditions"]] == [
        ("False", "InvalidParameters", 3)
    ]
    assert "supportedFeatures" not in cls
    assert status_of(api, "GatewayClass", "other") == {}


async def test_a_failing_pass_does_not_end_the_writer(api: FakeApiServer, client: KubeClient) -> None:
    seed(api, gateway_class(), gateway(), route())
    calls: list[int] = []

    def addresses() -> list[dict[str, str]]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("publish service lookup broke")
        return []

    async with running(make_sync(client, store_live(api), addresses)) as s:
        s.set_leading(True)
        await settle(s)
        assert "publish service lookup broke" in (s.last_error or "")
        await apply(s, world())
        assert status_of(api, "Gateway", "gw", "default")["conditions"]
