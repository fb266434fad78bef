"""Objects for the fake API server and ``mirrorgate run --kubernetes`` as a real process."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.kube.fakeapi import FakeApiServer
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


async def start_kubernetes(kubeconfig: Path, *extra: str) -> GatewayProcess:
    """``python -m mirrorgate run --kubernetes --kubeconfig KUBECONFIG`` (one process unless told)."""
    if "--workers" not in extra:
        extra = (*extra, "--workers", "1")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
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
        "--no-leader-elect",
        *extra,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, "PYTHONUNBUFFERED": "1"},
    )
    return GatewayProcess(proc)
