"""Python cost of one proxied request, without sockets: the client protocol, the exchange, the
pooled upstream connection and (optionally) the mirror dispatcher, driven with in-memory
transports on a real uvloop loop. It measures the interpreter work the data plane adds per
request, which is what separates mirrorgate from NGINX once the syscalls are equal
(docs/benchmarks.md); `vs_nginx.py` measures the whole.

Usage:  .venv/bin/python bench/hot_path.py [--requests 200000] [--rounds 5] [--cases plain,mirror,dropped]

Timings on a noisy machine swing; instruction counts do not. Instructions per request of a case:
  PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python \
      bench/hot_path.py --rounds 1 --no-overhead --cases plain --requests N
for two values of N (2000 and 6000); the difference of the totals over the difference of N
(a fixed hash seed keeps hashes, and so dict and set probing, the same from run to run).

Cases:
  plain    GET with a Host header, a plain route, NGINX's five response headers
  browser  the same with 12 request headers, as a browser sends
  mirror   100% mirrored; the mirror's upstream answers at once
  dropped  100% mirrored to a backend whose breaker is open (every mirror dropped at submit)
  slow     100% mirrored to a backend answering after 50 ms (at its cap: most mirrors dropped)
  policy   100% mirrored through a MirrorPolicy without settings (``bench/compare.py``'s mirror)
  compare  the same MirrorPolicy with ``compare: {}``: every response compared (both sides match)
  logged       plain, with the default (text) access log written to /dev/null by its writer
  logged-json  plain, with the JSON access log written to /dev/null by its writer
  logged-old   plain, with the text access log as a ``logging`` record per request to /dev/null
               (what the access log cost before its writer: the comparison point)
  floor    no mirrorgate: a minimal pass-through (httptools parsers on both sides with the
           callbacks mirrorgate registers, a fixed upstream head, the response relayed as
           received) over the same transports: the cost of httptools, uvloop and this harness,
           which no change to mirrorgate's Python can remove

Compare ``logged`` with ``plain`` for what the access log costs per request; CPU includes the
writer's thread.

Prints microseconds per request, wall clock and process CPU (median of the rounds), and the
loop's own overhead.
"""

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from random import Random
from typing import Any

import httptools
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import route_yaml  # noqa: E402
from compare import config as policy_yaml  # noqa: E402

from mirrorgate.dataplane import accesslog  # noqa: E402
from mirrorgate.dataplane.accesswriter import AccessWriter  # noqa: E402
from mirrorgate.dataplane.matcher import compile  # noqa: E402
from mirrorgate.dataplane.protocol import HttpProtocol  # noqa: E402
from mirrorgate.dataplane.state import GatewayState  # noqa: E402
from mirrorgate.mirror import Dispatcher, MirrorConfig  # noqa: E402
from mirrorgate.serve.config import load_table  # noqa: E402
from mirrorgate.upstream.connection import UpstreamConnection  # noqa: E402
from mirrorgate.upstream.pool import Pool  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
BROWSER = (
    b"GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
    b"Referer: https://www.example.com/\r\nDNT: 1\r\nConnection: keep-alive\r\n"
    b"Cookie: session=0123456789abcdef; theme=dark\r\nUpgrade-Insecure-Requests: 1\r\n"
    b"Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 20:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 23\r\nConnection: keep-alive\r\n\r\n"
    b"hello from the backend\n"
)


class Transport:
    """An in-memory transport: ``on_write`` is called with what the protocol writes."""

    def __init__(self, on_write: Any = None) -> None:
        self.on_write = on_write
        self.closing = False
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += 1
        if self.on_write is not None:
            self.on_write(data)

    def writelines(self, data: list[bytes]) -> None:
        self.write(b"".join(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("192.0.2.7", 5555) if name == "peername" else default

    def get_write_buffer_size(self) -> int:
        return 0


def upstream(pool: Pool, key: tuple[str, int], delay: float = 0.0) -> UpstreamConnection:
    """An idle pooled connection to ``key`` whose peer answers RESPONSE to every request at once
    (on the next loop turn, as a real read would arrive), or after ``delay`` seconds."""
    loop = asyncio.get_running_loop()
    conn = UpstreamConnection(key, lambda c: None)
    answer: Callable[[bytes], object]
    if delay:
        answer = lambda data: loop.call_later(delay, conn.data_received, RESPONSE)  # noqa: E731
    else:
        answer = lambda data: loop.call_soon(conn.data_received, RESPONSE)  # noqa: E731
    conn.connection_made(Transport(answer))  # type: ignore[arg-type]
    from mirrorgate.upstream.connection import State

    ks = pool._key(key)  # as _connect leaves it
    ks.in_use += 1
    pool._active += 1
    conn.pool_key = ks
    conn.state = State.ACTIVE
    pool.release(conn, True)
    return conn


def access_log_for(case: str) -> None:
    """Switch the access log on (a ``logged*`` case) or off, as the case says."""
    access = logging.getLogger("mirrorgate.access")
    access.handlers.clear()
    accesslog.install(None)
    access.disabled = not case.startswith("logged")
    access.setLevel(logging.INFO)
    access.propagate = False
    if case == "logged-old":
        handler = logging.StreamHandler(open(os.devnull, "w"))  # lives as long as the run
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        access.addHandler(handler)
    elif case.startswith("logged"):
        accesslog.install(AccessWriter(os.open(os.devnull, os.O_WRONLY)))


class FloorClient:
    """The floor's client side: parses the request (every callback mirrorgate registers, empty
    but for the end of the head) and writes a fixed head upstream."""

    def __init__(self, upstream: "FloorUpstream") -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.upstream = upstream
        self.transport: Any = None

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        pass

    def on_url(self, url: bytes) -> None:
        pass

    def on_header(self, name: bytes, value: bytes) -> None:
        pass

    def on_headers_complete(self) -> None:
        self.upstream.transport.write(FLOOR_HEAD)

    def on_body(self, body: bytes) -> None:
        pass

    def on_message_complete(self) -> None:
        pass


class FloorUpstream:
    """The floor's upstream side: parses the response and relays head and body in one write."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.client: Any = None
        self.transport: Any = None
        self.out: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_headers_complete(self) -> None:
        self.out.append(data_head(RESPONSE))

    def on_body(self, body: bytes) -> None:
        self.out.append(body)

    def on_message_complete(self) -> None:
        out, self.out = self.out, []
        self.client.transport.write(out[0] + out[1])


FLOOR_HEAD = b"GET / HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nx-forwarded-for: 192.0.2.7\r\n\r\n"


def data_head(response: bytes) -> bytes:
    return response[: response.index(b"\r\n\r\n") + 4]


async def run_floor(requests: int) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    count = 0
    up = FloorUpstream()
    client = FloorClient(up)
    up.client = client
    up.transport = Transport(lambda data: loop.call_soon(up.data_received, RESPONSE))

    def on_client_write(data: bytes) -> None:
        nonlocal count
        count += 1
        if count >= requests:
            done.set()
        else:
            loop.call_soon(client.data_received, REQUEST)

    client.transport = Transport(on_client_write)
    start, cpu = time.perf_counter(), time.process_time()
    client.data_received(REQUEST)
    await done.wait()
    return (time.perf_counter() - start) / requests * 1e6, (time.process_time() - cpu) / requests * 1e6


async def run_case(case: str, requests: int, tmp: Path) -> tuple[float, float]:
    if case == "floor":
        return await run_floor(requests)
    access_log_for(case)
    mirrored = case in ("mirror", "dropped", "slow", "policy", "compare")
    path = tmp / f"{case}.yaml"
    if case in ("policy", "compare"):
        path.write_text(policy_yaml(8080, 9001, 9002, "mirror" if case == "policy" else "compare"))
    else:
        path.write_text(route_yaml(8080, 9001, 9002 if mirrored else None))
    table = load_table([str(path)], "127.0.0.1")
    dispatcher = Dispatcher(MirrorConfig(), rng=Random(1)) if mirrored else None
    pool = Pool()
    state = GatewayState(compile(table), pool, rng=Random(1), mirror=dispatcher, access_log_json=case == "logged-json")
    for _ in range(2):
        upstream(pool, ("127.0.0.1", 9001))
    if dispatcher is not None:
        if case in ("mirror", "policy", "compare"):
            for _ in range(2):
                upstream(dispatcher.pool, ("127.0.0.1", 9002))
        elif case == "slow":  # a mirror answering after 50 ms: held at its cap, queued, dropped
            for _ in range(MirrorConfig().max_concurrent_per_backend):
                upstream(dispatcher.pool, ("127.0.0.1", 9002), delay=0.05)
        else:
            breaker = dispatcher._backend("service/default/shadow:80").breaker  # open for ever
            breaker.open_until = float("inf")
    done = asyncio.Event()
    count = 0
    request = BROWSER if case == "browser" else REQUEST
    proto: HttpProtocol

    def on_client_write(data: bytes) -> None:
        nonlocal count
        count += 1
        if count >= requests:
            done.set()
        else:
            loop.call_soon(proto.data_received, request)

    loop = asyncio.get_running_loop()
    proto = HttpProtocol(state, (table.servers[0].address, table.servers[0].port))
    proto.connection_made(Transport(on_client_write))  # type: ignore[arg-type]
    start, cpu = time.perf_counter(), time.process_time()
    proto.data_received(request)
    await done.wait()
    accesslog.drain(10.0)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    proto.connection_lost(None)
    if dispatcher is not None:
        await dispatcher.shutdown()
    access_log_for("plain")
    return elapsed / requests * 1e6, cpu / requests * 1e6


async def loop_overhead(requests: int) -> tuple[float, float]:
    """Two ``call_soon`` hops per request, as the harness itself costs."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    count = 0

    def hop() -> None:
        loop.call_soon(back)

    def back() -> None:
        nonlocal count
        count += 1
        if count >= requests:
            done.set()
        else:
            loop.call_soon(hop)

    start, cpu = time.perf_counter(), time.process_time()
    hop()
    await done.wait()
    return (time.perf_counter() - start) / requests * 1e6, (time.process_time() - cpu) / requests * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--requests", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--cases", default="plain,browser,mirror,dropped")
    ap.add_argument("--no-overhead", action="store_true", help="skip measuring the loop's own overhead")
    args = ap.parse_args()
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="mirrorgate-hot-"))
    results: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        if not args.no_overhead:
            results.setdefault("loop overhead", []).append(uvloop.run(loop_overhead(args.requests)))
        for case in args.cases.split(","):
            results.setdefault(case, []).append(uvloop.run(run_case(case, args.requests, tmp)))
    for name, values in results.items():
        wall, cpu = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
        low = min(v[0] for v in values)
        print(f"{name:14s} {wall:6.2f} us/request  (min {low:.2f})  CPU {cpu:6.2f} us/request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
