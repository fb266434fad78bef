"""End-to-end fixtures: real ``mirrorgate echo`` backends and an in-process gateway on loopback.

``gateway_for(yaml_text)`` writes the YAML (``$v1``, ``$v2``, ``$v3`` and ``$refused`` are
replaced by real ports), loads and translates it with the real control plane (bind 127.0.0.1),
and starts the data plane with every listener port remapped to an ephemeral one.
"""

import asyncio
import io
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from random import Random
from string import Template

import pytest

from mirrorgate.echo import EchoConfig, EchoServer, start_echo
from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane

GatewayFactory = Callable[[str], Awaitable[DataPlane]]


@pytest.fixture
async def echo_ports() -> AsyncIterator[dict[str, int]]:
    servers: list[EchoServer] = []
    ports: dict[str, int] = {}
    for name in ("v1", "v2", "v3"):
        srv = await start_echo(
            EchoConfig(port=0, bind="127.0.0.1", name=f"infra-backend-{name}-7d9f8c-x2x4q", namespace="infra"),
            log=io.StringIO(),
        )
        servers.append(srv)
        ports[name] = srv.port
    ports["refused"] = _refused_port()
    yield ports
    for srv in servers:
        await srv.close()


def _refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def gateway_for(tmp_path: Path, echo_ports: dict[str, int]) -> AsyncIterator[GatewayFactory]:
    started: list[DataPlane] = []

    async def make(text: str) -> DataPlane:
        path = tmp_path / f"gw{len(started)}.yaml"
        path.write_text(Template(text).substitute(echo_ports))
        table = load_table([str(path)], "127.0.0.1")
        ports = {s.port: 0 for s in table.servers}
        gw = DataPlane(table, port_overrides=ports, rng=Random(1234))
        await gw.start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        await gw.shutdown(1.0)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawBackend:
    """A scripted loopback backend: ``handler(reader, writer)`` runs per connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.tasks.discard(task)
            writer.close()

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await self.server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """The head of one bodiless request (raises IncompleteReadError at EOF)."""
    return await reader.readuntil(b"\r\n\r\n")


def single_backend_yaml(port: int, extra_rule: str = "") -> str:
    """A Gateway on port 80 routing everything to one Service at 127.0.0.1:``port``."""
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: mirrorgate}}
spec: {{controllerName: mirrorgate.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: mirrorgate
  listeners: [{{name: http, port: 80, protocol: HTTP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: raw, namespace: infra}}
spec: {{ports: [{{port: 8080, targetPort: {port}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: raw, namespace: infra, labels: {{kubernetes.io/service-name: raw}}}}
addressType: IPv4
endpoints: [{{addresses: [127.0.0.1]}}]
ports: [{{port: {port}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: raw, namespace: infra}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs: [{{name: raw, port: 8080}}]
{extra_rule}
"""
