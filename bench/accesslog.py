"""What mirrorgate's default access log costs: the same gateway with and without it, same run.

Usage:  .venv/bin/python bench/accesslog.py [--rounds 6] [--duration 5] [--connections 50] [--json]

Two `mirrorgate run` processes serve the same route to one NGINX backend: one with its access
log as a user gets it by default (on stdout, here redirected to a file; ``--json`` adds
``--access-log-json``), one with ``--access-log off``. Both are pinned to CPU 1, wrk and the
backend to CPU 0. Each round runs wrk against both, the order alternating, and the report gives
medians of req/s, p99 and each gateway's CPU per request (user and system, /proc/PID/stat over
the requests wrk reports), and the difference. Once the gateways are stopped (SIGTERM, which
writes what their buffer holds), it counts the access log's lines against the requests wrk
reports for the logged gateway: wrk does not count the requests still in flight when a run ends,
so the log may hold up to ``connections`` lines more per run, never fewer unless lines were
dropped. Needs Debian's `nginx` and `wrk` (`apt-get install -y nginx wrk`; done here when they
are missing). Bounded: everything started is stopped.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import MIRRORGATE, cpu_per_request, cpu_sample, free_port, route_yaml, tree
from vs_nginx import BACKEND_CONF, Procs, Run, ensure_tools, pinned, wait_port, wrk


def gateway(procs: Procs, tmp: Path, name: str, port: int, backend: int, flags: list[str]) -> int:
    """Start a gateway whose stdout goes to ``tmp/name.out`` (its access log, if on); its pid."""
    config = tmp / f"{name}.yaml"
    config.write_text(route_yaml(port, backend, None))
    argv = [MIRRORGATE, "run", "-f", str(config), "--bind", "127.0.0.1", "--admin", "off", "--workers", "1"]
    with (tmp / f"{name}.out").open("wb") as out, (tmp / f"{name}.err").open("wb") as err:
        proc = subprocess.Popen(
            pinned(1, [*argv, "--no-watch", *flags]), stdout=out, stderr=err, start_new_session=True
        )
    procs.procs.append(proc)
    return proc.pid


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--json", action="store_true", help="JSON access-log lines (--access-log-json)")
    args = ap.parse_args()
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="mirrorgate-accesslog-"))
    procs = Procs(tmp)
    backend = free_port()
    ports = {"logged": free_port(), "off": free_port()}
    results: dict[str, list[Run]] = {name: [] for name in ports}
    wrk_requests = 0  # answered by the logged gateway, as wrk counts them, warm-up included
    try:
        (tmp / "backend.conf").write_text(BACKEND_CONF.format(tmp=tmp, name="backend", port=backend))
        procs.start("backend", pinned(0, ["nginx", "-c", str(tmp / "backend.conf")]))
        pids = {
            "logged": gateway(
                procs, tmp, "logged", ports["logged"], backend, ["--access-log-json"] if args.json else []
            ),
            "off": gateway(procs, tmp, "off", ports["off"], backend, ["--access-log", "off"]),
        }
        for port in (backend, *ports.values()):
            wait_port(port)
        for name, port in ports.items():
            _, _, n = wrk(port, 2, args.connections, None)  # warm-up
            wrk_requests += n if name == "logged" else 0
        order = list(ports)
        for r in range(args.rounds):
            for name in order[r % 2 :] + order[: r % 2]:
                tree_pids = tree(pids[name])
                cpu = cpu_sample(tree_pids)
                rps, p99, n = wrk(ports[name], args.duration, args.connections, None)
                run = (rps, p99, *cpu_per_request(cpu, cpu_sample(tree_pids), n))
                results[name].append(run)
                wrk_requests += n if name == "logged" else 0
                print(f"  round {r + 1} {name:7s} {run[0]:9.0f} req/s  p99 {run[1]:6.2f} ms  "
                      f"CPU {run[2]:6.1f} us user {run[3]:6.1f} us sys per request", flush=True)  # fmt: skip
    finally:
        procs.stop()
    lines = sum(1 for line in (tmp / "logged.out").read_text().splitlines() if '" 200 ' in line)
    report(args, results, lines, wrk_requests)
    return 0


def report(args: argparse.Namespace, results: dict[str, list[Run]], lines: int, wrk_requests: int) -> None:
    kind = "JSON" if args.json else "text"
    print(f"\nwrk -t1 -c{args.connections} -d{args.duration}s, {args.rounds} alternating rounds, medians")
    print(f"{'gateway':28s} {'req/s':>8s} {'p99 ms':>7s} {'user us':>8s} {'sys us':>7s} {'CPU us/req':>10s}")
    med = {}
    for name, runs in results.items():
        med[name] = [statistics.median(run[i] for run in runs) for i in range(4)]
        label = f"access log on ({kind}, stdout)" if name == "logged" else "--access-log off"
        rps, p99, user, system = med[name]
        print(f"{label:28s} {rps:8.0f} {p99:7.2f} {user:8.1f} {system:7.1f} {user + system:10.1f}")
    cost = sum(med["logged"][2:]) - sum(med["off"][2:])
    print(f"the access log costs {cost:+.1f} us of CPU per request ({med['logged'][0] / med['off'][0]:.2f}x the req/s)")
    print(f"access-log lines: {lines}; requests wrk reported: {wrk_requests} (difference {lines - wrk_requests:+d})")


if __name__ == "__main__":
    sys.exit(main())
