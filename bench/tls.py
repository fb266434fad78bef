"""HTTPS termination beside NGINX on loopback, one worker each, under `wrk`: keep-alive requests
per second, new TLS connections per second, and the CPU per request.

Usage:  .venv/bin/python bench/tls.py [--rounds 3] [--duration 8] [--connections 50]
        (a smoke run: --rounds 1 --duration 2)

Cases:
  keepalive  HTTPS keep-alive requests (wrk's connections stay open)
  handshake  one request per connection (``Connection: close``): every request is a new TCP
             connection and a TLS handshake, so this measures new TLS connections per second

Both proxies terminate TLS with the same ECDSA P-256 certificate (made here, with the test CA
of ``trustme``), TLS 1.2/1.3, and proxy to the same NGINX backend over plain HTTP with upstream
keep-alive. NGINX is written an ``ssl_certificate`` config with its default session cache off
and tickets on (mirrorgate keeps tickets on, and has no shared session cache). mirrorgate serves
a routing table built directly (one HTTPS listener, one route), in a process running the
``DataPlane`` under uvloop as ``run`` does. Pinning, rounds and the CPU-per-request accounting
are those of ``vs_nginx.py``. Targets: keep-alive >= 0.6x NGINX, new connections/s >= 0.5x.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

from common import ROOT, free_port
from vs_nginx import BACKEND_CONF, Procs, Run, ensure_tools, measured, pinned, wait_port, wrk

TLS_PROXY_CONF = """
worker_processes 1; daemon off; pid {tmp}/tlsproxy.pid; error_log {tmp}/tlsproxy.err;
events {{ worker_connections 8192; }}
http {{ access_log off;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{ listen 127.0.0.1:{port} ssl; keepalive_requests 1000000;
    ssl_certificate {tmp}/tls.crt; ssl_certificate_key {tmp}/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets on;
    location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
"""

CLOSE_LUA = 'wrk.headers["Connection"] = "close"\n'
CASES = ("keepalive", "handshake")


def write_certificate(tmp: Path) -> None:
    import trustme

    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    leaf = ca.issue_cert("bench.example.com", "127.0.0.1", key_type=trustme.KeyType.ECDSA)
    (tmp / "tls.crt").write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    (tmp / "tls.key").write_bytes(leaf.private_key_pem.bytes())


def check_ok(port: int) -> None:
    """One HTTPS request: the proxy must answer 200 (wrk counts errors as requests)."""
    import socket
    import ssl

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: bench.example.com\r\nConnection: close\r\n\r\n")
        status = tls.recv(64).split(b" ", 2)[1]
    if status != b"200":
        raise RuntimeError(f"the proxy on port {port} answered {status.decode()}, not 200")


def serve(port: int, backend: int, tmp: Path) -> None:
    """The mirrorgate side: one HTTPS listener routing everything to ``backend``, under uvloop."""
    import uvloop

    from mirrorgate.ir.table import (
        Action,
        Backend,
        Certificate,
        HTTPListener,
        ListenerTLS,
        Match,
        Route,
        RoutingTable,
        Server,
        UpstreamAddress,
        VirtualHost,
    )
    from mirrorgate.serve.plane import DataPlane
    from mirrorgate.tls.certs import parse_tls_secret

    crt, key = (tmp / "tls.crt").read_bytes(), (tmp / "tls.key").read_bytes()
    pair = parse_tls_secret(crt, key)
    cert = Certificate(digest=pair.digest, source="secret/bench/tls", chain_pem=crt.decode(), key_pem=key.decode())
    upstream = Backend(
        name="service/bench/b:80", weight=1, endpoints=(UpstreamAddress(address="127.0.0.1", port=backend),)
    )
    route = Route(name="httproute/bench/r/rule/0/match/0", match=Match(), action=Action(rule="r", backends=(upstream,)))
    listener = HTTPListener(
        name="gateway/bench/gw/listener/https",
        port=port,
        virtual_hosts=(VirtualHost(hostname="", routes=(route,)),),
        tls=ListenerTLS(certificates=(pair.digest,)),
    )
    table = RoutingTable(servers=(Server(address="127.0.0.1", port=port, listeners=(listener,)),), certificates=(cert,))

    async def main() -> None:
        plane = DataPlane(table)
        await plane.start()
        await asyncio.Event().wait()

    uvloop.run(main())


def run(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, list[Run]]]:
    procs = Procs(tmp)
    backend, nginx_port, mg_port = free_port(), free_port(), free_port()
    write_certificate(tmp)
    (tmp / "backend.conf").write_text(BACKEND_CONF.format(tmp=tmp, name="backend", port=backend))
    (tmp / "tlsproxy.conf").write_text(TLS_PROXY_CONF.format(tmp=tmp, port=nginx_port, backend=backend))
    (tmp / "close.lua").write_text(CLOSE_LUA)
    results: dict[str, dict[str, list[Run]]] = {case: {"nginx": [], "mirrorgate": []} for case in CASES}
    try:
        procs.start("backend", pinned(0, ["nginx", "-c", str(tmp / "backend.conf")]))
        pids = {
            "nginx": procs.start("tlsproxy", pinned(1, ["nginx", "-c", str(tmp / "tlsproxy.conf")])).pid,
            "mirrorgate": procs.start(
                "mirrorgate",
                pinned(
                    1, [sys.executable, str(ROOT / "bench" / "tls.py"), "--serve", str(mg_port), str(backend), str(tmp)]
                ),
            ).pid,
        }
        ports = {"nginx": nginx_port, "mirrorgate": mg_port}
        for port in (backend, *ports.values()):
            wait_port(port)
        for port in ports.values():
            check_ok(port)
            wrk(port, 1, args.connections, None, "https")  # warm-up
        for r in range(args.rounds):
            for case in CASES:
                script = tmp / "close.lua" if case == "handshake" else None
                order = list(ports.items())
                for name, port in order[r % 2 :] + order[: r % 2]:
                    got = measured(pids[name], port, args.duration, args.connections, script, "https")
                    results[case][name].append(got)
                    print(
                        f"  {case:9s} round {r + 1} {name:10s} {got[0]:9.0f} req/s  p99 {got[1]:8.2f} ms  "
                        f"CPU {got[2]:6.1f} us user {got[3]:6.1f} us sys per request",
                        flush=True,
                    )
    finally:
        procs.stop()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--serve", nargs=3, metavar=("PORT", "BACKEND", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(int(args.serve[0]), int(args.serve[1]), Path(args.serve[2]))
        return 0
    ensure_tools()
    results = run(args, Path(tempfile.mkdtemp(prefix="mirrorgate-tls-bench-")))
    print(f"\nwrk -t1 -c{args.connections} -d{args.duration}s over HTTPS, {args.rounds} rounds, medians")
    print(
        f"{'case':10s} {'nginx req/s':>12s} {'mirrorgate':>11s} {'ratio':>6s} {'target':>7s} "
        f"{'CPU us/req nginx':>17s} {'mirrorgate':>11s}"
    )
    for case, runs in results.items():
        n, g = (statistics.median(r[0] for r in runs[k]) for k in ("nginx", "mirrorgate"))
        n_cpu, g_cpu = (statistics.median(r[2] + r[3] for r in runs[k]) for k in ("nginx", "mirrorgate"))
        target = 0.6 if case == "keepalive" else 0.5
        print(f"{case:10s} {n:12.0f} {g:11.0f} {g / n if n else 0:6.2f} {target:7.1f} {n_cpu:17.1f} {g_cpu:11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
