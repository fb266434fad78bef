"""The seed documents, end to end: each bundled example served by the real gateway, with every
backend a real `mirrorgate echo` process, and a real client. The examples' EndpointSlice ports
(9001, 9002, 9003) are rewritten to the echo processes' ephemeral ports and the listeners bound on
ephemeral ports (`port_overrides`), so nothing needs a fixed or privileged port.

Mirror hits are counted from the echo processes' own "Echoing back request made to ..." lines,
as the Gateway API conformance suite counts them. Waits are bounded; no timed assertions.
"""

import asyncio
import hashlib
import math
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from random import Random

import pytest

from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane
from tests.support.client import Conn, Response, encode_request
from tests.support.waiting import until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Echo:
    """A `mirrorgate echo` process whose log goes to a file we can read at any time."""

    def __init__(self, name: str, namespace: str, log: Path) -> None:
        self.name = name
        self.log = log
        sink = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)  # the child keeps its own copy
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mirrorgate",
                "echo",
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--name",
                name,
                "--namespace",
                namespace,
            ],
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
        os.close(sink)
        self.port = 0

    async def wait_port(self) -> int:
        for _ in range(400):
            m = re.search(r"listening on port (\d+)", self.log.read_text(errors="replace"))
            if m:
                self.port = int(m.group(1))
                return self.port
            await asyncio.sleep(0.025)
        raise AssertionError(f"echo {self.name} did not start: {self.log.read_text()}")

    def lines(self) -> list[str]:
        return [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.startswith("Echoing back")]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def logged_at_least(echo: Echo, n: int) -> bool:
    return len(echo.lines()) >= n


class Seed:
    def __init__(self, gateway: DataPlane, echoes: dict[int, Echo]) -> None:
        self.gateway = gateway
        self.echoes = echoes

    def port(self, ir_port: int) -> int:
        return self.gateway.port(ir_port)

    def echo(self, name_prefix: str) -> Echo:
        return next(e for e in self.echoes.values() if e.name.startswith(name_prefix))


@pytest.fixture
async def seed(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    started: list[Seed] = []
    echoes: list[Echo] = []

    async def start(example: str, backends: dict[int, tuple[str, str]], listener_ports: tuple[int, ...]) -> Seed:
        text = (EXAMPLES / example).read_text()
        by_port = {}
        for fixed, (name, ns) in backends.items():
            echo = Echo(name, ns, tmp_path / f"{name}.log")
            echoes.append(echo)
            by_port[fixed] = echo
        for fixed, echo in by_port.items():
            port = await echo.wait_port()
            text, count = re.subn(rf"(\n\s*port: ){fixed}\b", rf"\g<1>{port}", text)
            assert count >= 1, f"{example}: no EndpointSlice port {fixed}"
        path = tmp_path / example
        path.write_text(text)
        gateway = DataPlane(
            load_table([str(path)], "127.0.0.1"),
            port_overrides=dict.fromkeys(listener_ports, 0),
            rng=Random(3171),  # the sampling tests are exact, not a 0.3% gamble per run
        )
        await gateway.start()
        s = Seed(gateway, by_port)
        started.append(s)
        return s

    yield start
    for s in started:
        await s.gateway.shutdown(2.0)
    for e in echoes:
        e.stop()


async def get_many(
    port: int, host: str, paths: list[str], method: str = "GET", body: bytes | None = None
) -> list[Response]:
    conn = await Conn.open(port)
    out = []
    try:
        for path in paths:
            await conn.send(encode_request(method, path, host=host, body=body))
            out.append(await conn.read_response())
    finally:
        await conn.close()
    return out


def within_3_sigma(hits: int, n: int, p: float) -> bool:
    margin = 3 * math.sqrt(n * p * (1 - p))
    return n * p - margin <= hits <= n * p + margin


async def test_envoy_gateway_mirror_walkthrough(seed) -> None:
    s = await seed(
        "envoy-gateway-mirror.yaml",
        {9001: ("backend-79665566f5-s589f", "default"), 9002: ("backend-2-6f9d7c9b8-k4x2p", "default")},
        (80,),
    )
    paths = [f"/get?seed=envoy&i={i}" for i in range(20)]
    answers = await get_many(s.port(80), "backends.example", paths)
    assert [r.status for r in answers] == [200] * 20
    assert {r.json()["pod"] for r in answers} == {"backend-79665566f5-s589f"}
    mirror = s.echo("backend-2")
    await until(lambda: len(mirror.lines()) >= 20)
    assert sorted(re.search(r"made to (\S+) to", ln).group(1) for ln in mirror.lines()) == sorted(paths)  # type: ignore[union-attr]


async def test_envoy_gateway_multiple_backend_refs_with_mirror(seed) -> None:
    s = await seed(
        "envoy-gateway-mirror-multiple-backends.yaml",
        {
            9001: ("backend-79665566f5-s589f", "default"),
            9002: ("backend-2-6f9d7c9b8-k4x2p", "default"),
            9003: ("backend-3-7c4b9d5f6-q8w3z", "default"),
        },
        (80,),
    )
    answers = await get_many(s.port(80), "backends.example", [f"/get?i={i}" for i in range(60)])
    pods = [r.json()["pod"].rsplit("-", 2)[0] for r in answers]
    assert set(pods) == {"backend", "backend-3"}  # split between the two backendRefs, never the mirror
    mirror = s.echo("backend-2")
    await until(lambda: len(mirror.lines()) >= 60)
    assert len(mirror.lines()) == 60


async def test_envoy_gateway_multiple_mirrors(seed) -> None:
    s = await seed(
        "envoy-gateway-multiple-mirrors.yaml",
        {
            9001: ("backend-79665566f5-s589f", "default"),
            9002: ("backend-2-6f9d7c9b8-k4x2p", "default"),
            9003: ("backend-3-7c4b9d5f6-q8w3z", "default"),
        },
        (80,),
    )
    answers = await get_many(s.port(80), "backends.example", [f"/get?i={i}" for i in range(25)])
    assert {r.json()["pod"] for r in answers} == {"backend-79665566f5-s589f"}
    for name in ("backend-2", "backend-3"):
        mirror = s.echo(name)
        await until(partial(logged_at_least, mirror, 25))
        assert len(mirror.lines()) == 25, name


async def test_istio_mesh_mirror_walkthrough(seed) -> None:
    s = await seed(
        "istio-mesh-mirror.yaml",
        {9001: ("httpbin-v1-7d8f6c9b5-2lq9x", "default"), 9002: ("httpbin-v2-5b6c8d7f4-9pz7m", "default")},
        (8000,),
    )
    answers = await get_many(s.port(8000), "httpbin:8000", [f"/headers?n={i}" for i in range(10)])
    assert {r.json()["pod"] for r in answers} == {"httpbin-v1-7d8f6c9b5-2lq9x"}
    assert {r.json()["host"] for r in answers} == {"httpbin:8000"}
    v2 = s.echo("httpbin-v2")
    await until(lambda: len(v2.lines()) >= 10)
    assert len(v2.lines()) == 10


async def test_istio_mesh_default_route_sends_everything_to_v1(seed) -> None:
    s = await seed(
        "istio-mesh-default-route.yaml",
        {9001: ("httpbin-v1-7d8f6c9b5-2lq9x", "default"), 9002: ("httpbin-v2-5b6c8d7f4-9pz7m", "default")},
        (8000,),
    )
    answers = await get_many(s.port(8000), "httpbin:8000", ["/headers"] * 10)
    assert {r.json()["pod"] for r in answers} == {"httpbin-v1-7d8f6c9b5-2lq9x"}
    await asyncio.sleep(0.2)
    assert s.echo("httpbin-v2").lines() == []


async def test_fsm_post_body_is_mirrored_byte_identical(seed) -> None:
    s = await seed("fsm-mirror.yaml", {9001: ("pipy", "server"), 9002: ("pipy-mirror", "server")}, (8000,))
    body = b"Hello world"
    answers = await get_many(s.port(8000), "127.0.0.1:8000", ["/"] * 3, method="POST", body=body)
    assert [r.status for r in answers] == [200] * 3
    assert {r.json()["pod"] for r in answers} == {"pipy"}
    digest = hashlib.sha256(body).hexdigest()
    assert {r.header("X-Echo-Body-Sha256") for r in answers} == {digest}
    mirror = s.echo("pipy-mirror")
    await until(lambda: len(mirror.lines()) >= 3)
    assert all(f"body_length=11 body_sha256={digest}" in ln for ln in mirror.lines())
    assert len(mirror.lines()) == 3


@pytest.mark.parametrize(("example", "rate"), [("gep-3171-percent.yaml", 0.42), ("gep-3171-fraction.yaml", 0.005)])
async def test_gep_3171_sampling_within_3_sigma(seed, example: str, rate: float) -> None:
    s = await seed(
        example, {9001: ("foo-v1-6d9c7b8f5-7xk2m", "default"), 9002: ("foo-v2-8b7f6d5c4-p3n9q", "default")}, (80,)
    )
    n = 1000
    paths = [f"/?gateway-api-conformance-request-id={i}" for i in range(n)]
    conns = await asyncio.gather(*(get_many(s.port(80), "mirror.example", paths[k::4]) for k in range(4)))
    assert all(r.status == 200 for batch in conns for r in batch)
    await until(lambda: s.gateway.mirror.stats().tasks == 0)
    sent = s.gateway.mirror.stats().sent
    await until(lambda: len(s.echo("foo-v2").lines()) >= sent)  # every copy sent is in the echo's log
    hits = len(s.echo("foo-v2").lines())
    assert hits == sent
    assert within_3_sigma(hits, n, rate), (hits, n * rate)
