"""Objects for the fake API server and ``mirrorgate run --kubernetes`` as a real process."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.kube.fakeapi import FakeApiServer
from tests.kube.fakestore import Obj
from tests.runtime.conftest import GatewayProcess

GW = "gateway.networking.k8s.io/v1"
CONTROLLER = "mirrorgate.dev/gateway-controller"


def gateway_class(name: str = "mirrorgate", controller: str = CONTROLLER) -> dict[str, Any]:
    return {
        "apiVersion": GW,
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": controller},
    }


def gateway(port: int, name: str = "gw", class_name: str = "mirrorgate") -> dict[str, Any]:
    listener = {"name": "http", "port": port, "protocol": "HTTP"}
    spec = {"gatewayClassName": class_name, "listeners": [listener]}
    return {"apiVersion": GW, "kind": "Gateway", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def route(name: str, service: str, path: str = "/", parent: str = "gw", host: str | None = None) -> dict[str, Any]:
    rule = {
        "matches": [{"path": {"type": "PathPrefix", "value": path}}],
        "backendRefs": [{"name": service, "port": 8080}],
    }
    spec: dict[str, Any] = {"parentRefs": [{"name": parent}], "rules": [rule]}
    if host is not None:
        spec["hostnames"] = [host]
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def service(name: str, target: int = 8080) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"port": 8080, "targetPort": target}], "clusterIP": "10.0.0.1", "sessionAffinity": "None"},
    }


def endpoint_slice(service: str, port: int, name: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name or f"{service}-1",
            "namespace": "default",
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}, "nodeName": "n1"}],
        "ports": [{"port": port, "protocol": "TCP"}],
    }


def backend(api: FakeApiServer, name: str, port: int) -> None:
    """A Service ``name`` whose one endpoint is 127.0.0.1:``port``."""
    api.put("services", service(name))
    api.put("endpointslices", endpoint_slice(name, port))


def set_status(api: FakeApiServer, plural: str, name: str, status: dict[str, Any], namespace: str = "default") -> Obj:
    """Replace the stored ``status`` of an object, as another writer (a load balancer, a controller) would."""
    kind = api.kind(plural)
    ns = namespace if kind.namespaced else ""
    return api.store.replace_status(kind, ns, name, {"metadata": {"name": name}, "status": status})


def status_of(api: FakeApiServer, plural: str, name: str, namespace: str = "default") -> dict[str, Any]:
    kind = api.kind(plural)
    status = api.get(plural, name, namespace if kind.namespaced else "").get("status")
    return status if isinstance(status, dict) else {}


def status_writes(api: FakeApiServer) -> list[str]:
    """The paths of every write on a ``/status`` subresource so far."""
    return [w.path for w in api.writes if w.path.endswith("/status")]


async def start_kubernetes(
    kubeconfig: Path, *extra: str, leader_elect: bool = False, env: dict[str, str] | None = None
) -> GatewayProcess:
    """``python -m mirrorgate run --kubernetes --kubeconfig KUBECONFIG`` (one process unless told).

    Without ``leader_elect`` the process writes status without a Lease (``--no-leader-elect``);
    ``env`` adds environment variables (``POD_NAME``, ``MIRRORGATE_LEASE_TIMINGS``).
    """
    if "--workers" not in extra:
        extra = (*extra, "--workers", "1")
    if not leader_elect:
        extra = (*extra, "--no-leader-elect")
    base = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mirrorgate",
        "run",
        "--kubernetes",
        "--kubeconfig",
        str(kubeconfig),
        "--bind",
        "127.0.0.1",
        "--admin",
        "127.0.0.1:0",
        *extra,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**base, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    return GatewayProcess(proc)
