"""Pieces every benchmark shares: the mirrorgate binary, free ports, and the one-route
Gateway API configuration (primary Service + optional 100% mirror) written for local ports."""

import os
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIRRORGATE = str(ROOT / ".venv" / "bin" / "mirrorgate")

# A Service ``name`` and its EndpointSlice: one endpoint, 127.0.0.1:``port``.
SERVICE = """---
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


def route_yaml(port: int, primary: int, shadow: int | None, filters: str | None = None) -> str:
    """A Gateway on ``port`` whose one route sends everything to 127.0.0.1:``primary`` and, when
    ``shadow`` is given, mirrors all of it to 127.0.0.1:``shadow`` (a Service ``shadow``; the
    route's ``filters``, when given, instead of a RequestMirror to it)."""
    services = SERVICE.format(name="primary", port=primary)
    if shadow is not None:
        services += SERVICE.format(name="shadow", port=shadow)
    if filters is None:
        filters = _MIRROR if shadow is not None else "[]"
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
    filters: {filters}
"""


_TICK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (an NGINX master and its workers, a supervisor and its
    mirrorgate workers, through ``taskset``'s exec), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_sample(pids: list[int]) -> tuple[float, float]:
    """(user, system) CPU seconds used so far by ``pids`` (``utime``, ``stime`` of /proc/PID/stat)."""
    user = system = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone
            continue
        user += int(fields[11]) / _TICK
        system += int(fields[12]) / _TICK
    return user, system


def cpu_per_request(before: tuple[float, float], after: tuple[float, float], requests: int) -> tuple[float, float]:
    """(user, system) microseconds of CPU per request between two ``cpu_sample``s."""
    n = max(requests, 1)
    return (after[0] - before[0]) / n * 1e6, (after[1] - before[1]) / n * 1e6
