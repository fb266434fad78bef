"""Soak: bounded mixed traffic with faulty mirrors and periodic reloads against `mirrorgate run`.

Usage:  .venv/bin/python bench/soak.py [--duration 600] [--concurrency 16] [--reload-every 5] [--compare]

Loopback only. Starts, in this process, a healthy primary backend, a healthy mirror backend and
a faulty mirror backend (each connection at random: black-holes, resets, answers garbage or
answers slowly), then `mirrorgate run -f FILE --workers 1 --admin 127.0.0.1:0 --access-log off`
as a subprocess. Traffic: ``--concurrency`` keep-alive clients sending a mix of GET and POST
(bodies of 0-256 KiB, content-length or chunked) to four routes: plain, mirrored to the healthy
mirror, mirrored to the faulty mirror, and 50%-mirrored to a backend that refuses connections.
Every primary is healthy, so every 5xx is unexpected. Every ``--reload-every`` seconds the -f
file is rewritten atomically (a header value and the mirror percentage change), which the gateway
picks up by watching it. With ``--compare`` the /mirrored route mirrors through a MirrorPolicy
that compares every response, and the mirror answers a JSON body with one more field than the
primary's, so every comparison is a mismatch kept in the ring (the most memory comparison holds);
the end of the report adds the comparison counters from the admin server's ``/mirrors``.

Figures printed at the end: requests and rate, status counts, unexpected 5xx, client errors,
reloads seen in the log, the gateway's RSS after warm-up (10% of the run, at least 5 s), at the
end and its peak (VmHWM), the growth in percent, the client connections and data-plane tasks left
once the clients are gone, and the mirror counters, both from /metrics; the p99 of the request
durations, and the gateway's CPU time per request, user and system apart (/proc/PID/stat of its
processes from the end of the warm-up to the end of the traffic). The bar: RSS at the end within
10% of the warm-up figure, zero unexpected 5xx.
Bounded: everything started is stopped (SIGTERM, then SIGKILL after 15 s).
"""

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httptools
from common import cpu_per_request, cpu_sample, tree

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")

CONFIG = """apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: mirrorgate}}
spec: {{controllerName: mirrorgate.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: soak}}
spec:
  gatewayClassName: mirrorgate
  listeners: [{{name: http, port: {port}, protocol: HTTP}}]
{services}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: soak, namespace: soak}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /mirrored}}}}]
    filters:
    - {mirrored}
    - {{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: X-Generation, value: "{generation}"}}]}}}}
    backendRefs: [{{name: primary, port: 80}}]
  - matches: [{{path: {{type: PathPrefix, value: /faulty}}}}]
    filters: [{{type: RequestMirror, requestMirror: {{backendRef: {{name: faulty, port: 80}}, percent: {percent}}}}}]
    backendRefs: [{{name: primary, port: 80}}]
  - matches: [{{path: {{type: PathPrefix, value: /refused}}}}]
    filters: [{{type: RequestMirror, requestMirror: {{backendRef: {{name: refused, port: 80}}, percent: 50}}}}]
    backendRefs: [{{name: primary, port: 80}}]
  - backendRefs: [{{name: primary, port: 80}}]
{policy}"""

PLAIN_MIRROR = "{type: RequestMirror, requestMirror: {backendRef: {name: mirror, port: 80}}}"
POLICY_MIRROR = "{type: ExtensionRef, extensionRef: {group: mirrorgate.dev, kind: MirrorPolicy, name: compared}}"
# --compare: every /mirrored request is compared; the mirror answers one more JSON field than the
# primary, so every comparison is a mismatch and the ring of mismatches is always full.
POLICY = """---
apiVersion: mirrorgate.dev/v1alpha1
kind: MirrorPolicy
metadata: {name: compared, namespace: soak}
spec:
  backendRef: {name: mirror, port: 80}
  compare: {keepMismatches: 100}
"""

SERVICE = """---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: soak}}
spec: {{ports: [{{port: 80, targetPort: {port}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}, namespace: soak, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
endpoints: [{{addresses: [127.0.0.1]}}]
ports: [{{port: {port}}}]
"""

ROUTES = ("/plain", "/mirrored", "/faulty", "/refused")


# --- backends ------------------------------------------------------------------------------------


class _Backend(asyncio.Protocol):
    """Answers every request 200 with a small body once it has been read whole; ``mode`` other
    than ``ok`` misbehaves (for the faulty mirror)."""

    def __init__(self, mode: str, faulty: bool = False, extra: bytes = b"") -> None:
        self.mode = mode
        self.faulty = faulty
        self.extra = extra  # appended inside the JSON body (a "v2" that differs on purpose)
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.mode == "blackhole":
            return
        if self.mode == "reset":
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.transport.abort()
            return
        if self.mode == "garbage":
            self.transport.write(b"\x16\x03\x01 definitely not HTTP\r\n\r\n")
            self.transport.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.size = 0

    def on_body(self, body: bytes) -> None:
        self.size += len(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        body = b'{"received": %d%s}' % (self.size, self.extra)
        close = b"" if self.mode == "ok" and not self.faulty else b"connection: close\r\n"
        reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
            len(body),
            close,
            body,
        )
        if self.mode == "slow":
            asyncio.get_running_loop().call_later(0.3, self._late, reply)
        else:
            self._late(reply)

    def _late(self, reply: bytes) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(reply)
            if self.faulty:  # a new connection (and a new random mode) for every mirrored request
                t.close()


async def start_backend(faulty: bool, extra: bytes = b"") -> asyncio.Server:
    modes = ("blackhole", "reset", "garbage", "slow", "ok")

    def factory() -> _Backend:
        return _Backend(random.choice(modes), True) if faulty else _Backend("ok", extra=extra)

    return await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the gateway process ---------------------------------------------------------------------------


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class GatewayProc:
    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.sink = open(log, "wb")  # closed in stop()
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "mirrorgate",
                "run",
                "-f",
                str(config),
                "--workers",
                "1",
                "--bind",
                "127.0.0.1",
                "--admin",
                "127.0.0.1:0",
                "--access-log",
                "off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.sink,
            cwd=ROOT,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for(self, pattern: str, within: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise SystemExit(f"gateway: no {pattern!r} in its log:\n{self.text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sink.close()


# --- clients --------------------------------------------------------------------------------------


class Stats:
    def __init__(self) -> None:
        self.status: Counter[int] = Counter()
        self.unexpected_5xx = 0
        self.client_errors: Counter[str] = Counter()
        self.requests = 0
        self.durations: list[float] = []  # seconds per request


async def read_response(reader: asyncio.StreamReader, head_only: bool) -> tuple[int, bool]:
    """(status, keep-alive) of one response, its body read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:] if ln)}
    if status < 200:
        return await read_response(reader, head_only)
    if not head_only and status not in (204, 304):
        if headers.get(b"transfer-encoding", b"").lower().endswith(b"chunked"):
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    break
                await reader.readexactly(size + 2)
        elif b"content-length" in headers:
            await reader.readexactly(int(headers[b"content-length"]))
        else:
            await reader.read()
            return status, False
    return status, headers.get(b"connection", b"").lower() != b"close"


def make_request(rng: random.Random) -> tuple[bytes, bool]:
    route = rng.choice(ROUTES)
    target = f"{route}/{rng.randrange(1000)}?q={rng.randrange(100)}".encode()
    kind = rng.random()
    if kind < 0.55:
        return b"GET %s HTTP/1.1\r\nHost: soak.example\r\n\r\n" % target, False
    if kind < 0.6:
        return b"HEAD %s HTTP/1.1\r\nHost: soak.example\r\n\r\n" % target, True
    body = rng.randbytes(rng.choice((0, 100, 4096, 65536, 262144)))
    if kind < 0.85:
        head = b"POST %s HTTP/1.1\r\nHost: soak.example\r\nContent-Length: %d\r\n\r\n" % (target, len(body))
        return head + body, False
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 16384]), body[i : i + 16384]) for i in range(0, len(body), 16384)
    )
    head = b"POST %s HTTP/1.1\r\nHost: soak.example\r\nTransfer-Encoding: chunked\r\n\r\n" % target
    return head + chunks + b"0\r\n\r\n", False


async def client(port: int, stop_at: float, stats: Stats, seed: int) -> None:
    rng = random.Random(seed)
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while time.monotonic() < stop_at:
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = conn
            data, head_only = make_request(rng)
            sent = time.monotonic()
            writer.write(data)
            async with asyncio.timeout(30):
                await writer.drain()
                status, keep = await read_response(reader, head_only)
            stats.requests += 1
            stats.durations.append(time.monotonic() - sent)
            stats.status[status] += 1
            if status >= 500:
                stats.unexpected_5xx += 1  # every primary is healthy
            if not keep or rng.random() < 0.02:  # some connection churn
                writer.close()
                conn = None
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            stats.client_errors[type(exc).__name__] += 1
            if conn is not None:
                conn[1].close()
            conn = None
    if conn is not None:
        conn[1].close()


# --- main -----------------------------------------------------------------------------------------


def write_config(path: Path, port: int, services: str, generation: int, compare: bool = False) -> None:
    text = CONFIG.format(
        port=port,
        services=services,
        generation=generation,
        percent=(50, 100)[generation % 2],
        mirrored=POLICY_MIRROR if compare else PLAIN_MIRROR,
        policy=POLICY if compare else "",
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def gauge(metrics_text: str, name: str) -> float:
    """The value of an unlabelled sample in Prometheus text (NaN when absent)."""
    m = re.search(rf"^{name} ([0-9.e+-]+)$", metrics_text, re.MULTILINE)
    return float(m.group(1)) if m else float("nan")


async def metrics(admin_port: int, path: str = "/metrics") -> str:
    """The body of ``GET path`` on the admin server (one request per connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", admin_port)
    writer.write(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path.encode())
    data = await reader.read()
    writer.close()
    return data.decode(errors="replace").split("\r\n\r\n", 1)[-1]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of traffic (default 600)")
    ap.add_argument("--concurrency", type=int, default=16, help="concurrent keep-alive clients")
    ap.add_argument("--reload-every", type=float, default=5.0, help="seconds between config rewrites")
    ap.add_argument("--compare", action="store_true", help="compare every /mirrored request (a MirrorPolicy)")
    args = ap.parse_args()

    primary = await start_backend(False)
    mirror = await start_backend(False, b', "version": 2' if args.compare else b"")
    faulty = await start_backend(True)
    ports = {
        "primary": primary.sockets[0].getsockname()[1],
        "mirror": mirror.sockets[0].getsockname()[1],
        "faulty": faulty.sockets[0].getsockname()[1],
        "refused": free_port(),
    }
    services = "".join(SERVICE.format(name=n, port=p) for n, p in ports.items())
    gw_port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="mirrorgate-soak-"))
    config = tmp / "soak.yaml"
    write_config(config, gw_port, services, 0, args.compare)
    gw = GatewayProc(config, tmp / "gateway.log")
    try:
        admin_port = int((await gw.wait_for(r"admin server on [\d.]+:(\d+)")).group(1))
        await gw.wait_for(rf"listening on 127\.0\.0\.1:{gw_port}")
        stats = Stats()
        start = time.monotonic()
        stop_at = start + args.duration
        warmup = max(5.0, args.duration / 10)
        clients = [asyncio.create_task(client(gw_port, stop_at, stats, i)) for i in range(args.concurrency)]
        rss_warm = 0
        pids, cpu_warm, requests_warm = [gw.proc.pid], (0.0, 0.0), 0
        generation = 0
        next_reload = start + args.reload_every
        while time.monotonic() < stop_at:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            if not rss_warm and now - start >= warmup:
                rss_warm = rss_kib(gw.proc.pid)
                pids = tree(gw.proc.pid)
                cpu_warm, requests_warm = cpu_sample(pids), stats.requests
            if now >= next_reload:
                generation += 1
                write_config(config, gw_port, services, generation, args.compare)
                next_reload = now + args.reload_every
            if gw.proc.poll() is not None:
                raise SystemExit(f"gateway exited:\n{gw.text()}")
        await asyncio.gather(*clients)
        user, system = cpu_per_request(cpu_warm, cpu_sample(pids), stats.requests - requests_warm)
        rss_end = rss_kib(gw.proc.pid)
        hwm = rss_kib(gw.proc.pid, "VmHWM")
        text = await metrics(admin_port)
        for _ in range(50):  # bounded (5 s): the gateway notices the clients' closes
            left = gauge(text, "mirrorgate_connections"), gauge(text, "mirrorgate_tasks")
            if left == (0.0, 0.0):
                break
            await asyncio.sleep(0.1)
            text = await metrics(admin_port)
        elapsed = time.monotonic() - start
        compared = json.loads(await metrics(admin_port, "/mirrors")) if args.compare else {}
    finally:
        gw.stop()
        for server in (primary, mirror, faulty):
            server.close()
    log = gw.text()
    mirror_lines = [
        ln
        for ln in text.splitlines()
        if ln.startswith(("mirrorgate_mirror_dropped_total", "mirrorgate_mirror_requests_total"))
    ]
    growth = 100.0 * (rss_end - rss_warm) / rss_warm if rss_warm else float("nan")
    print(f"duration            {elapsed:.0f} s, {args.concurrency} clients, reload every {args.reload_every:g} s")
    print(f"requests            {stats.requests} ({stats.requests / elapsed:.0f}/s)")
    durations = sorted(stats.durations) or [float("nan")]
    print(f"p99                 {durations[min(len(durations) - 1, int(len(durations) * 0.99))] * 1000:.2f} ms")
    print(f"gateway CPU         {user:.1f} us user, {system:.1f} us system per request (after the warm-up)")
    print(f"statuses            {dict(sorted(stats.status.items()))}")
    print(f"unexpected 5xx      {stats.unexpected_5xx}")
    print(f"client errors       {dict(stats.client_errors) or 0}")
    print(f"config rewrites     {generation}; reloads logged {log.count('reloaded:')}")
    rss = f"warm-up {rss_warm / 1024:.1f} MiB, end {rss_end / 1024:.1f} MiB ({growth:+.1f}%), peak {hwm / 1024:.1f} MiB"
    print(f"gateway RSS         {rss}")
    print(f"errors in log       {sum(1 for ln in log.splitlines() if 'ERROR' in ln or 'Traceback' in ln)}")
    conns, tasks = gauge(text, "mirrorgate_connections"), gauge(text, "mirrorgate_tasks")
    print(f"left at the end     {conns:.0f} client connections, {tasks:.0f} data-plane tasks (admin /metrics)")
    for line in mirror_lines:
        if not line.rstrip().endswith(" 0.0"):
            print(f"  {line}")
    for entry in compared.get("mirrors", []):
        if entry.get("compare"):
            print(f"compare             {entry['mirror']}: {json.dumps(entry['compare'])}")
    print(f"log                 {gw.log}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
