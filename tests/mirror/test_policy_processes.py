"""``sampleBy`` across gateway processes: two real ``mirrorgate run -f FILE`` processes (each a
fresh interpreter, given a different ``PYTHONHASHSEED``) serve the same YAML MirrorPolicy keyed
on a header; the same keys sent to each reach the mirror backend from both or from neither, as
the documented hash predicts, and over many distinct keys the share is the configured one.
"""

import asyncio
import hashlib
import io
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mirrorgate.echo import EchoConfig, start_echo
from tests.runtime.conftest import GatewayProcess, get
from tests.support.backends import Backend, free_port
from tests.support.client import Conn, encode_request
from tests.support.manifests import gateway_doc, route_doc, service_docs
from tests.support.waiting import until_async

from .conftest import StartBackend

_OUTCOMES = re.compile(
    r"^mirrorgate_mirror_(?:sampled_out|dropped|requests)_total\{.*\} (\S+)$",
    re.M,
)
PERCENT = 30
KEYS = [f"customer-{i:05d}" for i in range(2000)]
POLICY = f"""---
apiVersion: mirrorgate.dev/v1alpha1
kind: MirrorPolicy
metadata: {{name: shadow, namespace: shop}}
spec:
  backendRef: {{name: shadow, port: 8080}}
  percent: {PERCENT}
  sampleBy: {{header: x-customer, missing: Skip}}
"""
RULES = """  - matches: [{path: {type: PathPrefix, value: /}}]
    filters: [{type: ExtensionRef, extensionRef: {group: mirrorgate.dev, kind: MirrorPolicy, name: shadow}}]
    backendRefs: [{name: primary, port: 8080}]"""


def expected_in(value: bytes) -> bool:
    """Membership as docs/mirroring.md documents it, written here independently."""
    return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big") % 1_000_000 < PERCENT * 10_000


def config(port: int, primary: int, shadow: int) -> str:
    """One Gateway listening on ``port``, the MirrorPolicy, and a route mirroring through it."""
    return (
        gateway_doc("shop", f"{{name: http, port: {port}, protocol: HTTP}}")
        + service_docs("primary", primary, "shop")
        + service_docs("shadow", shadow, "shop")
        + POLICY
        + route_doc(RULES, namespace="shop")
    )


class Gateway:
    """A ``mirrorgate run`` process serving on ``port``, its admin server on ``admin``."""

    def __init__(self, proc: GatewayProcess, port: int, admin: int) -> None:
        self.proc = proc
        self.port = port
        self.admin = admin

    async def outcomes(self) -> int:
        """Mirrors sampled out, dropped or completed, from its ``/metrics``."""
        r = await get(self.admin, "/metrics", host="127.0.0.1")
        return int(sum(float(v) for v in _OUTCOMES.findall(r.body.decode())))


@pytest.fixture
async def two_gateways(
    tmp_path: Path, start_backend: StartBackend, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[list[Gateway], Backend]]:
    primary = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="primary-7d9f8c-x2x4q"), log=io.StringIO())
    shadow = await start_backend()
    procs: list[GatewayProcess] = []
    try:
        gateways = []
        for i in range(2):
            port = free_port()
            path = tmp_path / f"gateway-{i}.yaml"
            path.write_text(config(port, primary.port, shadow.port))
            monkeypatch.setenv("PYTHONHASHSEED", str(i + 1))  # str hashes differ between the two
            proc = await GatewayProcess.start(path, "--no-watch", "--access-log", "off")
            procs.append(proc)
            admin = await proc.admin_port()
            await proc.wait_line(rf"listening on 127\.0\.0\.1:{port}")
            gateways.append(Gateway(proc, port, admin))
        yield gateways, shadow
        for proc in procs:
            assert await proc.stop() == 0
    finally:
        for proc in procs:
            await proc.kill()
        await primary.close()


async def send_all(gw: Gateway, label: str) -> None:
    async with await Conn.open(gw.port) as conn:
        for key in KEYS:
            await conn.send(encode_request("GET", f"/{label}/{key}", "shop.example", [("X-Customer", key)]))
            assert (await conn.read_response()).status == 200


async def test_the_same_keys_are_mirrored_by_every_process_and_the_share_holds(
    two_gateways: tuple[list[Gateway], Backend],
) -> None:
    (first, second), shadow = two_gateways
    await asyncio.gather(send_all(first, "first"), send_all(second, "second"))
    expected = {k for k in KEYS if expected_in(k.encode())}

    def mirrored(label: str) -> set[str]:
        return {s.target.rsplit("/", 1)[1] for s in shadow.seen if s.target.startswith(f"/{label}/")}

    async def accounted() -> bool:  # every request's mirror accounted for by each process
        return min(await first.outcomes(), await second.outcomes()) >= len(KEYS)

    await until_async(accounted, "the mirrors' outcomes")
    assert mirrored("first") == mirrored("second") == expected
    assert len(shadow.seen) == 2 * len(expected)  # each key once per process
    n, p = len(KEYS), PERCENT / 100
    assert abs(len(expected) - n * p) <= 5 * math.sqrt(n * p * (1 - p))
