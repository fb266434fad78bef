"""``mirrorgate run --workers N`` and graceful stop, as real processes: both workers serve, their
counters add up on ``/metrics``, a killed worker comes back, SIGTERM drains a slow request."""

import asyncio
import os
import re
import signal
import socket
from pathlib import Path

import pytest

from tests.runtime.conftest import (
    WAIT,
    Backend,
    GatewayProcess,
    Starter,
    admin_json,
    gateway_yaml,
    get,
    pod_of,
)
from tests.support.backends import free_port
from tests.support.client import Conn, encode_request

MIRRORED = re.compile(r'^mirrorgate_mirror_requests_total\{[^}]*outcome="2xx"[^}]*\} ([0-9.e+]+)$', re.M)


async def mirrored_total(admin: int) -> float:
    r = await get(admin, "/metrics", host="127.0.0.1")
    assert r.status == 200
    return sum(float(v) for v in MIRRORED.findall(r.body.decode()))


async def wait_mirrored(admin: int, n: int) -> None:
    """Mirrors complete after their primaries: wait until the merged counter reaches ``n``."""
    async with asyncio.timeout(WAIT):
        while True:
            total = await mirrored_total(admin)
            if total >= n:
                break
            await asyncio.sleep(0.05)  # workers send snapshots every second; poll, do not time
    assert total == n


async def worker_pid(gw: GatewayProcess, index: int, after: int = 0) -> int:
    return int((await gw.wait_line(rf"worker {index} started \(pid (\d+)\)", after=after)).group(1))


async def test_two_workers_serve_add_up_and_restart(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"], mirror=backends["m"]))
    gw = await gateways(path, "--workers", "2")
    admin = await gw.admin_port()
    await gw.wait_line(r"worker 0 ready")
    await gw.wait_line(r"worker 1 ready")
    assert (await get(admin, "/readyz", host="127.0.0.1")).status == 200

    for i in range(40):  # fresh connections: SO_REUSEPORT spreads them over both workers
        assert pod_of(await get(port, f"/w/{i}")) == backends["a"].pod
    await gw.count_lines(r'"GET /w/\d+ HTTP/1.1" 200', 40, where=gw.access)
    workers = {int(m.group(1)) for line in gw.access if (m := re.search(r" worker=(\d+)$", line))}
    assert workers == {0, 1}
    await wait_mirrored(admin, 40)
    metrics = (await get(admin, "/metrics", host="127.0.0.1")).body.decode()
    assert re.search(r'^mirrorgate_reloads_total\{outcome="failed"\} 0\.0$', metrics, re.M), metrics

    first = await worker_pid(gw, 0)
    mark = len(gw.lines)
    os.kill(first, signal.SIGKILL)
    await gw.wait_line(r"worker 0 exited with code -9; restarting", after=mark)
    second = await worker_pid(gw, 0, after=mark)
    assert second != first
    await gw.wait_line(r"worker 0 ready", after=mark)
    for i in range(20):
        assert (await get(port, f"/after/{i}")).status == 200
    await wait_mirrored(admin, 60)  # the dead worker's counts still count
    assert await gw.stop() == 0
    assert not any("Traceback" in line for line in gw.lines), "\n".join(gw.lines)


async def test_workers_reload_together(tmp_path: Path, backends: dict[str, Backend], gateways: Starter) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path, "--workers", "2", "--no-watch")
    await gw.wait_line(r"worker 0 ready")
    await gw.wait_line(r"worker 1 ready")
    path.write_text(gateway_yaml([port], backends["b"]))
    gw.proc.send_signal(signal.SIGHUP)
    await gw.wait_line(r"\[worker 0\] reloaded: 1 servers, 1 routes")
    await gw.wait_line(r"\[worker 1\] reloaded: 1 servers, 1 routes")
    for i in range(20):
        assert pod_of(await get(port, f"/r/{i}")) == backends["b"].pod
    assert await gw.stop() == 0


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_drains_an_in_flight_slow_request(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter, workers: str
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path, "--workers", workers)
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    if workers == "2":
        await gw.wait_line(r"worker 1 ready")
        await gw.wait_line(r"worker 0 ready")
    conn = await Conn.open(port)
    await conn.send(encode_request("GET", "/slow?delay=1s"))
    await backends["a"].log.wait_for("Echoing back request made to /slow?delay=1s")
    gw.proc.send_signal(signal.SIGTERM)
    r = await conn.read_response()
    assert r.status == 200
    assert r.json()["path"] == "/slow?delay=1s"
    assert await conn.closed_by_peer()
    await conn.close()
    assert await gw.exited() == 0
    assert any("shutting down" in line for line in gw.lines)


async def test_a_worker_that_cannot_bind_fails_the_start(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        path = tmp_path / "gw.yaml"
        path.write_text(gateway_yaml([port], backends["a"]))
        gw = await gateways(path, "--workers", "2")
        async with asyncio.timeout(WAIT):
            code = await gw.proc.wait()
    await gw.kill()
    assert code == 1
    assert any("cannot listen" in line for line in gw.lines)
    assert any("before it was ready" in line for line in gw.lines)


def test_workers_flag_rejects_nonsense() -> None:
    from mirrorgate.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["run", "-f", "x.yaml", "--workers", "0"])
    assert exc.value.code == 2


async def reload_error(admin: int) -> dict[str, list[str]]:
    """``lastReloadError`` of ``/status`` once the supervisor has it: a worker logs its failure
    before it reports it, so the log line can come first."""
    async with asyncio.timeout(WAIT):
        while True:
            last = (await admin_json(admin, "/status"))["lastReloadError"]
            if last is not None:
                assert isinstance(last, dict)
                return last
            await asyncio.sleep(0.01)


async def test_a_reload_error_in_a_worker_shows_on_status(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path, "--workers", "2", "--no-watch")
    admin = await gw.admin_port()
    await gw.wait_line(r"worker 0 ready")
    await gw.wait_line(r"worker 1 ready")
    with socket.socket() as taken:  # valid config, but its new port cannot be bound by the workers
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        path.write_text(gateway_yaml([port, busy], backends["b"]))
        gw.proc.send_signal(signal.SIGHUP)
        await gw.wait_line(r"\[worker 0\] reload failed")
        await gw.wait_line(r"\[worker 1\] reload failed")
        last = await reload_error(admin)
    assert any(e.startswith("worker ") and "cannot listen" in e for e in last["errors"])
    assert pod_of(await get(port)) == backends["a"].pod  # the workers kept their old table
    assert await gw.stop() == 0


async def test_a_worker_restarted_while_the_files_are_broken_serves_the_last_good_table(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path, "--workers", "2")
    await gw.wait_line(r"worker 0 ready")
    await gw.wait_line(r"worker 1 ready")
    path.write_text(gateway_yaml([port], backends["b"]))
    await gw.wait_line(r"\[worker 0\] reloaded: 1 servers, 1 routes")
    await gw.wait_line(r"\[worker 1\] reloaded: 1 servers, 1 routes")
    path.write_text("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: x}\nspec: 7\n")
    await gw.wait_line(r"reload failed")
    mark = len(gw.lines)
    os.kill(await worker_pid(gw, 0), signal.SIGKILL)
    await gw.wait_line(r"worker 0 ready", after=mark)
    for i in range(20):  # fresh connections reach both workers, the new one included
        assert pod_of(await get(port, f"/k/{i}")) == backends["b"].pod
    await gw.count_lines(r'"GET /k/\d+ HTTP/1.1" 200', 20, where=gw.access)
    assert any(" worker=0" in line for line in gw.access if '"GET /k/' in line)
    assert await gw.stop() == 0


async def test_workers_serve_a_config_read_from_stdin(backends: dict[str, Backend], gateways: Starter) -> None:
    port = free_port()
    gw = await gateways("-", "--workers", "2", stdin_text=gateway_yaml([port], backends["a"]))
    await gw.wait_line(r"worker 0 ready")
    await gw.wait_line(r"worker 1 ready")
    assert pod_of(await get(port)) == backends["a"].pod
    gw.proc.send_signal(signal.SIGHUP)  # reloads reuse what was read at start
    await gw.wait_line(r"reloaded: 1 servers, 1 routes \(unchanged\)")
    assert await gw.stop() == 0
