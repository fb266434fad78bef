"""`mirrorgate run` flags documented in the README and docs/behavior.md, through a real process."""

import asyncio
import json
import re
import signal
from pathlib import Path

import pytest

from mirrorgate.cli import main
from tests.runtime.conftest import Backend, HostRecorder, Starter, gateway_yaml, get, wait_hosts
from tests.support.backends import free_port
from tests.support.client import Conn as RawClient


@pytest.mark.parametrize(
    ("flags", "want"), [((), "example.com-shadow:{port}"), (("--no-shadow-host-suffix",), "example.com:{port}")]
)
async def test_shadow_host_suffix_flag(
    tmp_path: Path,
    backends: dict[str, Backend],
    recorder: HostRecorder,
    gateways: Starter,
    flags: tuple[str, ...],
    want: str,
) -> None:
    port = free_port()
    mirror = Backend(server=recorder, log=backends["m"].log, pod="rec")  # type: ignore[arg-type]  # has .port
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"], mirror))
    gw = await gateways(path, "--no-watch", *flags)
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    r = await get(port, "/shadow?x=1", host=f"example.com:{port}")
    assert r.status == 200
    await wait_hosts(recorder, 1)
    assert recorder.hosts == [want.format(port=port)]


async def test_access_log_to_a_file_as_json_and_off(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    log_file = tmp_path / "access.log"
    gw = await gateways(path, "--no-watch", "--access-log", str(log_file), "--access-log-json")
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    assert (await get(port, "/logged?q=1")).status == 200
    for _ in range(400):  # bounded: 20 s
        if log_file.exists() and log_file.read_text().strip():
            break
        await asyncio.sleep(0.05)
    record = json.loads(log_file.read_text().splitlines()[-1].split(" ", 2)[2])
    assert (record["method"], record["target"], record["status"]) == ("GET", "/logged?q=1", 200)
    assert gw.access == []  # nothing on stdout
    assert await gw.stop() == 0

    quiet = await gateways(path, "--no-watch", "--access-log", "off")
    await quiet.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    assert (await get(port, "/quiet")).status == 200
    assert await quiet.stop() == 0
    assert quiet.access == []
    assert not any("/quiet" in line for line in quiet.lines)


async def test_admin_endpoints_of_a_running_gateway(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"], backends["m"]))
    gw = await gateways(path, "--no-watch")
    admin = await gw.admin_port()
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    assert (await get(admin, "/healthz", host="127.0.0.1")).status == 200
    for _ in range(400):  # bounded: 20 s
        if (await get(admin, "/readyz", host="127.0.0.1")).status == 200:
            break
        await asyncio.sleep(0.05)
    assert (await get(admin, "/readyz", host="127.0.0.1")).status == 200
    dump = json.loads((await get(admin, "/config_dump", host="127.0.0.1")).body)
    assert dump["servers"][0]["port"] == port
    status = json.loads((await get(admin, "/status", host="127.0.0.1")).body)
    assert {i["kind"] for i in status["items"]} >= {"Gateway", "HTTPRoute"}
    assert status["lastReloadError"] is None
    assert (await get(port, "/m")).status == 200
    await backends["m"].log.wait_for("Echoing back request made to /m ")
    metrics = ""
    for _ in range(100):  # bounded: workers report their metrics to the supervisor every second
        metrics = (await get(admin, "/metrics", host="127.0.0.1")).body.decode()
        if "mirrorgate_mirror_sent_total{" in metrics:
            break
        await asyncio.sleep(0.1)
    assert "mirrorgate_mirror_sent_total{" in metrics


async def test_log_format_json(tmp_path: Path, backends: dict[str, Backend], gateways: Starter) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path, "--no-watch", "--log-format", "json")
    line = await gw.wait_line(rf'"message": "listening on 127\.0\.0\.1:{port}')
    record = json.loads(line.string)
    assert record["level"] == "info"
    assert record["logger"] == "mirrorgate"
    assert record["time"].endswith("Z")
    assert await gw.stop() == 0
    assert all(json.loads(x) for x in gw.lines if x.strip())


async def test_grace_bounds_how_long_shutdown_waits(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    """--grace 0.2: a request still in flight when the grace period ends is aborted (no reply),
    and the process still exits 0 — long before the backend would have answered (5 s)."""
    from tests.support.client import Conn, encode_request

    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path, "--no-watch", "--grace", "0.2")
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    conn = await Conn.open(port)
    await conn.send(encode_request("GET", "/slow?delay=5s"))
    await backends["a"].log.wait_for("Echoing back request made to /slow?delay=5s")
    gw.proc.send_signal(signal.SIGTERM)
    assert await gw.exited() == 0
    assert await conn.closed_by_peer()
    await conn.close()
    assert any("grace period over" in line for line in gw.lines)


async def test_limit_flag_through_a_real_process(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path, "--no-watch", "--limit", "keepalive-timeout=0.3", "--limit", "max-headers=5")
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    client = await RawClient.open(port)
    try:
        await client.send(b"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n")
        reply = await client.read_reply()
        assert reply is not None
        assert reply.status == 200
        assert await client.closed_by_peer()  # keep-alive timeout 0.3 s
    finally:
        await client.close()
    client = await RawClient.open(port)
    try:
        await client.send(b"GET /b HTTP/1.1\r\nHost: example.com\r\n" + b"X-N: v\r\n" * 5 + b"\r\n")
        reply = await client.read_reply()
        assert reply is not None
        assert reply.status == 431
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--limit", "max-headers=lots", "max-headers: expected a whole number, got 'lots'"),
        ("--mirror-limit", "max-concurrent-per-backend=0", "max-concurrent-per-backend: must be > 0, got '0'"),
    ],
)
def test_bad_limit_flag_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text("")
    assert main(["run", "-f", str(path), flag, value]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"mirrorgate run: {flag}: {message}"
    assert "Traceback" not in err


class Listening:
    """An asyncio server seen as a backend: what ``gateway_yaml`` needs is its port."""

    def __init__(self, server: asyncio.Server) -> None:
        self.port = int(server.sockets[0].getsockname()[1])


async def test_mirror_limit_flag_through_a_real_process(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    """A black-holed mirror with a cap of one and no queue: the first mirror holds the slot, the
    next two are dropped as over capacity, and the primary answers all three."""
    held: list[asyncio.StreamWriter] = []

    async def black_hole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts, reads, never answers
        await reader.read()

    hole = await asyncio.start_server(black_hole, "127.0.0.1", 0)
    try:
        port = free_port()
        mirror = Backend(server=Listening(hole), log=backends["m"].log, pod="hole")  # type: ignore[arg-type]  # has .port
        path = tmp_path / "gw.yaml"
        path.write_text(gateway_yaml([port], backends["a"], mirror))
        gw = await gateways(
            path,
            "--no-watch",
            "--workers",
            "1",
            "--mirror-limit",
            "max-concurrent-per-backend=1",
            "--mirror-limit",
            "max-queue-per-backend=0",
            "--mirror-limit",
            "timeout=60",
        )
        admin = await gw.admin_port()
        await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
        for i in range(3):
            assert (await get(port, f"/r{i}")).status == 200
        counts: dict[str, float] = {}
        for _ in range(100):  # bounded: workers report their metrics to the supervisor every second
            metrics = (await get(admin, "/metrics", host="127.0.0.1")).body.decode()
            counts = {}
            for m in re.finditer(r"^mirrorgate_mirror_(sent|dropped)_total\{([^}]*)\} (\S+)$", metrics, re.M):
                reason = re.search(r'reason="([^"]+)"', m.group(2))
                counts[m.group(1) + (f"/{reason.group(1)}" if reason else "")] = float(m.group(3))
            if counts.get("dropped/over_capacity") == 2:
                break
            await asyncio.sleep(0.1)
        assert counts == {"sent": 1.0, "dropped/over_capacity": 2.0}
    finally:
        for writer in held:
            writer.close()
        hole.close()
