"""BackendTLSPolicy status through a ``mirrorgate run --kubernetes`` process against the fake API server.

Every wait polls the fake's store with a generous deadline; nothing is timed.
"""

from typing import Any

from tests.kube.cluster import CONTROLLER, status_of
from tests.kube.fakeapi import FakeApiServer
from tests.kube.test_run_kubernetes import until_ready, world
from tests.kube.test_run_status import Start, condition, holds, kube
from tests.runtime.conftest import Backend, backends
from tests.support.backends import free_port
from tests.support.certs import Pki

__all__ = ["backends", "kube"]

GW = "gateway.networking.k8s.io/v1"


def config_map(name: str, ca: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": "default"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"ca.crt": ca}}


def policy(name: str, service: str, ca: str) -> dict[str, Any]:
    spec = {
        "targetRefs": [{"group": "", "kind": "Service", "name": service}],
        "validation": {
            "hostname": f"{service}.example",
            "caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": ca}],
        },
    }
    meta = {"name": name, "namespace": "default"}
    return {"apiVersion": GW, "kind": "BackendTLSPolicy", "metadata": meta, "spec": spec}


def our_conditions(api: FakeApiServer, name: str) -> dict[str, tuple[str, str]]:
    """Type -> (status, reason) of our one ancestor entry, the Gateway gw; {} when there is none."""
    entries = status_of(api, "backendtlspolicies", name).get("ancestors") or []
    mine = [a for a in entries if a.get("controllerName") == CONTROLLER]
    if len(mine) != 1 or mine[0]["ancestorRef"].get("name") != "gw":
        return {}
    return {
        t: (
            condition(mine[0]["conditions"], t).get("status", ""),
            condition(mine[0]["conditions"], t).get("reason", ""),
        )
        for t in ("Accepted", "ResolvedRefs")
    }


async def test_a_policy_on_a_routed_service_gets_its_ancestor_status(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)  # route ra -> svc-a on Gateway gw
    api.put("configmaps", config_map("ca", Pki().ca_pem))
    api.put("backendtlspolicies", policy("tls-a", "svc-a", "ca"))
    gw = await kube()
    await until_ready(await gw.admin_port())
    resolved = {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    await holds(lambda: our_conditions(api, "tls-a") == resolved, "the policy's ancestor entry for gw")

    api.put("configmaps", config_map("ca", "not a certificate"))
    await holds(
        lambda: our_conditions(api, "tls-a").get("ResolvedRefs") == ("False", "InvalidCACertificateRef"),
        "ResolvedRefs=False, InvalidCACertificateRef after the CA turned invalid",
    )
