"""Scale benchmark: one file with N HTTPRoutes (default 10,000) and 1,000 Services with their
EndpointSlices, measured end to end and stage by stage.

Measures (each repeated ``--repeat`` times, the median printed):
a. ``mirrorgate validate``: wall time and the child's peak RSS (``wait4``);
b. ``mirrorgate status``: wall time and peak RSS;
c. ``mirrorgate run --workers 1``: from process start to the LAST route answering from its
   backend (polled through the gateway), and the RSS of the process tree once ready (/proc);
d. one route edited in the file (its path changed): from the write to the new path answering;
e. the stages alone, in this process: YAML parse, decode + admission, Snapshot, translate,
   invariants check, matcher compile (the translation alone is what a Kubernetes provider pays);
f. the per-request match cost (``Matcher.select``) with 10 routes and with N routes: it must not grow.

Layout: ``--gateways`` Gateways (default 10), each on its own local port with 5 listeners: four
``*.l<k>.gw<g>.example`` wildcards and one without hostname. Routes spread over 10 namespaces
and 10 routes per hostname; every 10th route mirrors (50%) to another Service, every 7th splits
90/10 over two Services. Every endpoint points at one of 4 local echo backends; the last route's
Service points at a fifth one, named ``last``, so an answer from it proves the route is served.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MIRRORGATE, free_port

NAMESPACES = 10
LISTENERS = 5  # per Gateway; the last one has no hostname
ROUTES_PER_HOST = 10
ECHOES = 4


def gateway_yaml(g: int, port: int) -> str:
    listeners = "".join(
        f"  - {{name: l{k}, port: {port}, protocol: HTTP, hostname: '*.l{k}.gw{g}.example',"
        " allowedRoutes: {namespaces: {from: All}}}\n"
        for k in range(LISTENERS - 1)
    )
    return (
        f"---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw{g}, namespace: ns0}}\n"
        f"spec:\n  gatewayClassName: mirrorgate\n  listeners:\n{listeners}"
        f"  - {{name: any, port: {port}, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}\n"
    )


def service_yaml(s: int, port: int) -> str:
    ns = f"ns{s % NAMESPACES}"
    return (
        f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: s{s}, namespace: {ns}}}\n"
        "spec: {ports: [{name: http, port: 80, targetPort: 8080}]}\n"
        f"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        f"metadata: {{name: s{s}-abcde, namespace: {ns}, labels: {{kubernetes.io/service-name: s{s}}}}}\n"
        f"addressType: IPv4\nports: [{{name: http, port: {port}, protocol: TCP}}]\n"
        "endpoints:\n- {addresses: [127.0.0.1], conditions: {ready: true}}\n"
        "- {addresses: [127.0.0.2], conditions: {ready: false}}\n"
    )


def route_hostname(i: int, gateways: int) -> str:
    g, k = i % gateways, (i // gateways) % LISTENERS
    host = i // ROUTES_PER_HOST
    return f"app{host}.l{k}.gw{g}.example" if k < LISTENERS - 1 else f"app{host}.any.gw{g}.example"


def route_path(i: int, edited: bool = False) -> str:
    return f"/edited/v{i % 3}/r{i}" if edited else f"/api/v{i % 3}/r{i}"


def route_yaml(i: int, gateways: int, services: int, edited: bool = False) -> str:
    """Route ``i``: one rule on its path; the Services it uses live in its namespace."""
    ns_index = i % NAMESPACES
    g, k = i % gateways, (i // gateways) % LISTENERS
    section = f"l{k}" if k < LISTENERS - 1 else "any"
    per_ns = services // NAMESPACES
    svc = f"s{ns_index + NAMESPACES * (i % per_ns)}"
    other = f"s{ns_index + NAMESPACES * ((i + 1) % per_ns)}"
    if i % 7 == 0:
        backends = f"[{{name: {svc}, port: 80, weight: 90}}, {{name: {other}, port: 80, weight: 10}}]"
    else:
        backends = f"[{{name: {svc}, port: 80}}]"
    filters = ""
    if i % 10 == 0:
        mirror = f"{{backendRef: {{name: {other}, port: 80}}, percent: 50}}"
        filters = f"\n    filters: [{{type: RequestMirror, requestMirror: {mirror}}}]"
    return (
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
        f"metadata: {{name: r{i}, namespace: ns{ns_index}}}\n"
        f"spec:\n  parentRefs: [{{name: gw{g}, namespace: ns0, sectionName: {section}}}]\n"
        f"  hostnames: [{route_hostname(i, gateways)}]\n"
        f"  rules:\n  - matches: [{{path: {{type: PathPrefix, value: {route_path(i, edited)}}}}}]\n"
        f"    backendRefs: {backends}{filters}\n"
    )


class Layout:
    """The generated configuration and where its last route answers."""

    def __init__(self, routes: int, services: int, gateways: int) -> None:
        self.routes, self.services, self.gateways = routes, services, gateways
        self.gw_ports = [free_port() for _ in range(gateways)]
        self.echo_ports = [free_port() for _ in range(ECHOES + 1)]  # the last one is "last"
        self.last = routes - 1
        per_ns = services // NAMESPACES
        self.last_service = self.last % NAMESPACES + NAMESPACES * (self.last % per_ns)

    def text(self, edited: bool = False) -> str:
        parts = [
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: mirrorgate}\n"
            "spec: {controllerName: mirrorgate.dev/gateway-controller}\n"
        ]
        parts += [
            f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns{n}, labels: {{team: t{n}}}}}\n"
            for n in range(NAMESPACES)
        ]
        parts += [gateway_yaml(g, p) for g, p in enumerate(self.gw_ports)]
        for s in range(self.services):
            echo = self.echo_ports[-1] if s == self.last_service else self.echo_ports[s % ECHOES]
            parts.append(service_yaml(s, echo))
        parts += [route_yaml(i, self.gateways, self.services, edited and i == self.last) for i in range(self.routes)]
        return "".join(parts)

    def last_request(self, edited: bool = False) -> tuple[int, str, str]:
        """(gateway port, Host, path) of the last route."""
        return (
            self.gw_ports[self.last % self.gateways],
            route_hostname(self.last, self.gateways),
            route_path(self.last, edited),
        )


# --- processes ---------------------------------------------------------------------------------


def run_child(args: list[str]) -> tuple[float, float]:
    """Run ``mirrorgate ARGS``; (wall seconds, peak RSS MB) of the child."""
    start = time.perf_counter()
    proc = subprocess.Popen([MIRRORGATE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        print(f"warning: mirrorgate {args[0]} exited {proc.returncode}", file=sys.stderr)
    return wall, usage.ru_maxrss / 1024


def ask(port: int, host: str, path: str) -> bytes:
    """One HTTP/1.1 request through the gateway; the raw response ("" when refused)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)
    except OSError:
        return b""


def served_by_last(port: int, host: str, path: str) -> bool:
    reply = ask(port, host, path)
    return reply.startswith(b"HTTP/1.1 200") and b'"pod": "last"' in reply


def wait_for(check: Callable[[], bool], timeout: float, every: float = 0.05) -> float | None:
    """Seconds until ``check()`` holds (polled), or None after ``timeout``."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if check():
            return time.perf_counter() - start
        time.sleep(every)
    return None


def tree_rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` and its descendants, in MB."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return total


def start_echoes(layout: Layout) -> list[subprocess.Popen[bytes]]:
    procs = []
    for n, port in enumerate(layout.echo_ports):
        name = "last" if n == len(layout.echo_ports) - 1 else f"echo{n}"
        cmd = [MIRRORGATE, "echo", "--port", str(port), "--bind", "127.0.0.1", "--name", name]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for port in layout.echo_ports:
        wait_for(lambda p=port: ask(p, "x", "/") != b"", 10)  # type: ignore[misc]
    return procs


def measure_run(layout: Layout, path: Path, timeout: float) -> tuple[float | None, float, float | None]:
    """(seconds to the last route serving, tree RSS MB then, seconds for an edit to serve)."""
    path.write_text(layout.text())
    admin = free_port()
    cmd = [MIRRORGATE, "run", "-f", str(path), "--workers", "1", "--admin", f"127.0.0.1:{admin}"]
    cmd += ["--bind", "127.0.0.1", "--access-log", "off"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port, host, route = layout.last_request()
        ready = wait_for(lambda: served_by_last(port, host, route), timeout)
        ready = None if ready is None else time.perf_counter() - start
        rss = tree_rss_mb(proc.pid)
        edit = None
        if ready is not None:
            _, _, new_route = layout.last_request(edited=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(layout.text(edited=True))
            t0 = time.perf_counter()
            os.replace(tmp, path)
            edit = wait_for(lambda: served_by_last(port, host, new_route), timeout)
            edit = None if edit is None else time.perf_counter() - t0
        return ready, rss, edit
    finally:
        proc.terminate()
        proc.wait(10)


# --- in-process stages -------------------------------------------------------------------------


def stages(text: str, file: str) -> dict[str, float]:
    """Seconds per stage of one load, in this process."""
    from mirrorgate.dataplane.matcher import compile as compile_matcher
    from mirrorgate.errors import ConfigError
    from mirrorgate.ir.invariants import check
    from mirrorgate.model.snapshot import Snapshot
    from mirrorgate.providers import files
    from mirrorgate.translate import translate

    out: dict[str, float] = {}
    t = time.perf_counter()
    errors: list[ConfigError] = []
    docs = list(files._parse(file, text, errors))
    out["yaml parse"] = time.perf_counter() - t
    t = time.perf_counter()
    load = files._Load()
    for doc in docs:
        obj = files._decode(doc, load)
        if obj is not None:
            load.add(doc.file, obj)
    out["decode+admission"] = time.perf_counter() - t
    t = time.perf_counter()
    snap = Snapshot.of(load.admitted.values())
    out["snapshot"] = time.perf_counter() - t
    t = time.perf_counter()
    result = translate(snap)
    out["translate"] = time.perf_counter() - t
    t = time.perf_counter()
    problems = check(result.table)
    out["invariants"] = time.perf_counter() - t
    t = time.perf_counter()
    compile_matcher(result.table)
    out["matcher compile"] = time.perf_counter() - t
    if errors or load.errors or problems:
        print(f"warning: {len(errors) + len(load.errors)} load error(s), {len(problems)} problem(s)", file=sys.stderr)
    return out


def match_cost_ns(layout: Layout, file: str, rounds: int = 200_000) -> float:
    """Nanoseconds per ``Matcher.select`` of the last route's request (host cache warm)."""
    from mirrorgate.dataplane.matcher import compile as compile_matcher
    from mirrorgate.providers.files import load_paths
    from mirrorgate.translate import TranslateOptions, translate

    Path(file).write_text(layout.text())
    table = translate(load_paths([file]).snapshot, TranslateOptions(bind="127.0.0.1")).table
    matcher = compile_matcher(table)
    port, host, path = layout.last_request()
    server, hb, target = ("127.0.0.1", port), host.encode(), f"{path}/item?x=1".encode()
    decision = matcher.select(server, hb, b"GET", target, [])
    assert decision.status == 0
    assert decision.route.startswith(f"httproute/ns{layout.last % NAMESPACES}/r{layout.last}/")
    select = matcher.select
    t = time.perf_counter()
    for _ in range(rounds):
        select(server, hb, b"GET", target, [])
    return (time.perf_counter() - t) / rounds * 1e9


# --- report ------------------------------------------------------------------------------------


def median(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "timeout"
    return f"{statistics.median(got):.2f}" + ("" if len(got) == len(values) else f" ({len(values) - len(got)} timeout)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--routes", type=int, default=10_000)
    ap.add_argument("--services", type=int, default=1_000)
    ap.add_argument("--gateways", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for a route to serve")
    ap.add_argument("--only", default="abcdef", help="which measures to run, e.g. 'e' or 'abf'")
    args = ap.parse_args()
    layout = Layout(args.routes, args.services, args.gateways)
    rows: list[tuple[str, str]] = []
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mg-scale-") as tmp:
        path = Path(tmp) / "config.yaml"
        text = layout.text()
        path.write_text(text)
        print(f"{args.routes} routes, {args.services} services: {len(text) / 1e6:.1f} MB of YAML", file=sys.stderr)
        for what, cmd in (("a", "validate"), ("b", "status")):
            if what in args.only:
                runs = [run_child([cmd, "-f", str(path)]) for _ in range(args.repeat)]
                rows.append((f"{cmd} wall s", median([w for w, _ in runs])))
                rows.append((f"{cmd} peak RSS MB", median([r for _, r in runs])))
        if "c" in args.only or "d" in args.only:
            echoes = start_echoes(layout)
            try:
                runs3 = [measure_run(layout, path, args.timeout) for _ in range(args.repeat)]
            finally:
                for e in echoes:
                    e.terminate()
                    e.wait(5)
            rows.append(("run: last route serving s", median([r for r, _, _ in runs3])))
            rows.append(("run: RSS when ready MB (tree)", median([m for _, m, _ in runs3])))
            rows.append(("run: one-route edit serving s", median([e for _, _, e in runs3])))
        if "e" in args.only:
            text = layout.text()
            runs4 = [stages(text, str(path)) for _ in range(args.repeat)]
            for stage in runs4[0]:
                rows.append((f"stage: {stage} s", median([r[stage] for r in runs4])))
        if "f" in args.only:
            small = Layout(10, 10, 1)
            rows.append(
                ("match ns/request, 10 routes", median([match_cost_ns(small, str(path)) for _ in range(args.repeat)]))
            )
            rows.append(
                (
                    f"match ns/request, {args.routes} routes",
                    median([match_cost_ns(layout, str(path)) for _ in range(args.repeat)]),
                )
            )
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  median of {args.repeat}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
