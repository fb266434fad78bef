"""Misbehaving mirror backends for the benchmarks: ``slow`` (answers after --delay seconds) and
``blackhole`` (accepts, reads, never answers). Run: ``python bench/shadow_backends.py MODE PORT [DELAY]``.
Counts requests and prints the total on SIGTERM, so a benchmark can check what a mirror received.

It shares a CPU with wrk in the benchmarks, so it is built to cost as little as possible: uvloop,
``asyncio.Protocol`` and httptools (no streams, no task per request), keep-alive, one timer per
delayed response. Otherwise the cost of the shadow server shows up as client-side latency.
"""

import asyncio
import signal
import sys

import httptools
import uvloop

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"


class Counter:
    requests = 0


class Shadow(asyncio.Protocol):
    def __init__(self, mode: str, delay: float) -> None:
        self.mode = mode
        self.delay = delay
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_complete(self) -> None:
        Counter.requests += 1
        if self.mode == "blackhole":
            return
        if self.delay:
            self.loop.call_later(self.delay, self.reply)
        else:
            self.reply()

    def reply(self) -> None:
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(RESPONSE)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def main(mode: str, port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Shadow(mode, delay), "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    print(f"requests={Counter.requests}", flush=True)


if __name__ == "__main__":
    uvloop.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.2))
