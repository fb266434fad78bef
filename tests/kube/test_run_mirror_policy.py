"""MirrorPolicy through a ``mirrorgate run --kubernetes`` process against the fake API server: the
policy is listed and watched, the route's ExtensionRef mirrors to the policy's backend, and the
leader writes the policy's conditions (including ``Accepted=False`` for a refused one).

Every wait polls with a generous deadline; nothing is timed.
"""

from typing import Any

from tests.kube.cluster import backend, status_of
from tests.kube.fakeapi import FakeApiServer
from tests.kube.test_run_kubernetes import until_ready, world
from tests.kube.test_run_status import Start, condition, holds, kube
from tests.runtime.conftest import Backend, admin_json, backends, get, pod_of
from tests.support.backends import free_port

__all__ = ["backends", "kube"]

GW = "gateway.networking.k8s.io/v1"


def mirror_policy(name: str, service: str, **extra: Any) -> dict[str, Any]:
    spec = {"backendRef": {"name": service, "port": 8080}, **extra}
    meta = {"name": name, "namespace": "default"}
    return {"apiVersion": "mirrorgate.dev/v1alpha1", "kind": "MirrorPolicy", "metadata": meta, "spec": spec}


def mirrored_route(policy: str) -> dict[str, Any]:
    ref = {"group": "mirrorgate.dev", "kind": "MirrorPolicy", "name": policy}
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/p"}}],
        "filters": [{"type": "ExtensionRef", "extensionRef": ref}],
        "backendRefs": [{"name": "svc-a", "port": 8080}],
    }
    spec = {"parentRefs": [{"name": "gw"}], "rules": [rule]}
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "rp", "namespace": "default"}, "spec": spec}


def policy_conditions(api: FakeApiServer, name: str) -> dict[str, tuple[str, str]]:
    found = status_of(api, "mirrorpolicies", name).get("conditions") or []
    return {
        t: (condition(found, t).get("status", ""), condition(found, t).get("reason", ""))
        for t in {c.get("type", "") for c in found}
    }


async def test_a_mirror_policy_from_the_api_mirrors_and_gets_its_status(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)  # Gateway gw, svc-a (backend a), svc-b
    backend(api, "svc-m", backends["m"].port)
    api.put("mirrorpolicies", mirror_policy("shadow", "svc-m", percent=100, timeout="5s"))
    api.put("httproutes", mirrored_route("shadow"))
    gw = await kube()
    admin = await gw.admin_port()
    await until_ready(admin)
    assert pod_of(await get(port, "/p/one")) == "a-1-2"
    await backends["m"].log.wait_for("Echoing back request made to /p/one ")
    dump = await admin_json(admin, "/config_dump")
    assert '"policy": "mirrorpolicy/default/shadow"' in str(dump).replace("'", '"')
    resolved = {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    await holds(lambda: policy_conditions(api, "shadow") == resolved, "the policy's conditions")

    api.put("mirrorpolicies", mirror_policy("shadow", "svc-gone"))
    await holds(
        lambda: policy_conditions(api, "shadow").get("ResolvedRefs") == ("False", "BackendNotFound"),
        "ResolvedRefs=False, BackendNotFound after the backendRef named a missing Service",
    )
    assert pod_of(await get(port, "/p/two")) == "a-1-2", "the primary is unaffected"

    api.put("mirrorpolicies", mirror_policy("shadow", "svc-m", percent=101))
    await holds(lambda: policy_conditions(api, "shadow") == {"Accepted": ("False", "Invalid")}, "Accepted=False")
    [accepted] = status_of(api, "mirrorpolicies", "shadow")["conditions"]
    assert "spec.percent" in accepted["message"]
    assert (await get(port, "/p/three")).status == 500, "a refused policy's ExtensionRef answers 500"
    assert await gw.stop() == 0
