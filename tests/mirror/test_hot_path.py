"""The cost shape of the mirror path: a mirror on a pooled connection runs without a task, a
drop at admission builds nothing, drop counters are keyed by plain strings, and the callback
path keeps the retry and timeout semantics of ``docs/mirroring.md``."""

import pytest

import mirrorgate.mirror.dispatcher as dispatcher_module
import mirrorgate.mirror.shadow as shadow_module
from mirrorgate.mirror.head import MirrorHead, build_head
from tests.support.backends import Header, Mode
from tests.support.waiting import until

from .conftest import MakeDispatcher, StartBackend, make_mirror, request_headers


async def test_a_mirror_on_a_pooled_connection_needs_no_task(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    d.submit((make_mirror(b.endpoint),), b"GET", b"/1", request_headers(), False)
    await until(lambda: d.stats().completed.get("2xx") == 1)
    assert repr(d.pool) == "<Pool in_use=0 idle=1 waiting=0>"
    d.submit((make_mirror(b.endpoint),), b"GET", b"/2", request_headers(), False)
    assert len(d.tasks) == 1  # in flight: the head is already written ...
    assert not d._dialing  # ... and no task was made for it
    assert d.stats().sent == 2
    await until(lambda: d.stats().completed.get("2xx") == 2 and not d.tasks)
    assert b.accepted == 1
    assert [r.target for r in b.seen] == ["/1", "/2"]


async def test_a_drop_at_admission_builds_no_head(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[bytes] = []

    def counting(method: bytes, target: bytes, headers: list[Header], has_body: bool, shadow: bool) -> MirrorHead:
        built.append(target)
        return build_head(method, target, headers, has_body, shadow)

    monkeypatch.setattr(dispatcher_module, "build_head", counting)
    b = await start_backend(Mode.BLACKHOLE)
    d = make_dispatcher(max_concurrent_per_backend=1, max_queue_per_backend=1, timeout=60.0)
    for i in range(10):
        d.submit((make_mirror(b.endpoint),), b"GET", b"/%d" % i, request_headers(), False)
    assert built == [b"/0", b"/1"]  # the in-flight one and the queued one; none for the 8 drops
    st = d.stats()
    assert st.dropped == {"over_capacity": 8}
    assert all(type(reason) is str for reason in st.dropped)
    assert all(type(reason) is str for s in d._series.values() for reason in s.dropped)


async def test_a_stale_pooled_connection_is_retried_once_on_a_new_one(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(Mode.STALE)
    d = make_dispatcher()
    d.submit((make_mirror(b.endpoint),), b"GET", b"/1", request_headers(), False)
    await until(lambda: d.stats().completed.get("2xx") == 1)
    d.submit((make_mirror(b.endpoint),), b"GET", b"/2", request_headers(), False)
    await until(lambda: not d.tasks)
    st = d.stats()
    assert st.completed == {"2xx": 2}
    assert st.sent == 2  # the resend is the same mirrored request
    assert st.dropped == {}
    assert b.accepted == 2
    assert [r.target for r in b.seen] == ["/1", "/2"]


async def test_a_stale_connection_with_a_body_is_a_reset(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(Mode.STALE)
    d = make_dispatcher()
    d.submit((make_mirror(b.endpoint),), b"GET", b"/1", request_headers(), False)
    await until(lambda: d.stats().completed.get("2xx") == 1)
    tee = d.submit((make_mirror(b.endpoint),), b"POST", b"/2", request_headers(), True)
    assert tee is not None
    tee.feed(b"body")
    tee.end()
    await until(lambda: not d.tasks)
    assert d.stats().dropped == {"reset": 1}
    assert repr(d.pool) == "<Pool in_use=0 idle=0 waiting=0>"


async def test_in_flight_timeouts_share_one_timer(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    b = await start_backend(Mode.BLACKHOLE)
    d = make_dispatcher(timeout=1.0, breaker_failures=0)  # all 20 are connected well before any times out
    for i in range(20):
        d.submit((make_mirror(b.endpoint),), b"GET", b"/%d" % i, request_headers(), False)
    await until(lambda: len(d.tasks) == 20 and not d._dialing and b.accepted == 20)
    assert d._sweeper is not None
    await until(lambda: not d.tasks)
    assert d.stats().dropped == {"timeout": 20}
    assert d._sweeper is None  # nothing in flight: no timer left behind
    await until(lambda: b.open == 0)


async def test_a_plain_shadow_reads_no_timeout_of_its_own(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain ``Shadow.end`` asks for the gateway's deadline with no argument (shadow rule 7):
    only a ``PolicyShadow`` reads a ``timeout`` of its own."""
    calls: list[tuple[object, ...]] = []
    original = dispatcher_module.Dispatcher.deadline

    def recording(self: dispatcher_module.Dispatcher, *args: float | None) -> float:
        calls.append(args)
        return original(self, *args)

    monkeypatch.setattr(dispatcher_module.Dispatcher, "deadline", recording)
    assert not hasattr(shadow_module.Shadow, "timeout")
    b = await start_backend()
    d = make_dispatcher()
    tee = d.submit((make_mirror(b.endpoint),), b"POST", b"/1", [*request_headers(), (b"content-length", b"2")], True)
    assert tee is not None
    assert type(tee.shadows[0]) is shadow_module.Shadow
    tee.feed(b"ok")
    tee.end()
    assert calls == [()]
    await until(lambda: d.stats().completed.get("2xx") == 1)
