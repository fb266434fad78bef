"""WebSocket echo round trips per second through mirrorgate (and through NGINX when installed).

A stdlib WebSocket echo backend (``tests/support/websocket.py``) runs in a process of its own;
``--connections`` clients each open one WebSocket through the proxy and send a ``--size``-byte
binary frame, wait for its echo, and repeat for ``--duration`` seconds. Round trips per second
(all clients together) are printed per proxy, and the direct rate (no proxy) beside them.

NGINX is configured as its documentation says for WebSocket: ``proxy_http_version 1.1;
proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"``.

    .venv/bin/python bench/websocket.py --duration 2        # a smoke run
"""

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import MIRRORGATE, ROOT, free_port, route_yaml

sys.path.insert(0, str(ROOT))  # the WebSocket backend and client of the tests
from tests.support.websocket import BINARY, WsClient, WsEchoBackend

NGINX_CONF = """daemon off; worker_processes 1; pid {tmp}/nginx.pid; error_log {tmp}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{ access_log off;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{ listen 127.0.0.1:{port};
    location / {{ proxy_pass http://127.0.0.1:{backend}; proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";
      proxy_read_timeout 300s; }} }} }}
"""


async def serve(port: int) -> None:
    await WsEchoBackend().start(port)
    await asyncio.Event().wait()


async def wait_port(port: int, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def client(port: int, payload: bytes, until: float) -> int:
    ws = await WsClient.connect(port, "/bench")
    assert ws.status == 101, ws.head
    n = 0
    while time.monotonic() < until:
        await ws.echo(BINARY, payload)
        n += 1
    ws.close()
    return n


async def measure(port: int, connections: int, size: int, duration: float) -> float:
    await wait_port(port)
    payload = os.urandom(size)
    until = time.monotonic() + duration
    counts = await asyncio.gather(*(client(port, payload, until) for _ in range(connections)))
    return sum(counts) / duration


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    backend, mg_port, nginx_port = free_port(), free_port(), free_port()
    procs = [start([sys.executable, __file__, "--serve", str(backend)], tmp / "backend.log")]
    config = tmp / "gateway.yaml"
    config.write_text(route_yaml(mg_port, backend, None))
    argv = [MIRRORGATE, "run", "-f", str(config), "--bind", "127.0.0.1", "--access-log", "off"]
    procs.append(start([*argv, "--admin", "off", "--workers", "1", "--no-watch"], tmp / "mirrorgate.log"))
    targets = {"direct": backend, "mirrorgate": mg_port}
    if shutil.which("nginx") and not args.no_nginx:
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=nginx_port, backend=backend))
        procs.append(start(["nginx", "-c", str(conf), "-p", str(tmp)], tmp / "nginx.log"))
        targets["nginx"] = nginx_port
    try:
        return {
            name: asyncio.run(measure(port, args.connections, args.size, args.duration))
            for name, port in targets.items()
        }
    finally:
        stop(procs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per proxy (default 10)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent WebSockets (default 16)")
    parser.add_argument("--size", type=int, default=128, help="payload bytes per frame (default 128)")
    parser.add_argument("--no-nginx", action="store_true", help="skip NGINX even when it is installed")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the backend process
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        rates = run(args, Path(tmp))
    direct = rates["direct"]
    for name, rate in rates.items():
        print(f"{name:>10}: {rate:10.0f} round trips/s  ({rate / direct:.2f} of direct)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
