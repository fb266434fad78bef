"""Misbehaving mirror backends: submit always returns at once, the backend never sees more
concurrent connections than the cap, every failure is dropped and counted with its reason, and
the circuit breaker stops dialling a refusing or hanging backend, then probes it again."""

import hashlib

from mirrorgate.ir.table import UpstreamAddress
from mirrorgate.mirror import Dispatcher, DropReason
from tests.support.backends import Backend, Mode, header_flood
from tests.support.waiting import until

from .conftest import BACKEND, MakeDispatcher, StartBackend, make_mirror, refused_endpoint, request_headers


def submit_many(d: Dispatcher, endpoint: UpstreamAddress, n: int, *, body: bool = False) -> list[object]:
    """Submit ``n`` mirrored requests back to back, never awaiting: each call must return."""
    returned: list[object] = []
    for i in range(n):
        tee = d.submit((make_mirror(endpoint),), b"GET", b"/%d" % i, request_headers(), body)
        returned.append(tee)
    return returned


async def test_blackholed_backend_cap_queue_and_timeouts(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(Mode.BLACKHOLE)
    d = make_dispatcher(max_concurrent_per_backend=4, max_queue_per_backend=2, timeout=0.3, breaker_failures=0)
    assert len(submit_many(d, b.endpoint, 50)) == 50
    st = d.stats()  # before any await: nothing could have been sent yet, the rest already decided
    assert st.dropped == {"over_capacity": 44}
    assert st.inflight == {"service/default/shadow:80": 4}
    assert st.queued == {"service/default/shadow:80": 2}
    await until(lambda: b.accepted >= 4)
    # the in-flight ones time out; their freed slots then pump the queued ones (a loop turn later),
    # whose deadlines have passed by then
    await until(lambda: not d.tasks and not any(d.stats().queued.values()), "every mirror timed out")
    st = d.stats()
    assert st.dropped["over_capacity"] == 44
    assert st.dropped.get("timeout") == 6, st
    assert st.completed == {}
    assert b.max_open <= 4
    assert repr(d.pool) == "<Pool in_use=0 idle=0 waiting=0>"  # timed-out connections are aborted, not kept
    await until(lambda: b.open == 0, "the backend sees every timed-out connection closed")


async def test_slow_backend_times_out_but_never_exceeds_the_cap(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(delay=30.0)
    d = make_dispatcher(max_concurrent_per_backend=8, max_queue_per_backend=0, timeout=0.3, breaker_failures=0)
    submit_many(d, b.endpoint, 30)
    assert d.stats().dropped == {"over_capacity": 22}
    await until(lambda: not d.tasks)
    assert d.stats().dropped == {"over_capacity": 22, "timeout": 8}
    assert len(b.seen) == 8  # they were sent; the answers never came in time
    assert b.max_open <= 8


async def test_slow_backend_within_timeout_completes(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(delay=0.2)
    d = make_dispatcher(max_concurrent_per_backend=4, max_queue_per_backend=16)
    submit_many(d, b.endpoint, 20)
    await until(lambda: d.stats().completed.get("2xx") == 20)
    assert b.max_open <= 4
    assert d.stats().dropped == {}


async def test_refusing_backend_opens_the_breaker_then_probes(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    d = make_dispatcher(breaker_failures=3, breaker_open_duration=1.0)  # still open when checked, however slow the host
    dead = refused_endpoint()
    submit_many(d, dead, 3)
    await until(lambda: d.stats().dropped.get("connect_error") == 3)
    assert d.stats().breakers == {"service/default/shadow:80": "open"}
    submit_many(d, dead, 40)
    assert d.stats().dropped == {"connect_error": 3, "breaker_open": 40}  # not dialled at all
    await until(lambda: d.stats().breakers["service/default/shadow:80"] == "half_open")
    submit_many(d, dead, 10)  # one probe, the other nine still dropped
    await until(lambda: not d.tasks)
    assert d.stats().dropped == {"connect_error": 4, "breaker_open": 49}
    # the backend comes back (new endpoints after a reload): the next probe closes the breaker
    b = await start_backend()
    await until(lambda: d.stats().breakers["service/default/shadow:80"] == "half_open")
    submit_many(d, b.endpoint, 1)
    await until(lambda: d.stats().completed.get("2xx") == 1)
    assert d.stats().breakers["service/default/shadow:80"] == "closed"
    submit_many(d, b.endpoint, 5)
    await until(lambda: d.stats().completed.get("2xx") == 6)


async def test_hanging_backend_opens_the_breaker_and_is_no_longer_dialled(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(Mode.BLACKHOLE)
    d = make_dispatcher(breaker_failures=2, breaker_open_duration=60.0, timeout=0.2)
    submit_many(d, b.endpoint, 2)
    await until(lambda: d.stats().dropped.get("timeout") == 2)
    submit_many(d, b.endpoint, 100)
    assert d.stats().dropped == {"timeout": 2, "breaker_open": 100}
    assert b.accepted == 2


async def test_resetting_backend_counts_reset(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    b = await start_backend(Mode.RESET)
    d = make_dispatcher(breaker_failures=0)
    submit_many(d, b.endpoint, 5)
    await until(lambda: not d.tasks)
    assert d.stats().dropped == {"reset": 5}
    assert d.stats().sent == 5


async def test_garbage_backend_counts_protocol_error(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(Mode.GARBAGE)
    d = make_dispatcher()
    submit_many(d, b.endpoint, 5)
    await until(lambda: not d.tasks)
    assert d.stats().dropped == {"protocol_error": 5}
    await until(lambda: b.open == 0, "garbage connections are not reused")


async def test_no_endpoints_is_dropped_without_a_task(make_dispatcher: MakeDispatcher) -> None:
    d = make_dispatcher()
    assert d.submit((make_mirror(),), b"POST", b"/", request_headers(), True) is None
    assert d.stats().dropped == {"no_endpoints": 1}
    assert not d.tasks


async def test_one_bad_mirror_does_not_disturb_the_other(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    good, hole = await start_backend(), await start_backend(Mode.BLACKHOLE)
    d = make_dispatcher(timeout=1.0)  # the black hole times out; the good backend answers well within
    mirrors = (
        make_mirror(good.endpoint, k=0, backend="service/default/good:80"),
        make_mirror(hole.endpoint, k=1, backend="service/default/hole:80"),
    )
    for i in range(10):
        tee = d.submit(mirrors, b"POST", b"/%d" % i, request_headers(), True)
        assert tee is not None
        tee.feed(b"body %d" % i)
        tee.end()
    await until(lambda: len(good.seen) == 10)
    assert sorted(r.body_sha256 for r in good.seen) == sorted(
        hashlib.sha256(b"body %d" % i).hexdigest() for i in range(10)
    )
    await until(lambda: not d.tasks)
    st = d.stats()
    assert st.mirrors[mirrors[0].name].completed == {"2xx": 10}
    assert st.mirrors[mirrors[1].name].dropped == {"timeout": 10}


async def test_header_flood_from_a_mirror_is_a_protocol_error(make_dispatcher: MakeDispatcher) -> None:
    """A mirror backend answering with an endless head (4 MiB of header lines, more on demand) is
    cut off at the response-head limit and counted as ``protocol_error``: nothing buffers it."""
    flood = await Backend.scripted(header_flood).start()
    try:
        d = make_dispatcher(breaker_failures=0)
        submit_many(d, flood.endpoint, 3)
        await until(lambda: not d.tasks)
        assert d.stats().dropped == {"protocol_error": 3}
        assert repr(d.pool) == "<Pool in_use=0 idle=0 waiting=0>"
    finally:
        await flood.close()


async def test_a_freed_slot_goes_to_the_oldest_queued_mirror(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    """Rule 8: a freed slot is filled from the queue on the next loop turn, oldest first; a mirror
    submitted in between does not overtake the queued ones (it is dropped, the queue being full)."""
    b = await start_backend(delay=30.0)  # records each request when it arrives, answers much later
    d = make_dispatcher(max_concurrent_per_backend=1, max_queue_per_backend=2, timeout=60.0, breaker_failures=0)
    submit_many(d, b.endpoint, 3)  # /0 in flight, /1 and /2 queued
    await until(lambda: len(b.seen) == 1)
    (first,) = d.tasks
    d.abandon(first, DropReason.BODY_LAG)  # its slot is free now; the pump runs on the next turn
    assert d.submit((make_mirror(b.endpoint),), b"GET", b"/late", request_headers(), False) is None
    st = d.stats()
    assert st.dropped == {"body_lag": 1, "over_capacity": 1}
    assert st.queued == {BACKEND: 2}
    await until(lambda: len(b.seen) == 2, "the pump started the oldest queued mirror")
    assert [r.target for r in b.seen] == ["/0", "/1"]
    assert d.stats().queued == {BACKEND: 1}
    assert len(d.tasks) == 1
    d.close()


async def test_slots_freed_together_beyond_the_queue_go_to_new_mirrors_at_once(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    """Rule 8: slots freed together (a slow backend answering together) are not left idle while
    the pump works through the queue: a new mirror takes one at once when more slots are free than
    mirrors are queued, and the queued one still gets its own slot on the next loop turn."""
    b = await start_backend(delay=30.0)
    d = make_dispatcher(max_concurrent_per_backend=4, max_queue_per_backend=1, timeout=60.0, breaker_failures=0)
    submit_many(d, b.endpoint, 5)  # /0../3 in flight, /4 queued
    await until(lambda: len(b.seen) == 4)
    for shadow in [s for s in d.tasks if s.head.prefix.startswith((b"GET /0 ", b"GET /1 ", b"GET /2 "))]:
        d.abandon(shadow, DropReason.BODY_LAG)  # 3 slots free, 1 mirror queued, the pump not yet run
    assert len(d.tasks) == 1
    assert d.submit((make_mirror(b.endpoint),), b"GET", b"/late", request_headers(), False) is None
    assert len(d.tasks) == 2  # /late started at once
    assert d.stats().queued == {BACKEND: 1}
    await until(lambda: len(b.seen) == 6, "the pump started the queued mirror")
    assert sorted(r.target for r in b.seen[4:]) == ["/4", "/late"]
    st = d.stats()
    assert st.queued == {BACKEND: 0}
    assert st.dropped == {"body_lag": 3}
    assert len(d.tasks) == 3
    d.close()
