"""Asynchronous name resolution for ``type: ExternalName`` Services, with a TTL cache.

How the data plane uses it: one ``Resolver`` per process (per worker); a backend whose IR endpoint
is a name calls ``await resolver.resolve(name, port)`` before taking a pooled connection, then
connects to the first address (the pool keys connections by the name, not the address, so a name
whose addresses change keeps its idle connections until they close). A ``DnsError`` becomes a 503
for the primary, or a mirror drop counted with reason ``dns``.

Rules:
- Lookups go through ``loop.getaddrinfo`` (the loop's thread pool; the system resolver, so
  ``/etc/hosts``, ``search`` domains and ``ndots`` from ``/etc/resolv.conf`` apply as for any other
  program in the pod). An IP literal is never looked up.
- getaddrinfo reports no TTL, so answers are kept a fixed ``ttl`` (30 s: the cache time of
  Kubernetes' cluster DNS, CoreDNS's default; short enough that a changed record is followed within
  half a minute, long enough that lookups cost nothing per request). Failures are kept
  ``negative_ttl`` (5 s): a name that does not resolve is not retried by every request (each
  retry can hold a pool thread for the resolver's whole timeout), yet a name that appears is used
  within seconds.
- One lookup per name at a time: concurrent ``resolve`` calls for a name share the lookup in
  flight (a caller cancelled while waiting does not cancel it for the others).
- At most ``max_entries`` names are kept, the least recently used dropped first.
- Addresses keep getaddrinfo's order (RFC 6724 destination address selection), duplicates removed.
"""

import asyncio
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mirrorgate.errors import ConnectError

GetAddrInfo = Callable[..., Awaitable[Sequence[tuple[Any, ...]]]]


class DnsError(ConnectError):
    """A name did not resolve (503; a mirror drop ``dns``)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"DNS lookup of {host} failed: {reason}")
        self.host = host
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Address:
    family: int  # socket.AF_INET or socket.AF_INET6
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Entry:
    expires: float
    hosts: tuple[tuple[int, str], ...]  # (family, address); empty when the lookup failed
    error: str | None  # why it failed; a fresh DnsError is raised from it for every caller


class Resolver:
    """Cached, de-duplicated ``getaddrinfo`` for ExternalName targets."""

    def __init__(
        self,
        *,
        ttl: float = 30.0,
        negative_ttl: float = 5.0,
        max_entries: int = 1024,
        getaddrinfo: GetAddrInfo | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self.getaddrinfo = getaddrinfo
        self.clock = clock
        self.cache: OrderedDict[str, Entry] = OrderedDict()
        self.inflight: dict[str, asyncio.Task[Entry]] = {}
        self.lookups = 0  # getaddrinfo calls made, for metrics and tests

    async def resolve(self, host: str, port: int) -> tuple[Address, ...]:
        """The addresses of ``host`` with ``port``; raises ``DnsError``."""
        literal = ip_literal(host)
        if literal is not None:
            return (Address(literal[0], literal[1], port),)
        entry = self.cached(host.lower().rstrip("."))
        if entry is None:
            entry = await self.lookup(host.lower().rstrip("."))
        if entry.error is not None:
            raise DnsError(host, entry.error)
        return tuple(Address(family, address, port) for family, address in entry.hosts)

    def cached(self, name: str) -> Entry | None:
        entry = self.cache.get(name)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            del self.cache[name]
            return None
        self.cache.move_to_end(name)
        return entry

    async def lookup(self, name: str) -> Entry:
        task = self.inflight.get(name)
        if task is None:
            task = self.inflight[name] = asyncio.ensure_future(self.fetch(name))
            task.add_done_callback(lambda done: self.landed(name, done))
        return await asyncio.shield(task)

    def landed(self, name: str, task: "asyncio.Task[Entry]") -> None:
        if self.inflight.get(name) is task:
            del self.inflight[name]

    async def fetch(self, name: str) -> Entry:
        self.lookups += 1
        getaddrinfo = self.getaddrinfo or asyncio.get_running_loop().getaddrinfo
        try:
            infos = await getaddrinfo(name, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
            entry = self.answer(infos)
        except (OSError, UnicodeError) as error:
            entry = self.failure(describe(error))
        self.store(name, entry)
        return entry

    def answer(self, infos: Sequence[tuple[Any, ...]]) -> Entry:
        hosts = tuple(dict.fromkeys((int(family), str(sockaddr[0])) for family, _, _, _, sockaddr in infos))
        if not hosts:
            return self.failure("no address")
        return Entry(self.clock() + self.ttl, hosts, None)

    def failure(self, reason: str) -> Entry:
        return Entry(self.clock() + self.negative_ttl, (), reason)

    def store(self, name: str, entry: Entry) -> None:
        self.cache[name] = entry
        self.cache.move_to_end(name)
        while len(self.cache) > self.max_entries:
            self.cache.popitem(last=False)


def ip_literal(host: str) -> tuple[int, str] | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return (socket.AF_INET6 if address.version == 6 else socket.AF_INET), str(address)


def describe(error: BaseException) -> str:
    if isinstance(error, socket.gaierror) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
