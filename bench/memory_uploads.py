"""Memory under mirrored uploads: N concurrent uploads of SIZE bytes, 100% mirrored.

Usage:  .venv/bin/python bench/memory_uploads.py [--uploads 64] [--size-mib 8] [--rate MIB_PER_S]

Starts two `mirrorgate echo` processes (primary and mirror; both hash every body they receive) and
`mirrorgate run` with one route mirroring everything, then sends the uploads at once over loopback
with random bodies, streaming each in 64 KiB writes. Reports the gateway's peak RSS (VmHWM) and
checks that every upload arrived byte-identical at the primary (its answer's X-Echo-Body-Sha256)
and at the mirror (the body_sha256 of its log lines), the uploads per second, the p99 of their
durations, and the gateway's CPU time per upload, user and system apart (/proc/PID/stat of its
processes over the batch). Target: RSS <= 256 MB with 64 x 8 MiB when the mirror keeps up (a
mirror's body is teed, never buffered whole). Bounded: one batch; everything started is stopped.
"""

import argparse
import asyncio
import hashlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import MIRRORGATE, cpu_per_request, cpu_sample, free_port, route_yaml, tree


def rss_peak_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(m.group(1)) / 1024 if m else float("nan")


def rss_now_mb(pid: int) -> float:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


async def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


async def upload(port: int, i: int, size: int, rate: float) -> tuple[str, str, float]:
    """(sha256 sent, sha256 the primary reported, seconds it took); ``rate``: MiB/s of this
    upload, 0 = as fast as the gateway reads."""
    seed = os.urandom(64 * 1024)
    digest = hashlib.sha256()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST /upload/{i} HTTP/1.1\r\nHost: up.example\r\nContent-Length: {size}\r\n\r\n".encode())
    sent = 0
    start = time.monotonic()
    while sent < size:
        if rate:  # a paced client: never ahead of ``rate``
            ahead = sent / (rate * 1024 * 1024) - (time.monotonic() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)
        chunk = seed[: min(len(seed), size - sent)]
        chunk = bytes([sent // len(seed) % 256]) + chunk[1:]  # every block differs
        digest.update(chunk)
        writer.write(chunk)
        await writer.drain()
        sent += len(chunk)
    head = await reader.readuntil(b"\r\n\r\n")
    m = re.search(rb"(?i)x-echo-body-sha256: ([0-9a-f]+)", head)
    length = re.search(rb"(?i)content-length: (\d+)", head)
    if length:
        await reader.readexactly(int(length.group(1)))
    writer.close()
    return digest.hexdigest(), m.group(1).decode() if m else "", time.monotonic() - start


async def traffic(args: argparse.Namespace, gw_pid: int, ports: tuple[int, ...], shadow_log: Path) -> int:
    size = args.size_mib * 1024 * 1024
    for p in ports:
        await wait_port(p)
    idle = rss_now_mb(gw_pid)
    pids = tree(gw_pid)
    started, cpu = time.monotonic(), cpu_sample(pids)
    results = await asyncio.gather(*(upload(ports[-1], i, size, args.rate) for i in range(args.uploads)))
    elapsed = time.monotonic() - started
    user, system = cpu_per_request(cpu, cpu_sample(pids), args.uploads)
    peak = rss_peak_mb(gw_pid)
    sent = {h for h, _, _ in results}
    primary_ok = sum(1 for h, got, _ in results if h == got)
    durations = sorted(d for _, _, d in results)
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
    mirrored: set[str] = set()
    for _ in range(200):  # bounded: 20 s for the mirror to finish
        mirrored = set(re.findall(r"body_sha256=([0-9a-f]+)", await asyncio.to_thread(shadow_log.read_text)))
        if sent <= mirrored:
            break
        await asyncio.sleep(0.1)
    pace = f", each paced at {args.rate:g} MiB/s" if args.rate else ""
    print(f"{args.uploads} concurrent uploads of {args.size_mib} MiB{pace}, 100% mirrored, in {elapsed:.1f} s")
    print(f"gateway RSS: {idle:.0f} MB idle, peak {peak:.0f} MB (target <= 256 MB)")
    print(f"{args.uploads / elapsed:.1f} uploads/s, p99 {p99 * 1000:.0f} ms")
    print(f"gateway CPU per upload: {user:.0f} us user, {system:.0f} us system")
    n = args.uploads
    print(f"intact at the primary: {primary_ok}/{n}; intact at the mirror: {len(sent & mirrored)}/{n}")
    return 0 if primary_ok == args.uploads else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--uploads", type=int, default=64)
    ap.add_argument("--size-mib", type=int, default=8)
    ap.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="MiB/s per upload (0: as fast as the gateway takes it; the mirror then keeps up only if "
        "it is faster than the primary)",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mirrorgate-mem-"))
    primary, shadow, port = free_port(), free_port(), free_port()
    (tmp / "gw.yaml").write_text(route_yaml(port, primary, shadow))
    logs = {name: (tmp / f"{name}.log").open("wb") for name in ("primary", "shadow", "gateway")}
    procs = [
        subprocess.Popen(
            [MIRRORGATE, "echo", "--port", str(p), "--bind", "127.0.0.1", "--name", f"{name}-1-2"],
            stderr=logs[name],
            stdout=subprocess.DEVNULL,
        )
        for name, p in (("primary", primary), ("shadow", shadow))
    ]
    gw = subprocess.Popen(
        [
            MIRRORGATE,
            "run",
            "-f",
            str(tmp / "gw.yaml"),
            "--bind",
            "127.0.0.1",
            "--admin",
            "off",
            "--access-log",
            "off",
            "--no-watch",
            "--workers",
            "1",
        ],
        stderr=logs["gateway"],
        stdout=subprocess.DEVNULL,
    )
    procs.append(gw)
    try:
        return asyncio.run(traffic(args, gw.pid, (primary, shadow, port), tmp / "shadow.log"))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        for f in logs.values():
            f.close()


if __name__ == "__main__":
    sys.exit(main())
