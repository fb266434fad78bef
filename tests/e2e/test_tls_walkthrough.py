"""The README's "Mirror a sample of production to staging over TLS", run as written: its shell
blocks (the ``openssl`` commands when ``openssl`` is installed, else trustme certificates; the
here-doc making ``staging-ca.yaml``), ``examples/tls-mirror-to-staging.yaml`` with the ports moved
to free ones, two ``mirrorgate echo`` processes (staging with ``--tls-cert``/``--tls-key``) and
``mirrorgate run -f ... -f staging-ca.yaml --endpoints production=...``.
"""

import asyncio
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.runtime.conftest import GatewayProcess, Starter, gateways
from tests.support.backends import free_port
from tests.support.certs import Pki
from tests.support.client import request
from tests.support.readme import readme_blocks
from tests.support.waiting import until_async

__all__ = ["gateways"]  # the fixture, imported to be used here

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tls-mirror-to-staging.yaml"
SECTION = "## Mirror a sample of production to staging over TLS"
REQUESTS = 200


def make_certificates(tmp: Path) -> None:
    """The README's openssl block (without its ``cd``), or the same files from trustme."""
    if shutil.which("openssl"):
        script = "set -e\n" + "\n".join(ln for ln in readme_blocks(SECTION)[0].splitlines() if "mkdir" not in ln)
        subprocess.run(["bash", "-c", script], cwd=tmp, check=True, capture_output=True, timeout=60)
        return
    pki = Pki()
    leaf = pki.leaf("staging.localtest")
    (tmp / "ca.crt").write_text(pki.ca_pem)
    (tmp / "staging.crt").write_bytes(leaf.crt)
    (tmp / "staging.key").write_bytes(leaf.key)


def make_configmap(tmp: Path) -> None:
    """The README's here-doc block, as written."""
    heredoc = readme_blocks(SECTION)[1]
    assert "staging-ca.yaml" in heredoc
    subprocess.run(["bash", "-c", "set -e\n" + heredoc], cwd=tmp, check=True, timeout=60)


class EchoProcess:
    def __init__(self, proc: asyncio.subprocess.Process, lines: list[str]) -> None:
        self.proc = proc
        self.lines = lines

    @classmethod
    async def start(cls, *args: str) -> "EchoProcess":
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mirrorgate", "echo", "--bind", "127.0.0.1", *args,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        echo = cls(proc, [])
        await echo.wait_for("listening on port")
        return echo

    async def wait_for(self, text: str) -> None:
        assert self.proc.stderr is not None
        async with asyncio.timeout(20):
            while not any(text in line for line in self.lines):
                self.lines.append((await self.proc.stderr.readline()).decode())
                assert self.lines[-1], "echo exited"

    def echoed(self) -> list[str]:
        return [line for line in self.lines if line.startswith("Echoing back")]

    async def drain(self) -> None:
        """Read what is logged until 0.5 s pass without a line."""
        assert self.proc.stderr is not None
        while True:
            try:
                self.lines.append((await asyncio.wait_for(self.proc.stderr.readline(), 0.5)).decode())
            except TimeoutError:
                return


@pytest.fixture
async def echoes() -> AsyncIterator[list[EchoProcess]]:
    started: list[EchoProcess] = []
    yield started
    for echo in started:
        echo.proc.terminate()
        await echo.proc.wait()


async def test_walkthrough_mirrors_about_a_tenth_to_tls_staging(
    gateways: Starter, echoes: list[EchoProcess], tmp_path: Path
) -> None:
    make_certificates(tmp_path)
    make_configmap(tmp_path)
    production_port, staging_port, gateway_port = free_port(), free_port(), free_port()
    echoes.append(await EchoProcess.start("--port", str(production_port), "--name", "production-1-2"))
    tls = ("--tls-cert", str(tmp_path / "staging.crt"), "--tls-key", str(tmp_path / "staging.key"))
    echoes.append(await EchoProcess.start("--port", str(staging_port), "--name", "staging-1-2", *tls))
    production, staging_echo = echoes
    text = EXAMPLE.read_text()
    text = text.replace("port: 8080", f"port: {gateway_port}").replace("port: 8443", f"port: {staging_port}")
    (tmp_path / "example.yaml").write_text(text)
    gw = await gateways(
        tmp_path / "example.yaml",
        "-f",
        str(tmp_path / "staging-ca.yaml"),
        "--endpoints",
        f"production=127.0.0.1:{production_port}",
    )
    await gw.wait_line(r"serving \d+ listener")
    for _ in range(REQUESTS):
        r = await request(gateway_port, host=f"127.0.0.1:{gateway_port}")  # as curl sends it
        assert r.status == 200, r
        assert r.json()["pod"] == "production-1-2"
    await check_counts(gw, production, staging_echo, gateway_port)


async def check_counts(gw: GatewayProcess, production: EchoProcess, staging: EchoProcess, port: int) -> None:
    counters = await mirror_counters(gw)
    mirrored = counters["requests"]
    assert counters["sent"] == mirrored
    assert counters["sampled_out"] == REQUESTS - mirrored
    assert counters.get("dropped", 0) == 0
    assert 2 <= mirrored <= 50, mirrored  # 10% of 200: outside this, about one run in ten million
    await staging.wait_for("Echoing back")
    await production.drain()
    await staging.drain()
    assert len(production.echoed()) == REQUESTS
    assert len(staging.echoed()) == mirrored
    assert all(line.rstrip().endswith(f"host=127.0.0.1-shadow:{port}") for line in staging.echoed())


COUNTER = re.compile(r"^mirrorgate_mirror_(sent|requests|sampled_out|dropped)_total\{.*\} (\S+)$", re.M)


async def mirror_counters(gw: GatewayProcess) -> dict[str, int]:
    """The mirror counters once every request is either sent and answered or sampled out."""
    admin = await gw.admin_port()
    found: dict[str, int] = {}

    async def settled() -> bool:
        body = (await request(admin, path="/metrics", host="127.0.0.1")).body.decode()
        found.clear()
        found.update((m.group(1), int(float(m.group(2)))) for m in COUNTER.finditer(body))
        sent = found.get("sent", 0)
        return sent + found.get("sampled_out", 0) == REQUESTS and found.get("requests") == sent

    await until_async(settled, "every request counted by the mirror counters")
    return found
