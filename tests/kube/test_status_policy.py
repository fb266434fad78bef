"""BackendTLSPolicy ``status.ancestors`` written by the leader, against the fake API server.

``ancestors`` is shared by every implementation like a route's ``parents``: ours merged in place,
others' untouched and in order, at most 16 entries without dropping others'.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mirrorgate.kube.client import KubeClient
from mirrorgate.kube.status import MAX_ANCESTORS, StatusSync
from mirrorgate.providers.files import load_paths
from mirrorgate.status_view import list_view
from mirrorgate.translate.translator import translate
from tests.kube.fakeapi import FakeApiServer
from tests.kube.test_status import (
    GW_API,
    OLD,
    OTHER,
    OURS,
    PLURAL,
    apply,
    cond,
    gateway,
    gateway_class,
    gateway_status,
    item,
    listing,
    make_sync,
    running,
    seed,
    set_status,
    status_of,
    status_puts,
    store_live,
)

Obj = dict[str, Any]


def policy(name: str = "p", ns: str = "default") -> Obj:
    spec = {
        "targetRefs": [{"group": "", "kind": "Service", "name": "svc"}],
        "validation": {"hostname": "svc.example", "wellKnownCACertificates": "System"},
    }
    meta = {"name": name, "namespace": ns}
    return {"apiVersion": f"{GW_API}/v1", "kind": "BackendTLSPolicy", "metadata": meta, "spec": spec}


def ancestor(gw: str, ok: bool, gen: int = 1, controller: str = OURS, ns: str = "default") -> Obj:
    return {
        "ancestorRef": {"group": GW_API, "kind": "Gateway", "namespace": ns, "name": gw},
        "controllerName": controller,
        "conditions": [cond("Accepted", ok, gen), cond("ResolvedRefs", True, gen, reason="ResolvedRefs")],
    }


def world(*ancestors: Obj, gen: int = 1) -> Obj:
    """Class mg (ours), Gateways gw and gw2 (ours), eg (another class), policy p with ``ancestors``."""
    return listing(
        item(gateway_class(), {"conditions": [cond("Accepted", True, 1)]}),
        item(gateway_class("envoy", OTHER), None),
        item(gateway(), gateway_status()),
        item(gateway("gw2"), gateway_status()),
        item(gateway("eg", cls="envoy"), None),
        item(policy(), {"ancestors": list(ancestors)}, gen),
    )


def seed_world(api: FakeApiServer) -> None:
    seed(api, gateway_class(), gateway_class("envoy", OTHER), gateway(), gateway("gw2"), gateway("eg", "envoy"))
    seed(api, policy())


def ancestors_of(api: FakeApiServer, name: str = "p") -> list[Obj]:
    found: list[Obj] = status_of(api, "BackendTLSPolicy", name, "default").get("ancestors") or []
    return found


@pytest.fixture
async def sync(api: FakeApiServer, client: KubeClient) -> AsyncIterator[StatusSync]:
    async with running(make_sync(client, store_live(api))) as s:
        yield s


def policy_puts(api: FakeApiServer) -> list[str]:
    return [p for p in status_puts(api) if "/backendtlspolicies/" in p]


async def test_our_ancestor_entries_are_written(api: FakeApiServer, sync: StatusSync) -> None:
    seed_world(api)
    sync.set_leading(True)
    await apply(sync, world(ancestor("gw", True, 3), ancestor("gw2", False, 3), gen=3))
    written = ancestors_of(api)
    assert [(a["ancestorRef"]["name"], a["controllerName"]) for a in written] == [("gw", OURS), ("gw2", OURS)]
    accepted = written[0]["conditions"][0]
    assert (accepted["type"], accepted["status"], accepted["observedGeneration"]) == ("Accepted", "True", 3)
    assert accepted["lastTransitionTime"].endswith("Z")
    assert written[1]["conditions"][0]["status"] == "False"
    assert len(policy_puts(api)) == 1


async def test_other_controllers_ancestor_entries_stay_untouched_and_in_order(
    api: FakeApiServer, sync: StatusSync
) -> None:
    seed_world(api)
    first, last = ancestor("eg", True, 7, OTHER), ancestor("elsewhere", False, 2, OTHER)
    stale = ancestor("gw", False)
    stale["conditions"] = [{**c, "lastTransitionTime": OLD} for c in stale["conditions"]]
    set_status(api, "BackendTLSPolicy", "p", {"ancestors": [first, stale, last]}, "default")
    sync.set_leading(True)
    await apply(sync, world(ancestor("gw", True), ancestor("gw2", True)))
    written = ancestors_of(api)
    assert [a["ancestorRef"]["name"] for a in written] == ["eg", "gw", "elsewhere", "gw2"]  # ours in place
    assert (written[0], written[2]) == (first, last)
    accepted, resolved = written[1]["conditions"]
    assert accepted["status"] == "True"
    assert accepted["lastTransitionTime"] != OLD  # flipped
    assert resolved["lastTransitionTime"] == OLD  # unchanged status: time kept

    await apply(sync, world(ancestor("gw2", True)))  # gw no longer an ancestor: our stale entry dropped
    assert [a["ancestorRef"]["name"] for a in ancestors_of(api)] == ["eg", "elsewhere", "gw2"]
    assert ancestors_of(api)[0] == first


async def test_a_settled_policy_gets_no_writes(api: FakeApiServer, sync: StatusSync) -> None:
    seed_world(api)
    sync.set_leading(True)
    await apply(sync, world(ancestor("gw", True)))
    assert len(policy_puts(api)) == 1
    await apply(sync, world(ancestor("gw", True)))
    sync.set_leading(False)
    sync.set_leading(True)
    await apply(sync, world(ancestor("gw", True)))
    assert len(policy_puts(api)) == 1
    assert sync.errors == 0


async def test_ancestors_that_are_not_gateways_of_ours_get_no_entry(api: FakeApiServer, sync: StatusSync) -> None:
    seed_world(api)
    sync.set_leading(True)
    foreign = ancestor("eg", True)  # a Gateway of another class, even under our controllerName
    await apply(sync, world(foreign, ancestor("gone", True)))
    assert policy_puts(api) == []
    assert status_of(api, "BackendTLSPolicy", "p", "default") == {}


async def test_the_ancestor_cap_keeps_every_other_entry(api: FakeApiServer, sync: StatusSync) -> None:
    seed_world(api)
    theirs = [ancestor(f"theirs-{i}", True, 1, OTHER) for i in range(MAX_ANCESTORS - 1)]
    set_status(api, "BackendTLSPolicy", "p", {"ancestors": theirs}, "default")
    sync.set_leading(True)
    await apply(sync, world(ancestor("gw", True), ancestor("gw2", True)))
    written = ancestors_of(api)
    assert len(written) == MAX_ANCESTORS
    assert written[:-1] == theirs
    assert written[-1]["ancestorRef"]["name"] == "gw"  # as many of ours as fit, in order
    assert sync.errors == 1
    assert "1 ancestor entries of ours left out" in (sync.last_error or "")


async def test_a_conflict_rereads_and_keeps_an_entry_written_meanwhile(api: FakeApiServer, client: KubeClient) -> None:
    seed_world(api)
    before = api.get("backendtlspolicies", "p", "default")
    theirs = ancestor("eg", True, 1, OTHER)
    set_status(api, "BackendTLSPolicy", "p", {"ancestors": [theirs]}, "default")  # after our cache was filled
    live = store_live(api)
    s = make_sync(client, lambda kind, ns, name: before if kind == "BackendTLSPolicy" else live(kind, ns, name))
    async with running(s):
        s.set_leading(True)
        await apply(s, world(ancestor("gw", True)))
        assert s.conflicts == 1
        assert [a["controllerName"] for a in ancestors_of(api)] == [OTHER, OURS]
        assert ancestors_of(api)[0] == theirs


MANIFESTS = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: mirrorgate, generation: 1}
spec: {controllerName: mirrorgate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default, generation: 1}
spec:
  gatewayClassName: mirrorgate
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default, generation: 1}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: used, port: 443}]}]
---
apiVersion: v1
kind: Service
metadata: {name: used, namespace: default}
spec: {ports: [{port: 443}]}
---
apiVersion: v1
kind: Service
metadata: {name: unused, namespace: default}
spec: {ports: [{port: 443}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: used, namespace: default, generation: 1}
spec:
  targetRefs: [{group: "", kind: Service, name: used}]
  validation: {hostname: used.example, wellKnownCACertificates: System}
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: unused, namespace: default, generation: 1}
spec:
  targetRefs: [{group: "", kind: Service, name: unused}]
  validation: {hostname: unused.example, wellKnownCACertificates: System}
"""


async def test_a_policy_no_route_of_ours_uses_gets_no_entry(
    api: FakeApiServer, client: KubeClient, tmp_path: Path
) -> None:
    for doc in yaml.safe_load_all(MANIFESTS):
        api.put(PLURAL[doc["kind"]], doc)
    (tmp_path / "m.yaml").write_text(MANIFESTS)
    loaded = load_paths([str(tmp_path / "m.yaml")])
    assert not loaded.errors, loaded.errors
    async with running(make_sync(client, store_live(api))) as sync:
        sync.set_leading(True)
        await apply(sync, list_view(loaded.snapshot, translate(loaded.snapshot).statuses))
    assert [a["ancestorRef"]["name"] for a in ancestors_of(api, "used")] == ["gw"]
    assert status_of(api, "BackendTLSPolicy", "unused", "default") == {}
    assert [p for p in policy_puts(api) if p.endswith("/unused/status")] == []
