"""mirrorgate beside NGINX on loopback, one worker each, under `wrk`: plain proxying and mirroring.

Usage:  .venv/bin/python bench/vs_nginx.py [--cases plain,defaults,mirror,slow,blackhole,refusing,post16k]
                                           [--rounds 3] [--duration 8] [--connections 50]

Cases (the primary backend is always a healthy NGINX answering a small 200):
  plain      no mirror
  defaults   no mirror, both access logs on, to a file (what a user gets out of the box; the other
             cases run with the access logs off)
  mirror     100% mirrored to a second healthy NGINX backend
  slow       100% mirrored to a backend that answers after 200 ms
  blackhole  100% mirrored to a backend that accepts and never answers (5 s timeouts on both sides)
  refusing   100% mirrored to a closed port
  post16k    16 KiB POSTs, 100% mirrored to a healthy backend

NGINX uses `worker_processes 1`, upstream keepalive and the `mirror` directive (with
`mirror_request_body on`); mirrorgate serves the equivalent HTTPRoute with a RequestMirror filter.
Both proxies are pinned to CPU 1, wrk and the backends to CPU 0 (docs/benchmarks.md). For a mirror
case a second mirrorgate serving the same route without its mirror runs beside them, and each
round measures all three in turn (the order rotating from round to round), so that the "a mirror
never hurts the primary" ratio compares runs minutes apart at most, not cases far apart on a
machine whose speed drifts. The report gives medians, the mirrorgate/NGINX ratio, and for mirror
cases the median over rounds of mirrorgate's ratio to its own mirror-less run of the same round,
and each proxy's CPU time per request, user and system apart (/proc/PID/stat of all its
processes over the measured window, divided by the requests wrk reports).
Bounded: every run lasts `duration` seconds; everything started is stopped at the end. Needs
Debian's `nginx` and `wrk` (`apt-get install -y nginx wrk`; done here when they are missing).
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

from common import MIRRORGATE, ROOT, cpu_per_request, cpu_sample, free_port, route_yaml, tree

CASES = ("plain", "defaults", "mirror", "slow", "blackhole", "refusing", "post16k")
Run = tuple[float, float, float, float]  # req/s, p99 ms, CPU user and system us per request

BACKEND_CONF = """
worker_processes 1; daemon off; pid {tmp}/{name}.pid; error_log {tmp}/{name}.err;
events {{ worker_connections 8192; }}
http {{ access_log off; client_max_body_size 1m; server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
  location = /nginx_status {{ stub_status; }}
  location / {{ return 200 "hello from the backend\\n"; }} }} }}
"""

PROXY_CONF = """
worker_processes 1; daemon off; pid {tmp}/proxy.pid; error_log {tmp}/proxy.err;
events {{ worker_connections 8192; }}
http {{ access_log {access_log}; client_max_body_size 1m; client_body_buffer_size 64k;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  upstream shadow {{ server 127.0.0.1:{shadow}; keepalive 64; }}
  server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
    location / {{ {mirror} proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }}
    location = /mirror {{ internal; proxy_pass http://shadow$request_uri; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_connect_timeout 1s; proxy_read_timeout 5s; proxy_send_timeout 5s; }} }} }}
"""


POST_LUA = 'wrk.method = "POST"\nwrk.body = string.rep("a", 16384)\nwrk.headers["Content-Type"] = "text/plain"\n'


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


class Procs:
    """Processes started by one case; all stopped together (process groups)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs = []


def wrk(
    port: int, duration: int, connections: int, script: Path | None, scheme: str = "http"
) -> tuple[float, float, int]:
    """(requests/s, p99 ms, requests) of one wrk run."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run(
        pinned(0, [*argv, f"{scheme}://127.0.0.1:{port}/"]),
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    done = re.search(r"(\d+) requests in", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return (
        float(rps.group(1)) if rps else 0.0,
        float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        int(done.group(1)) if done else 0,
    )


def measured(pid: int, port: int, duration: int, connections: int, script: Path | None, scheme: str = "http") -> Run:
    """One wrk run with the CPU that the proxy ``pid`` (and its children) spent during it."""
    pids = tree(pid)
    before = cpu_sample(pids)
    rps, p99, requests = wrk(port, duration, connections, script, scheme)
    user, system = cpu_per_request(before, cpu_sample(pids), requests)
    return rps, p99, user, system


def stub_requests(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /nginx_status HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    m = re.search(rb"\n\s*\d+\s+\d+\s+(\d+)", data)
    return int(m.group(1)) - 1 if m else -1  # minus this request


def shadow_argv(tmp: Path, kind: str, port: int) -> list[str]:
    """The misbehaving shadow backend (200 ms slow, or black hole): the C one, built here with the
    system's compiler, as it shares wrk's CPU and must cost it next to nothing; else the Python one."""
    binary = tmp / "shadow_backend"
    cc = shutil.which("cc") or shutil.which("gcc")
    if not binary.exists() and cc:
        subprocess.run(
            [cc, "-O2", "-o", str(binary), str(ROOT / "bench" / "shadow_backend.c")], check=False, capture_output=True
        )
    if binary.exists():
        return [str(binary), kind, str(port), "200"]
    return [sys.executable, str(ROOT / "bench" / "shadow_backends.py"), kind, str(port), "0.2"]


def mirrorgate_argv(config: Path, access_log: str = "off") -> list[str]:
    return pinned(
        1,
        [
            MIRRORGATE,
            "run",
            "-f",
            str(config),
            "--bind",
            "127.0.0.1",
            "--access-log",
            access_log,
            "--admin",
            "off",
            "--workers",
            "1",
            "--no-watch",
        ],
    )


def run_case(case: str, args: argparse.Namespace, tmp: Path) -> dict[str, list[Run]]:
    procs = Procs(tmp)
    backend, shadow, nginx_port, mg_port, own_port = free_port(), free_port(), free_port(), free_port(), free_port()
    mirrored = case not in ("plain", "defaults")
    logs = case == "defaults"
    shadow_kind = {
        "plain": "none",
        "defaults": "none",
        "slow": "slow",
        "blackhole": "blackhole",
        "refusing": "none",
    }.get(case, "nginx")
    (tmp / "backend.conf").write_text(BACKEND_CONF.format(tmp=tmp, name="backend", port=backend))
    (tmp / "shadow.conf").write_text(BACKEND_CONF.format(tmp=tmp, name="shadow", port=shadow))
    mirror_directive = "mirror /mirror; mirror_request_body on;" if mirrored else ""
    (tmp / "proxy.conf").write_text(
        PROXY_CONF.format(
            tmp=tmp,
            port=nginx_port,
            backend=backend,
            shadow=shadow,
            mirror=mirror_directive,
            access_log=f"{tmp}/nginx-access.log" if logs else "off",
        )
    )
    (tmp / "route.yaml").write_text(route_yaml(mg_port, backend, shadow if mirrored else None))
    (tmp / "own.yaml").write_text(route_yaml(own_port, backend, None))
    script = None
    if case == "post16k":
        script = tmp / "post.lua"
        script.write_text(POST_LUA)
    results: dict[str, list[Run]] = {"nginx": [], "mirrorgate": [], "own": []}
    pids: dict[str, int] = {}
    try:
        procs.start("backend", pinned(0, ["nginx", "-c", str(tmp / "backend.conf")]))
        if shadow_kind == "nginx":
            procs.start("shadow", pinned(0, ["nginx", "-c", str(tmp / "shadow.conf")]))
        elif shadow_kind in ("slow", "blackhole"):
            procs.start("shadow", pinned(0, shadow_argv(tmp, shadow_kind, shadow)))
        pids["nginx"] = procs.start("proxy", pinned(1, ["nginx", "-c", str(tmp / "proxy.conf")])).pid
        access_log = str(tmp / "mirrorgate-access.log") if logs else "off"
        pids["mirrorgate"] = procs.start("mirrorgate", mirrorgate_argv(tmp / "route.yaml", access_log)).pid
        ports = [backend, nginx_port, mg_port]
        order = [("nginx", nginx_port), ("mirrorgate", mg_port)]
        if mirrored:
            pids["own"] = procs.start("own", mirrorgate_argv(tmp / "own.yaml")).pid
            ports.append(own_port)
            order.append(("own", own_port))
        for port in ports + ([shadow] if shadow_kind != "none" else []):
            wait_port(port)
        for _, port in order:
            wrk(port, 2, args.connections, script)  # warm-up
        for r in range(args.rounds):
            for name, port in order[r % len(order) :] + order[: r % len(order)]:
                results[name].append(measured(pids[name], port, args.duration, args.connections, script))
                rps, p99, user, system = results[name][-1]
                label = "mirrorgate (no mirror)" if name == "own" else name
                print(
                    f"  {case:9s} round {r + 1} {label:22s} {rps:9.0f} req/s  p99 {p99:8.2f} ms  "
                    f"CPU {user:6.1f} us user {system:6.1f} us sys per request",
                    flush=True,
                )
        if shadow_kind == "nginx":
            print(
                f"  {case:9s} the healthy mirror backend received {stub_requests(shadow)} requests in all", flush=True
            )
    finally:
        procs.stop()
    return results


def median(runs: list[Run]) -> Run:
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        statistics.median(r[2] for r in runs),
        statistics.median(r[3] for r in runs),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    ensure_tools()
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        ap.error(f"unknown cases: {sorted(unknown)}")
    tmp = Path(tempfile.mkdtemp(prefix="mirrorgate-bench-"))
    table = {}
    for case in cases:
        table[case] = run_case(case, args, tmp)
    print(
        f"\nwrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds, medians; "
        "proxies on CPU 1, wrk and backends on CPU 0"
    )
    print(
        f"{'case':10s} {'nginx req/s':>12s} {'p99 ms':>8s} {'mirrorgate':>11s} {'p99 ms':>8s} "
        f"{'ratio':>6s} {'vs no mirror (req/s, p99)':>26s} {'CPU us/req nginx (usr+sys)':>27s} {'mirrorgate':>14s}"
    )
    for case, runs in table.items():
        (n_rps, n_p99, n_usr, n_sys), (g_rps, g_p99, g_usr, g_sys) = median(runs["nginx"]), median(runs["mirrorgate"])
        own = "-"
        if runs["own"]:  # per round: this mirror case over the same round's mirror-less run
            rps_ratio = statistics.median(m[0] / o[0] for m, o in zip(runs["mirrorgate"], runs["own"], strict=True))
            p99_ratio = statistics.median(m[1] / o[1] for m, o in zip(runs["mirrorgate"], runs["own"], strict=True))
            own = f"{rps_ratio:.2f}x, {p99_ratio:.2f}x"
        print(
            f"{case:10s} {n_rps:12.0f} {n_p99:8.2f} {g_rps:11.0f} {g_p99:8.2f} {g_rps / n_rps:6.2f} {own:>26s} "
            f"{n_usr:17.1f}+{n_sys:<9.1f} {g_usr:6.1f}+{g_sys:<7.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
