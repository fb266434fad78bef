"""Two revisions of mirrorgate side by side on one case, in the same run: is a change faster?

Usage:  .venv/bin/python bench/ab.py REV [--against REV2] [--case slow] [--rounds 16]
                                          [--duration 5] [--connections 50]

REV (and REV2; default: the working tree) is anything ``git worktree add`` takes: a commit, a
branch, ``HEAD~3``. Each revision is checked out into a temporary worktree and run with this
checkout's virtualenv (so a revision that changes the dependencies is out of scope). For a
mirror case, the working tree (or REV2) also runs without the mirror, and each revision is
reported as the median over rounds of its ratio to that mirror-less run of the same round, as
``vs_nginx.py`` does (the machine's speed drifts between rounds). Cases are those of
``vs_nginx.py`` but ``post16k`` and ``defaults``.

The machine swings by 10-30 % between minutes (``docs/benchmarks.md``), and a difference of a
few percent needs many rounds: the script alternates the order within each round. Besides
requests/s and p99 it reports, per request, the CPU each mirrorgate spent (user and system, from
``/proc/PID/stat`` of its processes, over the requests wrk reports) and the inter-processor
interrupts delivered to CPU 0 (the ``CAL`` line of
``/proc/interrupts``, all processes): on a VM whose idle vCPU halts at once, each costs the
process that wakes a sleeper on the other CPU a trip through the hypervisor.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, cpu_per_request, cpu_sample, free_port, route_yaml, tree
from vs_nginx import BACKEND_CONF, Procs, ensure_tools, pinned, shadow_argv, wait_port, wrk

CASES = ("plain", "mirror", "slow", "blackhole", "refusing")
LAUNCH = "import sys; sys.path.insert(0, sys.argv.pop(1)); from mirrorgate.cli import main; sys.exit(main())"


def mirrorgate_argv(source: Path, config: Path) -> list[str]:
    """mirrorgate from the checkout at ``source``, with this checkout's interpreter and packages."""
    run = ["run", "-f", str(config), "--bind", "127.0.0.1", "--access-log", "off", "--admin", "off"]
    return pinned(1, [sys.executable, "-c", LAUNCH, str(source), *run, "--workers", "1", "--no-watch"])


def ipis_to_cpu0() -> int:
    """Function-call interrupts delivered to CPU 0 so far (``CAL`` in ``/proc/interrupts``)."""
    for line in Path("/proc/interrupts").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == "CAL:" and len(parts) > 1 and parts[1].isdigit():
            return int(parts[1])
    return 0


def checkout(rev: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(into), rev], check=True)
    return into


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("rev")
    ap.add_argument("--against", default=None, help="the second revision (default: the working tree)")
    ap.add_argument("--case", default="slow", choices=CASES)
    ap.add_argument("--rounds", type=int, default=16)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    args = ap.parse_args()
    ensure_tools()
    tmp = Path(tempfile.mkdtemp(prefix="mirrorgate-ab-"))
    worktrees = [checkout(args.rev, tmp / "a")]
    b_source = ROOT
    if args.against is not None:
        b_source = checkout(args.against, tmp / "b")
        worktrees.append(b_source)
    names = {"a": f"{args.rev}", "b": args.against or "working tree"}
    mirrored = args.case != "plain"
    procs = Procs(tmp)
    try:
        backend, shadow = free_port(), free_port()
        (tmp / "backend.conf").write_text(BACKEND_CONF.format(tmp=tmp, name="backend", port=backend))
        (tmp / "shadow.conf").write_text(BACKEND_CONF.format(tmp=tmp, name="shadow", port=shadow))
        procs.start("backend", pinned(0, ["nginx", "-c", str(tmp / "backend.conf")]))
        if args.case == "mirror":
            procs.start("shadow", pinned(0, ["nginx", "-c", str(tmp / "shadow.conf")]))
        elif args.case in ("slow", "blackhole"):
            procs.start("shadow", pinned(0, shadow_argv(tmp, args.case, shadow)))
        runs: dict[str, tuple[int, int]] = {}  # name -> (port, pid)
        for name, source in (("a", worktrees[0]), ("b", b_source)):
            port = free_port()
            (tmp / f"{name}.yaml").write_text(route_yaml(port, backend, shadow if mirrored else None))
            runs[name] = (port, procs.start(name, mirrorgate_argv(source, tmp / f"{name}.yaml")).pid)
        if mirrored:
            port = free_port()
            (tmp / "own.yaml").write_text(route_yaml(port, backend, None))
            runs["own"] = (port, procs.start("own", mirrorgate_argv(b_source, tmp / "own.yaml")).pid)
            names["own"] = f"{names['b']}, no mirror"
        for port, _ in runs.values():
            wait_port(port)
        if args.case != "refusing" and mirrored:
            wait_port(shadow)
        order = list(runs)
        for name in order:
            wrk(runs[name][0], 2, args.connections, None)  # warm-up
        # per name, per round: (req/s, p99 ms, user µs/req, system µs/req, IPIs to CPU 0 per req)
        results: dict[str, list[tuple[float, float, float, float, float]]] = {name: [] for name in order}
        for r in range(args.rounds):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                port, pid = runs[name]
                pids = tree(pid)
                cpu, i0 = cpu_sample(pids), ipis_to_cpu0()
                rps, p99, requests = wrk(port, args.duration, args.connections, None)
                (user, system), i1 = cpu_per_request(cpu, cpu_sample(pids), requests), ipis_to_cpu0()
                results[name].append((rps, p99, user, system, (i1 - i0) / max(requests, 1)))
                print(f"  round {r + 1:2d} {names[name]:28s} {rps:9.0f} req/s  p99 {p99:6.2f} ms", flush=True)
    finally:
        procs.stop()
        for checked_out in worktrees:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(checked_out)], check=False)
    wrk_args = f"wrk -t1 -c{args.connections} -d{args.duration}s"
    print(f"\ncase {args.case}: {wrk_args}, {args.rounds} alternating rounds, medians")
    header = ("run", "req/s", "p99 ms", "vs no mirror", "user µs", "sys µs", "IPI/req")
    print("{:30s} {:>8s} {:>7s} {:>14s} {:>8s} {:>7s} {:>8s}".format(*header))
    for name in order:
        rows = results[name]
        med = [statistics.median(row[i] for row in rows) for i in range(5)]
        versus = "-"
        if mirrored and name != "own":
            own = results["own"]
            rps_ratio = statistics.median(m[0] / o[0] for m, o in zip(rows, own, strict=True))
            p99_ratio = statistics.median(m[1] / o[1] for m, o in zip(rows, own, strict=True))
            versus = f"{rps_ratio:.2f}x, {p99_ratio:.2f}x"
        print(f"{names[name]:30s} {med[0]:8.0f} {med[1]:7.2f} {versus:>14s} {med[2]:8.2f} {med[3]:7.2f} {med[4]:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
