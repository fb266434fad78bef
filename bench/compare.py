"""What shadow comparison costs: the same 100% MirrorPolicy mirror with and without ``compare``,
side by side in one run, and the same route without a mirror for reference.

Usage:  .venv/bin/python bench/compare.py [--rounds 5] [--duration 5] [--connections 50]

The primary and the mirror backend are two NGINX servers answering the same small JSON document
(``application/json``), so every comparison matches: the common case of a healthy mirror. Most
answers are the same bytes and match without being parsed; when the two straddle a second their
``Date`` headers differ and the pair is compared field by field. Three mirrorgate processes (one worker
each, access logs off, an admin server each, pinned to CPU 1; wrk and the backends on CPU 0) serve:
  compare   the route with an ExtensionRef to a MirrorPolicy with ``compare: {}``
  mirror    the same MirrorPolicy without ``compare``
  own       the route without a mirror
Each round measures all three in turn, the order rotating from round to round; the report gives
medians of requests/s, p99 and CPU time per request (user and system, ``/proc/PID/stat`` of the
process over the requests wrk reports), and the median over rounds of ``compare``'s requests/s
divided by ``mirror``'s of the same round: the cost of comparing. The target is >= 0.85. The
same median for CPU time per request (user + system) follows: on a noisy host it moves less.
It also reads the ``compare`` process's ``/mirrors`` at the end: the comparisons made and their
match rate (all should match).
Bounded: every run lasts ``duration`` seconds; everything started is stopped at the end.
"""

import argparse
import json
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from common import MIRRORGATE, cpu_per_request, cpu_sample, free_port, route_yaml, tree
from vs_nginx import Procs, ensure_tools, pinned, wait_port, wrk

JSON_BACKEND = """
worker_processes 1; daemon off; pid {tmp}/{name}.pid; error_log {tmp}/{name}.err;
events {{ worker_connections 8192; }}
http {{ access_log off; server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
  location / {{ default_type application/json;
    return 200 '{{"id":42,"name":"checkout","items":[{{"sku":"a-1","qty":2}},{{"sku":"b-7","qty":1}}],"total":31.5}}';
  }} }} }}
"""


def config(port: int, primary: int, shadow: int, variant: str) -> str:
    """The Gateway, both Services and the route; ``variant`` is compare, mirror or own."""
    if variant == "own":
        return route_yaml(port, primary, shadow, "[]")
    ref = "{group: mirrorgate.dev, kind: MirrorPolicy, name: shadow}"
    text = route_yaml(port, primary, shadow, f"[{{type: ExtensionRef, extensionRef: {ref}}}]")
    policy = "---\napiVersion: mirrorgate.dev/v1alpha1\nkind: MirrorPolicy\nmetadata: {name: shadow}\n"
    policy += "spec:\n  backendRef: {name: shadow, port: 80}\n"
    if variant == "compare":
        policy += "  compare: {}\n"
    return text + policy


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="mirrorgate-compare-"))
    procs = Procs(tmp)
    names = ("compare", "mirror", "own")
    results: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in names}
    mirrors: dict[str, list[dict[str, Any]]] = {}
    try:
        primary, shadow = free_port(), free_port()
        for name, port in (("primary", primary), ("shadow", shadow)):
            (tmp / f"{name}.conf").write_text(JSON_BACKEND.format(tmp=tmp, name=name, port=port))
            procs.start(name, pinned(0, ["nginx", "-c", str(tmp / f"{name}.conf")]))
        runs: dict[str, tuple[int, int]] = {}
        admins = {name: free_port() for name in names}  # every process alike: an admin server each
        for name in names:
            port = free_port()
            (tmp / f"{name}.yaml").write_text(config(port, primary, shadow, name))
            argv = [MIRRORGATE, "run", "-f", str(tmp / f"{name}.yaml"), "--bind", "127.0.0.1"]
            argv += ["--access-log", "off", "--workers", "1", "--no-watch"]
            argv += ["--admin", f"127.0.0.1:{admins[name]}"]
            runs[name] = (port, procs.start(name, pinned(1, argv)).pid)
        for port, _ in runs.values():
            wait_port(port)
        wait_port(primary)
        wait_port(shadow)
        for name in names:
            wrk(runs[name][0], 2, args.connections, None)  # warm-up
        for r in range(args.rounds):
            for name in names[r % 3 :] + names[: r % 3]:
                port, pid = runs[name]
                pids = tree(pid)
                before = cpu_sample(pids)
                rps, p99, requests = wrk(port, args.duration, args.connections, None)
                user, system = cpu_per_request(before, cpu_sample(pids), requests)
                results[name].append((rps, p99, user, system))
                print(f"  round {r + 1:2d} {name:8s} {rps:9.0f} req/s  p99 {p99:6.2f} ms", flush=True)
        with urllib.request.urlopen(f"http://127.0.0.1:{admins['compare']}/mirrors", timeout=10) as resp:
            mirrors = json.load(resp)
    finally:
        procs.stop()
    print(f"\nwrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds, medians")
    print("{:10s} {:>8s} {:>7s} {:>8s} {:>7s}".format("run", "req/s", "p99 ms", "user µs", "sys µs"))
    for name in names:
        med = [statistics.median(row[i] for row in results[name]) for i in range(4)]
        print(f"{name:10s} {med[0]:8.0f} {med[1]:7.2f} {med[2]:8.2f} {med[3]:7.2f}")
    pairs = zip(results["compare"], results["mirror"], strict=True)
    ratio = statistics.median(c[0] / m[0] for c, m in pairs)
    print(f"compare / mirror req/s (median of per-round ratios): {ratio:.3f}  (target >= 0.85)")
    pairs = zip(results["compare"], results["mirror"], strict=True)
    cpu = statistics.median((c[2] + c[3]) / (m[2] + m[3]) for c, m in pairs)
    print(f"compare / mirror CPU per request (median of per-round ratios): {cpu:.3f}")
    for entry in mirrors.get("mirrors", []):
        summary = entry.get("compare") or {}
        print(f"{entry['mirror']}: compared {summary.get('compared')} match rate {summary.get('matchRate')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
