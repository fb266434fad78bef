"""End-to-end fixtures: real ``mirrorgate echo`` backends and an in-process gateway on loopback.

``gateway_for(yaml_text)`` writes the YAML (``$v1``, ``$v2``, ``$v3`` and ``$refused`` are
replaced by real ports), loads and translates it with the real control plane (bind 127.0.0.1),
and starts the data plane with every listener port remapped to an ephemeral one.
"""

import io
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from random import Random
from string import Template

import pytest

from mirrorgate.dataplane import accesslog
from mirrorgate.dataplane.accesswriter import AccessWriter
from mirrorgate.echo import EchoConfig, EchoServer, start_echo
from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane
from tests.support.backends import free_port

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
    ports["refused"] = free_port()
    yield ports
    for srv in servers:
        await srv.close()


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


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """The process's access log written to a file through an ``AccessWriter``."""
    path = tmp_path / "access.log"
    access = logging.getLogger("mirrorgate.access")
    level, disabled = access.level, access.disabled
    access.setLevel(logging.INFO)
    access.disabled = False
    accesslog.install(AccessWriter(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)))
    yield path
    accesslog.install(None)
    access.setLevel(level)
    access.disabled = disabled


def lines_of(path: Path) -> list[str]:
    accesslog.drain(5.0)
    return path.read_text().splitlines()
