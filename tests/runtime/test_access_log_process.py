"""The access log of a real ``mirrorgate run``: a stdout nobody reads does not stop the gateway
(lines are dropped and counted in ``mirrorgate_access_log_dropped_total``); SIGTERM writes what
is buffered; every request of a run is in the log when nothing was dropped."""

import asyncio
import re
import signal
from pathlib import Path

import pytest

from tests.runtime.conftest import WAIT, Backend, Starter, gateway_yaml, get, send_all, stuck_stdout_gateway
from tests.support.backends import free_port

LINE = re.compile(r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} 127\.0\.0\.1:\d+ "GET /n/(\d+) HTTP/1\.1" 200 ')


async def dropped(admin: int) -> float:
    r = await get(admin, "/metrics", host="127.0.0.1")
    m = re.search(r"^mirrorgate_access_log_dropped_total (\S+)$", r.body.decode(), re.M)
    assert m is not None, r.body.decode()
    return float(m.group(1))


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_writes_every_line_of_the_run(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter, workers: str
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    log_file = tmp_path / "access.log"
    gw = await gateways(path, "--no-watch", "--access-log", str(log_file), "--workers", workers)
    admin = await gw.admin_port()
    await gw.count_lines(rf"listening on 127\.0\.0\.1:{port}", int(workers))
    paths = [[(f"/n/{c * 100 + i}", None) for i in range(100)] for c in range(3)]
    await asyncio.gather(*(send_all(port, p, host="example.com") for p in paths))
    if workers == "1":  # a supervisor's merged metrics lag by a snapshot
        assert await dropped(admin) == 0
    assert await gw.stop() == 0  # at once: the last lines are still buffered
    text = await asyncio.to_thread(log_file.read_text)
    seen = [int(m.group(1)) for line in text.splitlines() if (m := LINE.match(line))]
    assert sorted(seen) == list(range(300))


async def test_a_stdout_nobody_reads_drops_lines_and_keeps_serving(
    tmp_path: Path, backends: dict[str, Backend]
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    async with stuck_stdout_gateway(tmp_path, path, port) as (proc, admin):
        long = "/n/" + "a" * 8000  # ~8 KB lines: 1 MiB of buffer is ~130 of them
        async with asyncio.timeout(WAIT):
            await send_all(port, [(f"{long}{i}", None) for i in range(400)], host="example.com")
        assert await dropped(admin) > 0
        async with asyncio.timeout(WAIT):
            await send_all(port, [("/n/after", None)], host="example.com")
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT):  # the drain gives up on a stuck sink
            assert await proc.wait() == 0
