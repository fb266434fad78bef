import asyncio
import socket
from collections.abc import Sequence
from typing import Any

import pytest

from mirrorgate.upstream.dns import Address, DnsError, Resolver

V4 = socket.AF_INET
V6 = socket.AF_INET6


class FakeDns:
    """A getaddrinfo answering from a table; ``gate`` holds every lookup until set."""

    def __init__(self, table: dict[str, list[tuple[int, str]] | OSError]) -> None:
        self.table = table
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, host: str, port: object, **_: object) -> Sequence[tuple[Any, ...]]:
        self.calls.append(host)
        await self.gate.wait()
        answer = self.table.get(host, socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
        if isinstance(answer, OSError):
            raise answer
        return [(family, socket.SOCK_STREAM, 6, "", (address, 0)) for family, address in answer]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def resolver(dns: FakeDns, clock: Clock | None = None, **options: Any) -> Resolver:
    return Resolver(getaddrinfo=dns, clock=clock or Clock(), **options)


async def test_addresses_keep_their_order_without_duplicates_and_get_the_port() -> None:
    dns = FakeDns({"api.example.com": [(V6, "2001:db8::1"), (V4, "192.0.2.1"), (V4, "192.0.2.1")]})
    assert await resolver(dns).resolve("API.example.com.", 443) == (
        Address(V6, "2001:db8::1", 443),
        Address(V4, "192.0.2.1", 443),
    )
    assert dns.calls == ["api.example.com"]


async def test_answers_are_cached_for_the_ttl() -> None:
    dns = FakeDns({"a.test": [(V4, "192.0.2.1")]})
    clock = Clock()
    cached = resolver(dns, clock, ttl=30.0)
    await cached.resolve("a.test", 80)
    clock.now += 29.9
    assert await cached.resolve("a.test", 8080) == (Address(V4, "192.0.2.1", 8080),)
    assert cached.lookups == 1
    dns.table["a.test"] = [(V4, "192.0.2.2")]
    clock.now += 0.1
    assert await cached.resolve("a.test", 80) == (Address(V4, "192.0.2.2", 80),)
    assert cached.lookups == 2


async def test_a_failure_is_a_typed_error_cached_for_the_negative_ttl() -> None:
    dns = FakeDns({})
    clock = Clock()
    cached = resolver(dns, clock, negative_ttl=5.0)
    with pytest.raises(DnsError, match=r"DNS lookup of missing\.test failed: Name or service not known") as caught:
        await cached.resolve("missing.test", 80)
    assert caught.value.status == 503
    assert caught.value.host == "missing.test"
    with pytest.raises(DnsError):
        await cached.resolve("missing.test", 80)
    assert cached.lookups == 1
    dns.table["missing.test"] = [(V4, "192.0.2.9")]
    clock.now += 5.0
    assert await cached.resolve("missing.test", 80) == (Address(V4, "192.0.2.9", 80),)


async def test_an_empty_answer_and_an_os_error_are_failures() -> None:
    dns = FakeDns({"empty.test": [], "broken.test": OSError("resolver exploded")})
    with pytest.raises(DnsError, match="no address"):
        await resolver(dns).resolve("empty.test", 80)
    with pytest.raises(DnsError, match="resolver exploded"):
        await resolver(dns).resolve("broken.test", 80)


async def test_concurrent_lookups_of_one_name_are_one_getaddrinfo() -> None:
    dns = FakeDns({"busy.test": [(V4, "192.0.2.1")]})
    dns.gate.clear()
    shared = resolver(dns)
    waiting = [asyncio.ensure_future(shared.resolve("busy.test", 80)) for _ in range(100)]
    await asyncio.sleep(0)
    dns.gate.set()
    answers = await asyncio.gather(*waiting)
    assert dns.calls == ["busy.test"]
    assert {a for answer in answers for a in answer} == {Address(V4, "192.0.2.1", 80)}
    assert shared.inflight == {}


async def test_a_cancelled_caller_does_not_cancel_the_shared_lookup() -> None:
    dns = FakeDns({"slow.test": [(V4, "192.0.2.1")]})
    dns.gate.clear()
    shared = resolver(dns)
    first = asyncio.ensure_future(shared.resolve("slow.test", 80))
    second = asyncio.ensure_future(shared.resolve("slow.test", 80))
    await asyncio.sleep(0)
    first.cancel()
    dns.gate.set()
    assert await second == (Address(V4, "192.0.2.1", 80),)
    assert first.cancelled()


async def test_the_cache_is_bounded_least_recently_used_first() -> None:
    dns = FakeDns({name: [(V4, "192.0.2.1")] for name in ("a.test", "b.test", "c.test")})
    bounded = resolver(dns, max_entries=2)
    for name in ("a.test", "b.test", "a.test", "c.test"):
        await bounded.resolve(name, 80)
    assert list(bounded.cache) == ["a.test", "c.test"]


async def test_ip_literals_are_never_looked_up() -> None:
    dns = FakeDns({})
    literal = resolver(dns)
    assert await literal.resolve("192.0.2.7", 80) == (Address(V4, "192.0.2.7", 80),)
    assert await literal.resolve("[2001:db8::7]", 80) == (Address(V6, "2001:db8::7", 80),)
    assert dns.calls == []


async def test_localhost_resolves_for_real() -> None:
    addresses = await Resolver().resolve("localhost", 8080)
    assert addresses
    assert {a.host for a in addresses} <= {"127.0.0.1", "::1"}
    assert all(a.port == 8080 for a in addresses)
