"""Status and leader election through ``mirrorgate run --kubernetes`` processes against the fake API server.

What is checked is what the fake stores and its write log, never how long anything took: every
wait polls for a condition with a generous deadline. The Lease timings are shortened with
``MIRRORGATE_LEASE_TIMINGS`` (``serve.kube``, rule 4) so takeovers happen in seconds.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mirrorgate.kube.leader import LeaseTimings
from mirrorgate.serve.kube import lease_timings
from tests.kube.cluster import (
    CONTROLLER,
    backend,
    gateway,
    gateway_class,
    route,
    service,
    set_status,
    start_kubernetes,
    status_of,
    status_writes,
)
from tests.kube.fakeapi import FakeApiServer
from tests.kube.fakestore import StatusError
from tests.kube.test_run_kubernetes import metrics_of, until, until_pod, until_ready, world
from tests.runtime.conftest import Backend, GatewayProcess, admin_json, backends, get, pod_of
from tests.support.backends import free_port

__all__ = ["backends"]

Start = Callable[..., Awaitable[GatewayProcess]]
Check = Callable[[], bool]
OTHER = "example.com/other"
SHORT = "2,1.5,0.25"  # lease duration, renew deadline, retry period (seconds)


@pytest.fixture
async def kube(api: FakeApiServer, tmp_path: Path) -> AsyncIterator[Start]:
    started: list[GatewayProcess] = []
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")

    async def start(*extra: str, leader_elect: bool = False, env: dict[str, str] | None = None) -> GatewayProcess:
        gw = await start_kubernetes(kubeconfig, *extra, leader_elect=leader_elect, env=env)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        await gw.kill()
        print("\n".join(gw.lines))  # shown when the test failed


async def holds(check: Check, what: str) -> None:
    async def poll() -> bool:
        return check()

    await until(poll, what)


def condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any]:
    return next((c for c in conditions or [] if c.get("type") == type_), {})


def ours(api: FakeApiServer, name: str) -> list[dict[str, Any]]:
    """Our entries in the route's ``status.parents``."""
    parents = status_of(api, "httproutes", name).get("parents") or []
    return [p for p in parents if p.get("controllerName") == CONTROLLER]


def parent_accepted(api: FakeApiServer, name: str, generation: int = 1) -> bool:
    entries = ours(api, name)
    accepted = [condition(p.get("conditions"), "Accepted") for p in entries]
    return len(entries) == 1 and accepted[0].get("status") == "True" and accepted[0]["observedGeneration"] == generation


def gateway_accepted(api: FakeApiServer, name: str = "gw") -> bool:
    return condition(status_of(api, "gateways", name).get("conditions"), "Accepted").get("status") == "True"


def generation(api: FakeApiServer, plural: str, name: str, namespace: str = "default") -> int:
    kind = api.kind(plural)
    return int(api.get(plural, name, namespace if kind.namespaced else "")["metadata"]["generation"])


def other_parent(gateway_name: str, message: str = "theirs") -> dict[str, Any]:
    cond = {
        "type": "Accepted",
        "status": "True",
        "reason": "Accepted",
        "message": message,
        "observedGeneration": 1,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway_name}
    return {"parentRef": ref, "controllerName": OTHER, "conditions": [cond]}


# ---- 1. what is written, and that it follows a spec change


def gateway_settled(api: FakeApiServer, listeners: int, attached: int) -> bool:
    status = status_of(api, "gateways", "gw")
    conditions = status.get("conditions") or []
    gen = generation(api, "gateways", "gw")
    if {c["type"]: c["status"] for c in conditions if c["type"] in ("Accepted", "Programmed")} != {
        "Accepted": "True",
        "Programmed": "True",
    }:
        return False
    if any(c.get("observedGeneration") != gen for c in conditions):
        return False
    got = status.get("listeners") or []
    return len(got) == listeners and all(listener["attachedRoutes"] == attached for listener in got)


async def test_status_is_written_and_follows_spec_changes(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)
    api.put("services", service("mirrorgate"))
    ingress = [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}]
    set_status(api, "services", "mirrorgate", {"loadBalancer": {"ingress": ingress}})
    gw = await kube("--publish-service", "default/mirrorgate")
    await until_ready(await gw.admin_port())

    def class_accepted() -> bool:
        status = status_of(api, "gatewayclasses", "mirrorgate", "")
        accepted = condition(status.get("conditions"), "Accepted")
        return accepted.get("status") == "True" and accepted.get("observedGeneration") == 1

    await holds(class_accepted, "GatewayClass Accepted=True")
    features = status_of(api, "gatewayclasses", "mirrorgate", "")["supportedFeatures"]
    assert {"name": "HTTPRouteRequestMirror"} in features
    await holds(lambda: gateway_settled(api, listeners=1, attached=1), "Gateway Accepted and Programmed")
    assert status_of(api, "gateways", "gw")["addresses"] == [
        {"type": "IPAddress", "value": "203.0.113.7"},
        {"type": "Hostname", "value": "lb.example.com"},
    ]
    await holds(lambda: parent_accepted(api, "ra"), "our parent entry on HTTPRoute ra")
    assert ours(api, "ra")[0]["parentRef"]["name"] == "gw"
    # spec changes bump the generations; the statuses follow
    api.put("httproutes", route("ra", "svc-a", "/changed"))
    assert generation(api, "httproutes", "ra") == 2
    await holds(lambda: parent_accepted(api, "ra", generation=2), "the route's status to observe generation 2")
    grown = gateway(port)
    grown["spec"]["listeners"].append({"name": "http-2", "port": free_port(), "protocol": "HTTP"})
    api.put("gateways", grown)
    api.put("httproutes", route("rb", "svc-b", "/b"))
    await holds(lambda: gateway_settled(api, listeners=2, attached=2), "the Gateway's status at generation 2")
    # the load balancer's new address reaches every Gateway
    set_status(api, "services", "mirrorgate", {"loadBalancer": {"ingress": [{"ip": "198.51.100.1"}]}})
    await holds(
        lambda: status_of(api, "gateways", "gw")["addresses"] == [{"type": "IPAddress", "value": "198.51.100.1"}],
        "the new load-balancer address",
    )


# ---- 2. another controller's parent entries


async def test_other_controllers_route_parents_are_kept_in_order(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)
    first = other_parent("theirs", "first")
    set_status(api, "httproutes", "ra", {"parents": [first]})
    gw = await kube()
    await until_ready(await gw.admin_port())
    await holds(lambda: parent_accepted(api, "ra"), "our parent entry added")
    parents = status_of(api, "httproutes", "ra")["parents"]
    assert parents[0] == first
    assert len(parents) == 2
    # while it runs: the other controller rewrites its entries; then our entry must be updated
    second = other_parent("theirs-too", "second")
    set_status(api, "httproutes", "ra", {"parents": [second, first, parents[1]]})
    api.put("httproutes", route("ra", "svc-a", "/changed"))
    await holds(lambda: parent_accepted(api, "ra", generation=2), "our entry updated in place")
    parents = status_of(api, "httproutes", "ra")["parents"]
    assert parents[:2] == [second, first]
    assert len(parents) == 3


# ---- 3. another controller's class and Gateway


async def test_no_status_writes_for_other_controllers(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)
    # named to sort first: the writer visits objects by kind, then name, so once "rz" is
    # written every object before it has been considered
    api.put("gatewayclasses", gateway_class("a-other", OTHER))
    api.put("gateways", gateway(free_port(), name="a-theirs", class_name="a-other"))
    api.put("httproutes", route("a-route", "svc-b", "/t", parent="a-theirs"))
    both = route("rz", "svc-b", "/z")
    both["spec"]["parentRefs"].append({"name": "a-theirs"})
    api.put("httproutes", both)
    gw = await kube()
    await until_ready(await gw.admin_port())
    await holds(lambda: parent_accepted(api, "rz"), "our entry on the route with both parents")
    assert [p["parentRef"]["name"] for p in ours(api, "rz")] == ["gw"]
    written = status_writes(api)
    assert any(path.endswith("/gateways/gw/status") for path in written)
    assert not [path for path in written if "a-other" in path or "a-theirs" in path or "a-route" in path]
    assert status_of(api, "gatewayclasses", "a-other", "") == {}
    assert status_of(api, "gateways", "a-theirs") == {}


# ---- 4. a conflict is retried


async def test_a_conflict_on_a_status_write_is_retried(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)
    conflicts: list[str] = []
    theirs = other_parent("theirs", "concurrent")

    def interfere(request: web.Request) -> None:
        if request.method != "PUT" or not request.path.endswith("/status") or request.path in conflicts:
            return
        conflicts.append(request.path)
        if request.path.endswith("/gateways/gw/status"):
            api.fail_next(1, 409, "Conflict")  # an injected 409
        elif request.path.endswith("/httproutes/ra/status"):
            set_status(api, "httproutes", "ra", {"parents": [theirs]})  # a concurrent write: a real 409

    api.hooks.append(interfere)
    gw = await kube()
    admin = await gw.admin_port()
    await until_ready(admin)
    await holds(lambda: gateway_accepted(api), "the Gateway's status after its 409")
    await holds(lambda: parent_accepted(api, "ra"), "the route's status after its 409")
    assert status_of(api, "httproutes", "ra")["parents"][0] == theirs
    assert any(path.endswith("/gateways/gw/status") for path in conflicts)
    assert any(path.endswith("/httproutes/ra/status") for path in conflicts)


# ---- 5. a settled cluster gets no writes


async def test_no_status_writes_once_settled(api: FakeApiServer, kube: Start, backends: dict[str, Backend]) -> None:
    port = free_port()
    world(api, backends, port)
    gw = await kube()
    await until_ready(await gw.admin_port())
    await holds(lambda: parent_accepted(api, "ra") and gateway_accepted(api), "the first statuses")
    await asyncio.sleep(1.0)  # let the first pass finish
    settled = len(status_writes(api))
    await asyncio.sleep(2.0)  # nothing changes for a while
    backend(api, "svc-a", backends["b"].port)  # an EndpointSlice change that alters no status
    await until_pod(port, "/a", "b-1-2")
    await asyncio.sleep(1.0)  # the writer has had its update
    assert status_writes(api)[settled:] == []


# ---- 6. admission refusal


async def test_an_object_admission_refuses_gets_accepted_false(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)
    bad = route("rbad", "svc-a", "/bad")
    mirror = {"backendRef": {"name": "svc-b", "port": 8080}, "percent": 50, "fraction": {"numerator": 1}}
    bad["spec"]["rules"][0]["filters"] = [{"type": "RequestMirror", "requestMirror": mirror}]
    api.put("httproutes", bad)
    gw = await kube()
    await until_ready(await gw.admin_port())

    def refused() -> bool:
        entries = ours(api, "rbad")
        return len(entries) == 1 and condition(entries[0]["conditions"], "Accepted").get("status") == "False"

    await holds(refused, "Accepted=False on the refused route")
    accepted = condition(ours(api, "rbad")[0]["conditions"], "Accepted")
    assert "Only one of percent or fraction may be specified" in accepted["message"]
    assert accepted["observedGeneration"] == 1
    await gw.wait_line(r"warning: refused: .*HTTPRoute default/rbad: .*Only one of percent or fraction")
    assert pod_of(await get(port, "/a")) == "a-1-2"  # the rest serves


# ---- 7. two replicas, one Lease


def holder(api: FakeApiServer) -> str:
    try:
        lease = api.get("leases", "mirrorgate-leader", "default")
    except StatusError:  # not created yet
        return ""
    return str(lease["spec"].get("holderIdentity") or "")


async def leading(gw: GatewayProcess) -> tuple[bool, str]:
    admin = await gw.admin_port()
    section = (await admin_json(admin, "/status"))["kubernetes"]
    assert isinstance(section, dict)
    metric = "mirrorgate_leader 1.0" in await metrics_of(admin)
    assert section["leader"]["leading"] is metric
    return metric, str(section["leader"]["identity"])


async def replica(start: Start, pod: str, timings: str, bind: str) -> GatewayProcess:
    return await start("--bind", bind, leader_elect=True, env={"POD_NAME": pod, "MIRRORGATE_LEASE_TIMINGS": timings})


async def pod_on(address: str, port: int, path: str) -> str:
    """The pod that answers ``GET path`` on ``address:port`` (replicas bind different loopback addresses)."""
    reader, writer = await asyncio.open_connection(address, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n".encode())
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return str(json.loads(body)["pod"])


async def test_two_replicas_one_leader_takeover_and_release(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)
    first = await replica(kube, "pod-1", SHORT, "127.0.0.1")
    await holds(lambda: holder(api).startswith("pod-1_"), "pod-1 to hold the Lease")
    # pod-2 holds it for 60 s once it has it: only a release lets pod-3 take over within the wait
    second = await replica(kube, "pod-2", "60,1.5,0.25", "127.0.0.2")
    for gw in (first, second):
        await until_ready(await gw.admin_port())
    await holds(lambda: parent_accepted(api, "ra"), "the leader's statuses")
    assert await leading(first) == (True, holder(api))
    assert (await leading(second))[0] is False
    assert await pod_on("127.0.0.1", port, "/a") == "a-1-2"
    assert await pod_on("127.0.0.2", port, "/a") == "a-1-2"  # the standby serves too
    # kill -9 the leader: the Lease is not released, it expires and pod-2 takes it over
    await first.kill()
    await holds(lambda: holder(api).startswith("pod-2_"), "pod-2 to take the Lease over")
    api.put("httproutes", route("rb", "svc-b", "/b"))
    await holds(lambda: parent_accepted(api, "rb"), "the new leader to write the new route's status")
    assert (await leading(second))[0] is True
    third = await replica(kube, "pod-3", SHORT, "127.0.0.3")
    await until_ready(await third.admin_port())
    assert (await leading(third))[0] is False
    released = len(api.writes)
    assert await second.stop() == 0  # SIGTERM: the leader releases the Lease on its way out
    lease_puts = [w.body for w in api.writes[released:] if w.verb == "PUT" and "/leases/" in w.path]
    assert "" in [body["spec"]["holderIdentity"] for body in lease_puts]
    await holds(lambda: holder(api).startswith("pod-3_"), "pod-3 to take the released Lease")
    api.put("httproutes", route("rb", "svc-a", "/b"))
    await holds(lambda: parent_accepted(api, "rb", generation=2), "pod-3 to write status")


def test_lease_timings_from_the_environment(caplog: pytest.LogCaptureFixture) -> None:
    assert lease_timings(None) is None
    assert lease_timings("2,1.5,0.25") == LeaseTimings(2.0, 1.5, 0.25)
    for bad in ("2,1.5", "x,1,0.1", "1,2,0.5"):  # too few, not a number, renew deadline over the duration
        assert lease_timings(bad) is None
    assert len([r for r in caplog.records if "MIRRORGATE_LEASE_TIMINGS" in r.getMessage()]) == 3
