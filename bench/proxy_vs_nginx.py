"""mirrorgate beside NGINX on loopback: the same backend, one worker each, `wrk` load.

Usage:  .venv/bin/python bench/proxy_vs_nginx.py [--rounds 3] [--duration 10] [--connections 50]

Needs Debian's `nginx` and `wrk` (installed with apt-get when missing; root only). The backend is
an NGINX instance answering a small 200; NGINX-the-proxy uses `worker_processes 1` and an upstream
keepalive pool; mirrorgate serves an HTTPRoute to the same backend. The proxies are pinned to CPU 1,
wrk and the backend to CPU 0 (PERFORMANCE.md). Rounds alternate the order; the report gives the
median requests/s and p99 of each, and their ratio. Bounded: rounds x 2 runs of `duration` seconds.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIRRORGATE = [str(ROOT / ".venv" / "bin" / "mirrorgate")]

BACKEND_CONF = """
worker_processes 1; daemon off; pid {tmp}/backend.pid; error_log {tmp}/backend.err;
events {{ worker_connections 4096; }}
http {{ access_log off; server {{ listen 127.0.0.1:{port} reuseport; keepalive_requests 1000000;
  location / {{ return 200 "hello from the backend\\n"; }} }} }}
"""

PROXY_CONF = """
worker_processes 1; daemon off; pid {tmp}/proxy.pid; error_log {tmp}/proxy.err;
events {{ worker_connections 4096; }}
http {{ access_log off;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
    location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
"""

ROUTE_YAML = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: bench}}
spec:
  gatewayClassName: mirrorgate
  listeners: [{{name: http, port: {port}, protocol: HTTP}}]
---
apiVersion: v1
kind: Service
metadata: {{name: backend}}
spec: {{ports: [{{name: http, port: 80}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: backend, labels: {{kubernetes.io/service-name: backend}}}}
addressType: IPv4
ports: [{{name: http, port: {backend}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: bench}}
spec:
  parentRefs: [{{name: bench}}]
  rules: [{{backendRefs: [{{name: backend, port: 80}}]}}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def ensure_tools() -> None:
    if shutil.which("nginx") and shutil.which("wrk"):
        return
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx", "wrk"], check=True)


def pinned(cpu: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else argv


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wrk(port: int, duration: int, connections: int) -> tuple[float, float]:
    """(requests/s, p99 ms) of one wrk run."""
    argv = pinned(
        0,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "--latency",
            f"http://127.0.0.1:{port}/",
        ],
    )
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return rps, float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")  # type: ignore[union-attr]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="mirrorgate-bench-"))
    backend, nginx_port, mg_port = free_port(), free_port(), free_port()
    (tmp / "backend.conf").write_text(BACKEND_CONF.format(tmp=tmp, port=backend))
    (tmp / "proxy.conf").write_text(PROXY_CONF.format(tmp=tmp, port=nginx_port, backend=backend))
    (tmp / "route.yaml").write_text(ROUTE_YAML.format(port=mg_port, backend=backend))
    procs = [
        start(pinned(0, ["nginx", "-c", str(tmp / "backend.conf")]), tmp / "backend.log"),
        start(pinned(1, ["nginx", "-c", str(tmp / "proxy.conf")]), tmp / "proxy.log"),
        start(
            pinned(
                1,
                [
                    *MIRRORGATE,
                    "run",
                    "-f",
                    str(tmp / "route.yaml"),
                    "--bind",
                    "127.0.0.1",
                    "--access-log",
                    "off",
                ],
            ),
            tmp / "mirrorgate.log",
        ),
    ]
    results: dict[str, list[tuple[float, float]]] = {"nginx": [], "mirrorgate": []}
    try:
        for port in (backend, nginx_port, mg_port):
            wait_port(port)
        for port in (nginx_port, mg_port):
            wrk(port, 2, args.connections)  # warm-up
        for r in range(args.rounds):
            order = [("nginx", nginx_port), ("mirrorgate", mg_port)]
            for name, port in order if r % 2 == 0 else order[::-1]:
                results[name].append(wrk(port, args.duration, args.connections))
                print(f"round {r + 1} {name:10s} {results[name][-1][0]:10.0f} req/s  p99 {results[name][-1][1]:.2f} ms")
    finally:
        for p in procs:
            stop(p)
    med = {k: (statistics.median(x for x, _ in v), statistics.median(y for _, y in v)) for k, v in results.items()}
    print(f"\nplain proxy, small GET, wrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} rounds (medians)")
    print(f"  nginx       {med['nginx'][0]:10.0f} req/s   p99 {med['nginx'][1]:7.2f} ms")
    print(f"  mirrorgate  {med['mirrorgate'][0]:10.0f} req/s   p99 {med['mirrorgate'][1]:7.2f} ms")
    rps_ratio = med["mirrorgate"][0] / med["nginx"][0]
    p99_ratio = med["mirrorgate"][1] / med["nginx"][1]
    print(f"  ratio       {rps_ratio:10.2f} x      p99 {p99_ratio:.2f} x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
