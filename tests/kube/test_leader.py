"""Lease election against the fake API server: create, renew, expiry by the local clock, races,
release, loss. Durations are asserted through an injected clock or outcomes, never wall time."""

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from mirrorgate.kube.client import KubeClient
from mirrorgate.kube.leader import LeaderElector, LeaseTimings, default_identity, micro_time
from tests.kube.fakeapi import FakeApiServer
from tests.kube.helpers import eventually

MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(client: KubeClient, identity: str, clock: Clock | None = None, **kw: Any) -> LeaderElector:
    return LeaderElector(client, "mirrorgate", "gw-system", identity=identity, clock=clock or Clock(), **kw)


def lease(api: FakeApiServer) -> dict[str, Any]:
    spec: dict[str, Any] = api.get("leases", "mirrorgate", "gw-system")["spec"]
    return spec


def test_timings_are_validated() -> None:
    LeaseTimings()
    with pytest.raises(ValueError, match="lease duration"):
        LeaseTimings(lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError, match=r"1\.2 x"):
        LeaseTimings(lease_duration=15, renew_deadline=2.4, retry_period=2)


def test_micro_time_and_identity() -> None:
    assert micro_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
    assert re.fullmatch(r"pod-a_[0-9a-f]{8}", default_identity({"POD_NAME": "pod-a"}))
    assert default_identity({"POD_NAME": "p"}) != default_identity({"POD_NAME": "p"})


async def test_create_then_renew_keeps_acquire_time(api: FakeApiServer, client: KubeClient) -> None:
    a = elector(client, "a")
    assert await a.try_acquire_or_renew()
    first = lease(api)
    assert first["holderIdentity"] == "a"
    assert first["leaseTransitions"] == 0
    assert MICRO.match(first["acquireTime"])
    assert MICRO.match(first["renewTime"])
    assert await a.try_acquire_or_renew()
    second = lease(api)
    assert second["acquireTime"] == first["acquireTime"]
    assert second["leaseTransitions"] == 0


async def test_takeover_only_after_expiry_by_the_local_clock(api: FakeApiServer, client: KubeClient) -> None:
    a, clock_b = elector(client, "a"), Clock()
    b = elector(client, "b", clock_b)
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew()
    clock_b.now += 10
    assert await a.try_acquire_or_renew()  # a renews: the record changes, b's observation restarts
    assert not await b.try_acquire_or_renew()
    clock_b.now += 14.9
    assert not await b.try_acquire_or_renew()
    clock_b.now += 0.2
    assert await b.try_acquire_or_renew()
    taken = lease(api)
    assert (taken["holderIdentity"], taken["leaseTransitions"]) == ("b", 1)
    assert not await a.try_acquire_or_renew()


async def test_two_candidates_racing_for_an_expired_lease_one_wins(api: FakeApiServer, client: KubeClient) -> None:
    old = elector(client, "old")
    assert await old.try_acquire_or_renew()
    clocks = [Clock(), Clock()]
    b, c = elector(client, "b", clocks[0]), elector(client, "c", clocks[1])
    assert not await b.try_acquire_or_renew()
    assert not await c.try_acquire_or_renew()
    for clock in clocks:
        clock.now += 16
    replace = client.replace

    async def c_wins_in_between(resource: Any, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["spec"]["holderIdentity"] == "b":
            assert await c.try_acquire_or_renew()
        return await replace(resource, obj)

    client.replace = c_wins_in_between  # type: ignore[method-assign]
    assert not await b.try_acquire_or_renew()  # b's PUT carries a stale resourceVersion: 409
    client.replace = replace  # type: ignore[method-assign]
    assert lease(api)["holderIdentity"] == "c"
    assert [w.verb for w in api.writes].count("PUT") == 2


async def test_release_on_shutdown_lets_a_standby_take_over(api: FakeApiServer, client: KubeClient) -> None:
    timings = LeaseTimings(lease_duration=600, renew_deadline=5, retry_period=0.05)
    events: list[str] = []
    a = LeaderElector(client, "mirrorgate", "gw-system", identity="a", timings=timings)
    b = LeaderElector(
        client, "mirrorgate", "gw-system", identity="b", timings=timings, on_started=lambda: events.append("b leads")
    )
    task_a = asyncio.create_task(a.run())
    await asyncio.wait_for(a.leading.wait(), 15)
    task_b = asyncio.create_task(b.run())
    await eventually(lambda: b.observed is not None, what="b observing a")
    task_a.cancel()
    await asyncio.gather(task_a, return_exceptions=True)
    assert a.stopped.is_set()
    assert not a.is_leader
    # the lease would hold b off for 600 s: b leading now means a released it
    await asyncio.wait_for(b.leading.wait(), 15)
    task_b.cancel()
    await asyncio.gather(task_b, return_exceptions=True)
    holders = [w.body["spec"]["holderIdentity"] for w in api.writes if w.verb == "PUT"]
    assert "" in holders
    assert holders.index("") < holders.index("b")
    assert events == ["b leads"]


async def test_no_renew_within_the_deadline_loses_leadership(api: FakeApiServer, client: KubeClient) -> None:
    timings = LeaseTimings(lease_duration=3, renew_deadline=1, retry_period=0.1)
    events: list[str] = []
    a = LeaderElector(
        client,
        "mirrorgate",
        "gw-system",
        identity="a",
        timings=timings,
        on_started=lambda: events.append("started"),
        on_stopped=lambda: events.append("stopped"),
    )
    task = asyncio.create_task(a.run(release_on_cancel=False))
    try:
        await asyncio.wait_for(a.leading.wait(), 15)
        api.delay = 30  # every request hangs: each round is cut at the renew deadline
        await asyncio.wait_for(a.stopped.wait(), 15)
        assert not a.is_leader
        api.delay = 0
        await asyncio.wait_for(a.leading.wait(), 15)  # back to candidate, and it wins again
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert events[:3] == ["started", "stopped", "started"]


async def test_renew_errors_lose_leadership(api: FakeApiServer, client: KubeClient) -> None:
    timings = LeaseTimings(lease_duration=3, renew_deadline=1, retry_period=0.1)
    a = LeaderElector(client, "mirrorgate", "gw-system", identity="a", timings=timings)
    task = asyncio.create_task(a.run(release_on_cancel=False))
    try:
        await asyncio.wait_for(a.leading.wait(), 15)
        api.fail_next(10_000, 500)
        await asyncio.wait_for(a.stopped.wait(), 15)
        assert not a.is_leader
    finally:
        api.faults.clear()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
