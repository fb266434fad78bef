"""The runtime and its edges: graceful shutdown, the access log, the mirror hook, ``mirrorgate run``."""

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from mirrorgate.dataplane.protocol import HttpProtocol
from mirrorgate.dataplane.state import BodyTee, Shapes
from mirrorgate.ir.table import Mirror
from mirrorgate.mirror.head import MirrorHead, head_from_parts
from mirrorgate.mirror.mirrorlog import MirroredRequest
from mirrorgate.serve.config import StartupError, load_table
from mirrorgate.serve.plane import DataPlane
from tests.dataplane.conftest import GatewayFactory
from tests.support.backends import free_port
from tests.support.client import Conn, encode_request, request
from tests.support.waiting import until

CONFIG = (Path(__file__).parent / "e2e_data" / "gateway.yaml").read_text()
MIRRORED = (
    CONFIG
    + """
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: mirrored, namespace: infra}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /mirrored}}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Before-Mirror, value: "1"}]}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: infra-backend-v2, port: 8080}}}
    backendRefs: [{name: infra-backend-v1, port: 8080}]
"""
)


async def test_graceful_shutdown_finishes_in_flight(gateway_for: GatewayFactory) -> None:
    gw = await gateway_for(CONFIG)
    port = gw.port(80)
    idle = await Conn.open(port)
    busy = await Conn.open(port)
    await busy.send(encode_request("GET", "/v1/slow?delay=1s"))  # still running when seen, however slow the host
    await until(
        lambda: any(cast(HttpProtocol, c).running for c in gw.state.connections), "the slow request is in flight"
    )
    shutdown = asyncio.create_task(gw.shutdown(10.0))
    r = await busy.read_response()
    assert r.status == 200
    assert await busy.closed_by_peer()
    assert await idle.closed_by_peer()
    await shutdown
    with pytest.raises(ConnectionRefusedError):
        await Conn.open(port)
    await busy.close()
    await idle.close()


async def test_access_log_text_and_json(gateway_for: GatewayFactory, caplog: pytest.LogCaptureFixture) -> None:
    gw = await gateway_for(CONFIG)
    with caplog.at_level(logging.INFO, logger="mirrorgate.access"):
        await request(gw.port(80), path="/v1/logged?x=1", headers=[("X-Request-Id", "rid-1")])
        await request(gw.port(80), path="/missing")
        gw.state.access_log_json = True
        await request(gw.port(80), path="/v2/j")
    lines = [r.getMessage() for r in caplog.records if r.name == "mirrorgate.access"]
    assert len(lines) == 3
    assert '"GET /v1/logged?x=1 HTTP/1.1" 200' in lines[0]
    assert "route=httproute/infra/e2e/rule/0/match/0" in lines[0]
    assert "request_id=rid-1" in lines[0]
    assert "endpoint=127.0.0.1:" in lines[0]
    assert '"GET /missing HTTP/1.1" 404' in lines[1]
    record = json.loads(lines[2])
    assert record["status"] == 200
    assert record["route"].startswith("httproute/infra/e2e/rule/1/")
    assert set(record) >= {"time", "client", "method", "target", "bytes", "duration_ms", "endpoint", "request_id"}


class RecordingTee:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.ended = False

    def feed(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def end(self) -> None:
        self.ended = True

    def abort(self) -> None:
        raise AssertionError("not expected")


class RecordingDispatcher:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Mirror, ...], bytes, bytes, list[tuple[bytes, bytes]]]] = []
        self.tee = RecordingTee()
        self.heads: list[MirrorHead] = []

    def submit(
        self,
        mirrors: tuple[Mirror, ...],
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        has_body: bool,
        shapes: Shapes | None = None,
        client: tuple[bytes, Sequence[tuple[bytes, bytes]]] | None = None,
        request: MirroredRequest | None = None,
    ) -> BodyTee | None:
        assert shapes is None  # no MirrorPolicy settings in these routes
        assert client is None
        self.calls.append((mirrors, method, target, headers))
        return self.tee if has_body else None

    def admit(self, mirrors: tuple[Mirror, ...], request: MirroredRequest | None = None) -> list[Any] | None:
        return [mirrors]

    def admit_shaped(
        self,
        mirrors: tuple[Mirror, ...],
        shapes: Shapes,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        request: MirroredRequest | None = None,
    ) -> list[Any] | None:
        raise AssertionError("not expected")

    def refuse(
        self,
        mirrors: tuple[Mirror, ...],
        reason: str,
        target: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
        shapes: Shapes | None = None,
        client: tuple[bytes, Sequence[tuple[bytes, bytes]]] | None = None,
        request: MirroredRequest | None = None,
    ) -> None:
        raise AssertionError("not expected")

    def start_shaped(
        self,
        admitted: list[Any],
        parts: list[bytes],
        host_at: int,
        has_body: bool,
        content_length: int | None,
        is_head: bool,
        request: MirroredRequest | None = None,
    ) -> BodyTee | None:
        raise AssertionError("not expected")

    def start(
        self,
        admitted: list[Any],
        parts: list[bytes],
        host_at: int,
        has_body: bool,
        content_length: int | None,
        is_head: bool,
        request: MirroredRequest | None = None,
    ) -> BodyTee | None:
        head = head_from_parts(parts, host_at, has_body, content_length, True, is_head)
        self.heads.append(head)
        return self.tee if head.has_body else None

    def submit_compared(self, *args: Any, **kwargs: Any) -> tuple[BodyTee | None, None]:
        raise AssertionError("not expected: no mirror here compares responses")

    def start_compared(self, *args: Any, **kwargs: Any) -> tuple[BodyTee | None, None]:
        raise AssertionError("not expected: no mirror here compares responses")


async def test_mirror_hook_gets_filtered_head_and_body(gateway_for: GatewayFactory) -> None:
    gw = await gateway_for(MIRRORED)
    dispatcher = RecordingDispatcher()
    gw.state.mirror = dispatcher
    r = await request(gw.port(80), method="POST", path="/mirrored/x?a=1", body=b"hello mirror")
    assert r.status == 200
    ((mirrors, method, target, headers),) = dispatcher.calls
    assert mirrors[0].backend.endswith("infra-backend-v2:8080")
    assert (method, target) == (b"POST", b"/mirrored/x?a=1")
    names = dict(headers)
    assert names[b"x-before-mirror"] == b"1"
    assert names[b"x-request-id"] == r.json()["headers"]["X-Request-Id"][0].encode()
    assert b"".join(dispatcher.tee.chunks) == b"hello mirror"
    assert dispatcher.tee.ended
    assert (await request(gw.port(80), path="/v1")).status == 200
    assert len(dispatcher.calls) == 1  # only rules with mirrors call the hook


def test_load_table_reports_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: x}\nspec: 7\n")
    with pytest.raises(StartupError, match=r"bad\.yaml"):
        load_table([str(bad)], "127.0.0.1")


async def test_start_fails_cleanly_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        path = tmp_path / "gw.yaml"
        path.write_text(CONFIG.replace("$v1", "1").replace("$v2", "2").replace("$v3", "3").replace("$refused", "4"))
        gw = DataPlane(load_table([str(path)], "127.0.0.1"), port_overrides={80: taken})
        with pytest.raises(StartupError, match="cannot listen"):
            await gw.start()


async def test_cli_run_serves_and_exits_0_on_sigterm(tmp_path: Path, echo_ports: dict[str, int]) -> None:
    port = free_port()
    text = CONFIG.replace("port: 80, protocol", f"port: {port}, protocol")
    for name, value in echo_ports.items():
        text = text.replace(f"${name}", str(value))
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mirrorgate",
        "run",
        "-f",
        str(path),
        "--bind",
        "127.0.0.1",
        "--admin",
        "127.0.0.1:0",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stderr is not None
        line = await proc.stderr.readline()
        while line and b"listening on" not in line:
            line = await proc.stderr.readline()
        assert b"listening on 127.0.0.1:%d" % port in line
        r = await request(port, path="/v2/cli")
        assert r.json()["path"] == "/v2/cli"
        proc.send_signal(signal.SIGTERM)
        rest = await proc.stderr.read()
        assert await proc.wait() == 0
        assert b'"GET /v2/cli HTTP/1.1" 200' in rest or b"shutting down" in rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_cli_run_invalid_config_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: x}\nspec: 7\n")
    done = subprocess.run(
        [sys.executable, "-m", "mirrorgate", "run", "-f", str(bad)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert b"bad.yaml" in done.stderr


async def test_shutdown_aborts_what_outlives_the_grace_period(gateway_for: GatewayFactory) -> None:
    gw = await gateway_for(CONFIG)
    busy = await Conn.open(gw.port(80))
    await busy.send(encode_request("GET", "/v1/slow?delay=5s"))
    await until(
        lambda: any(cast(HttpProtocol, c).running for c in gw.state.connections), "the slow request is in flight"
    )
    await gw.shutdown(0.05)
    assert await busy.closed_by_peer()
    assert not gw.state.connections
    assert repr(gw.state.pool) == "<Pool in_use=0 idle=0 waiting=0>"
    await busy.close()
