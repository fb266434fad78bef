"""Helpers for the response-comparison tests: IR mirrors with ``compare`` (until MirrorPolicy
objects make them from YAML), a real backend answering scripted responses per path, and a raw GET
on the real admin server."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import msgspec

from mirrorgate.ir.table import Filters, HTTPListener, MirrorCompare, RoutingTable
from tests.support.backends import Handler, read_head
from tests.support.client import Conn, encode_request


def with_compare(table: RoutingTable, settings: MirrorCompare | None) -> RoutingTable:
    """``table`` with ``compare`` set to ``settings`` on every mirror (rule- and backendRef-level)."""
    replace = msgspec.structs.replace

    def filters(f: Filters) -> Filters:
        return replace(f, mirrors=tuple(replace(m, compare=settings) for m in f.mirrors)) if f.mirrors else f

    def listener(li: HTTPListener) -> HTTPListener:
        hosts = []
        for vh in li.virtual_hosts:
            routes = []
            for r in vh.routes:
                a = r.action
                backends = tuple(replace(b, filters=filters(b.filters)) for b in a.backends)
                routes.append(replace(r, action=replace(a, filters=filters(a.filters), backends=backends)))
            hosts.append(replace(vh, routes=tuple(routes)))
        return replace(li, virtual_hosts=tuple(hosts))

    servers = tuple(replace(s, listeners=tuple(listener(li) for li in s.listeners)) for s in table.servers)
    return replace(table, servers=servers)


Reply = tuple[int, list[tuple[str, str]], bytes]


def response(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} X", *(f"{n}: {v}" for n, v in headers), f"content-length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def scripted(reply: Callable[[str], Reply]) -> Handler:
    """A backend handler: reads each request (head and content-length body) and answers what
    ``reply(target)`` returns, on a keep-alive connection."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await read_head(reader)
            lines = head.decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            status, headers, body = reply(target)
            writer.write(response(status, headers, body))
            await writer.drain()

    return handler


async def admin_get(port: int, path: str) -> tuple[int, bytes]:
    """(status, raw body bytes) of a GET on the admin server."""
    async with await Conn.open(port) as conn:
        await conn.send(encode_request("GET", path, "localhost"))
        r = await conn.read_response()
        return r.status, r.body


def admin_json(raw: bytes) -> Any:
    return json.loads(raw)
