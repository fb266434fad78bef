"""``mirrorgate run --kubernetes`` at scale, against the in-process fake API server.

1,000 HTTPRoutes (``/r<i>`` -> Service ``svc-<i>``), 1,000 Services and their EndpointSlices
(every endpoint is one local echo backend). Prints the time from process start to ``/readyz``
200, the time from one route change (a new path) to that path serving, as the median of
``--changes`` changes, and the gateway's RSS once ready.

Targets: ready <= 10 s, one change serving <= 1 s (aim 0.3 s), RSS <= 300 MB.

Run: ``.venv/bin/python bench/kube_scale.py [--routes N] [--changes N]``.
"""

import argparse
import asyncio
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, free_port

from mirrorgate.echo import EchoConfig, start_echo

sys.path.insert(0, str(ROOT))  # the fake API server of the tests
from tests.kube.cluster import backend, gateway, gateway_class, route
from tests.kube.fakeapi import FakeApiServer

DEADLINE = 120.0


async def status_of(port: int, path: str, host: str = "bench.example") -> int:
    """The status code of one GET, 0 when the connection fails."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        line = await reader.readline()
        await reader.read()
        parts = line.split()
        return int(parts[1]) if len(parts) > 1 else 0
    except OSError:
        return 0
    finally:
        writer.close()


async def until_status(port: int, path: str, want: int, host: str = "bench.example") -> None:
    end = time.monotonic() + DEADLINE
    while await status_of(port, path, host) != want:
        if time.monotonic() > end:
            raise SystemExit(f"timed out waiting for {path} -> {want}")
        await asyncio.sleep(0.005)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fill(api: FakeApiServer, routes: int, listener: int, echo_port: int) -> None:
    api.put("gatewayclasses", gateway_class())
    api.put("gateways", gateway(listener))
    for i in range(routes):
        backend(api, f"svc-{i}", echo_port)
        api.put("httproutes", route(f"r-{i}", f"svc-{i}", f"/r{i}"))


async def start_gateway(kubeconfig: Path, admin: int) -> asyncio.subprocess.Process:
    args = ["run", "--kubernetes", "--kubeconfig", str(kubeconfig), "--bind", "127.0.0.1"]
    args += ["--admin", f"127.0.0.1:{admin}", "--no-leader-elect", "--workers", "1", "--access-log", "off"]
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mirrorgate", *args, env=env, stderr=subprocess.DEVNULL
    )


async def measure(routes: int, changes: int) -> dict[str, Any]:
    echo = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="echo"), log=io.StringIO())
    listener, admin = free_port(), free_port()
    async with FakeApiServer(history=100_000) as api:
        fill(api, routes, listener, echo.port)
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = api.write_kubeconfig(Path(tmp) / "kubeconfig")
            began = time.monotonic()
            proc = await start_gateway(kubeconfig, admin)
            try:
                await until_status(admin, "/readyz", 200, host="127.0.0.1")
                ready = time.monotonic() - began
                rss = rss_mb(proc.pid)
                await until_status(listener, f"/r{routes - 1}", 200)
                took = []
                for k in range(changes):
                    i = (k * 97) % routes
                    api.put("httproutes", route(f"r-{i}", f"svc-{i}", f"/changed-{k}"))
                    t0 = time.monotonic()
                    await until_status(listener, f"/changed-{k}", 200)
                    took.append(time.monotonic() - t0)
                    await asyncio.sleep(0.3)
            finally:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 30)
    await echo.close()
    return {"ready_s": ready, "change_median_s": statistics.median(took), "changes_s": took, "rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=7)
    args = parser.parse_args()
    out = asyncio.run(measure(args.routes, args.changes))
    print(f"routes, services, endpoint slices: {args.routes} each")
    print(f"start -> ready: {out['ready_s']:.2f} s (target <= 10 s)")
    print(
        f"route change -> serving: median {out['change_median_s']:.3f} s (target <= 1 s, aim 0.3 s); "
        f"all: {', '.join(f'{t:.3f}' for t in out['changes_s'])}"
    )
    print(f"RSS after ready: {out['rss_mb']:.0f} MB (target <= 300 MB)")


if __name__ == "__main__":
    main()
