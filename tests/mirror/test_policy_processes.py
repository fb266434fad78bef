"""``sampleBy`` across gateway processes: two separate gateway processes (the worker processes
``mirrorgate run --workers`` starts, each a fresh interpreter with its own hash seed) serve the
same routing table; the same keys sent to each reach the mirror backend from both or from neither,
as the documented hash predicts, and over many distinct keys the share is the configured one.

The table is translated from YAML by the real control plane and its mirror given the IR
``sample_by`` a MirrorPolicy translates to; each process gets it as a worker does, as a table frame
on its standard input.
"""

import asyncio
import hashlib
import io
import math
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from mirrorgate.echo import EchoConfig, start_echo
from mirrorgate.ir.table import RoutingTable, SampleBy
from mirrorgate.serve.config import RunConfig
from mirrorgate.serve.supervisor import WORKER_CODE
from mirrorgate.serve.worker import ENV_CONFIG, ENV_ID, ENV_STATUS_FD, table_frame
from tests.support.backends import Backend, free_port
from tests.support.client import Conn, encode_request
from tests.support.waiting import until, until_async

from .conftest import StartBackend
from .policy_tables import load, with_policy

_OUTCOMES = (
    "mirrorgate_mirror_sampled_out_total",
    "mirrorgate_mirror_dropped_total",
    "mirrorgate_mirror_requests_total",
)
PPM = 300_000
KEYS = [f"customer-{i:05d}" for i in range(2000)]
RULES = """  - matches: [{path: {type: PathPrefix, value: /}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 8080}}}]
    backendRefs: [{name: primary, port: 8080}]"""


def expected_in(value: bytes) -> bool:
    """Membership as docs/mirroring.md documents it, written here independently."""
    return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big") % 1_000_000 < PPM


class Gateway:
    """One gateway process serving ``table`` on its own port; ``metrics`` is the latest snapshot
    of its registry it reported (every second, on its status pipe)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, status: int) -> None:
        self.proc = proc
        self.port = port
        self.metrics = ""
        self.reader = threading.Thread(target=self._follow, args=(status,), daemon=True)
        self.reader.start()

    def _follow(self, status: int) -> None:
        with os.fdopen(status, "rb") as lines:
            for line in lines:
                event = msgspec.json.decode(line)
                if event.get("event") == "metrics":
                    self.metrics = event["text"]

    def outcomes(self) -> int:
        """Mirrors sampled out, dropped or completed, as last reported."""
        return sum(
            int(float(line.rsplit(" ", 1)[1])) for line in self.metrics.splitlines() if line.startswith(_OUTCOMES)
        )

    @classmethod
    def start(cls, table: RoutingTable, index: int, log: Path) -> "Gateway":
        port = free_port()
        config = RunConfig(paths=(), port_overrides={80: port}, admin=None, access_log="off", watch=False)
        status, theirs = os.pipe()
        try:
            with log.open("wb") as err:
                proc = subprocess.Popen(
                    [sys.executable, "-c", WORKER_CODE],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    pass_fds=(theirs,),
                    env={
                        **os.environ,
                        ENV_CONFIG: msgspec.json.encode(config).decode(),
                        ENV_ID: str(index),
                        ENV_STATUS_FD: str(theirs),
                    },
                )
        finally:
            os.close(theirs)
        assert proc.stdin is not None
        proc.stdin.write(table_frame(table))
        proc.stdin.flush()
        return cls(proc, port, status)

    async def serving(self) -> bool:
        assert self.proc.poll() is None, "the gateway process exited"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True

    def stop(self) -> None:
        """EOF on its standard input: the process stops gracefully (killed if it does not)."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(20)


@pytest.fixture
async def two_gateways(tmp_path: Path, start_backend: StartBackend) -> AsyncIterator[tuple[list[Gateway], Backend]]:
    primary = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="primary-7d9f8c-x2x4q"), log=io.StringIO())
    shadow = await start_backend()
    table = load(tmp_path, RULES, {"primary": primary.port, "shadow": shadow.port})
    table = with_policy(table, "shadow", ppm=PPM, sample_by=SampleBy(source="Header", name="x-customer"))
    gateways = [Gateway.start(table, i, tmp_path / f"gateway-{i}.log") for i in range(2)]
    try:
        for gw in gateways:
            await until_async(gw.serving, "the gateway process listening")
        yield gateways, shadow
    finally:
        for gw in gateways:
            gw.stop()
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

    # every request's mirror accounted for by each process
    await until(lambda: min(first.outcomes(), second.outcomes()) >= len(KEYS), "the mirrors' outcomes")
    assert mirrored("first") == mirrored("second") == expected
    assert len(shadow.seen) == 2 * len(expected)  # each key once per process
    n, p = len(KEYS), PPM / 1_000_000
    assert abs(len(expected) - n * p) <= 5 * math.sqrt(n * p * (1 - p))
