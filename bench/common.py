"""Pieces every benchmark shares: the mirrorgate binary, free ports, and the one-route
Gateway API configuration (primary Service + optional 100% mirror) written for local ports."""

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIRRORGATE = str(ROOT / ".venv" / "bin" / "mirrorgate")

_SERVICE = """---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
"""

_MIRROR = "[{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}}}]"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def route_yaml(port: int, primary: int, shadow: int | None) -> str:
    """A Gateway on ``port`` whose one route sends everything to 127.0.0.1:``primary`` and, when
    ``shadow`` is given, mirrors all of it to 127.0.0.1:``shadow``."""
    services = _SERVICE.format(name="primary", port=primary)
    if shadow is not None:
        services += _SERVICE.format(name="shadow", port=shadow)
    return f"""apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: bench}}
spec:
  gatewayClassName: mirrorgate
  listeners: [{{name: http, port: {port}, protocol: HTTP}}]
{services}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: bench}}
spec:
  parentRefs: [{{name: bench}}]
  rules:
  - backendRefs: [{{name: primary, port: 80}}]
    filters: {_MIRROR if shadow is not None else "[]"}
"""
