"""The body tee and the end of a mirror's life: lag budget, primary abort, the response
deadline armed only when the body has ended, shutdown."""

import asyncio
import hashlib
import os

import pytest

from mirrorgate.mirror.shadow import Shadow, Tee
from tests.support.backends import Mode
from tests.support.waiting import until

from .conftest import MakeDispatcher, StartBackend, make_mirror, refused_endpoint, request_headers

KiB, MiB = 1 << 10, 1 << 20


async def test_slow_reader_is_abandoned_past_its_lag_budget_while_a_healthy_mirror_gets_everything(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    slow, good = await start_backend(Mode.SLOW_READER), await start_backend()
    d = make_dispatcher(body_lag_budget=256 * KiB)
    mirrors = (
        make_mirror(slow.endpoint, k=0, backend="service/default/slow:80"),
        make_mirror(good.endpoint, k=1, backend="service/default/good:80"),
    )
    tee = d.submit(mirrors, b"POST", b"/big", request_headers(), True)
    assert tee is not None
    hasher, fed, calls = hashlib.sha256(), 0, 0
    chunk = os.urandom(64 * KiB)
    while d.stats().dropped.get("body_lag", 0) == 0:
        assert fed < 256 * MiB, "the slow reader was never abandoned"
        tee.feed(chunk)  # returns at once whatever the mirrors do
        calls += 1
        hasher.update(chunk)
        fed += len(chunk)
        await asyncio.sleep(0.001)  # let the healthy mirror read
    assert calls * len(chunk) == fed
    tee.end()
    st = d.stats()
    assert st.mirrors[mirrors[0].name].dropped == {"body_lag": 1}
    assert st.mirrors[mirrors[0].name].sent == 1
    await until(lambda: len(good.seen) == 1)
    assert good.seen[0].body_sha256 == hasher.hexdigest()
    assert good.seen[0].body_length == fed
    await until(lambda: not d.tasks)
    assert d.stats().buffered_bytes == 0


async def test_body_piling_up_before_the_connection_is_bounded(make_dispatcher: MakeDispatcher) -> None:
    d = make_dispatcher(body_lag_budget=MiB)
    tee = d.submit((make_mirror(refused_endpoint()),), b"POST", b"/", request_headers(), True)
    assert tee is not None
    for _ in range(32):  # 2 MiB fed before the mirror's task has run at all
        tee.feed(b"x" * (64 * KiB))
    assert d.stats().dropped == {"body_lag": 1}
    assert d.stats().buffered_bytes == 0
    await until(lambda: not d.tasks)
    assert d.stats().dropped == {"body_lag": 1}  # the connect error of a dropped mirror is not counted


async def test_total_buffer_budget_across_mirrors(make_dispatcher: MakeDispatcher) -> None:
    d = make_dispatcher(body_lag_budget=MiB, max_buffered_bytes=MiB + 512 * KiB)
    dead = refused_endpoint()
    headers = [*request_headers(), (b"content-length", b"%d" % MiB)]
    tees = [d.submit((make_mirror(dead),), b"POST", b"/", headers, True) for _ in range(2)]
    for tee in tees:
        assert tee is not None
        for _ in range(13):  # 832 KiB each: within the per-mirror budget, not within the total
            tee.feed(b"y" * (64 * KiB))
    assert d.stats().dropped == {"body_lag": 1}  # the second one
    assert d.stats().buffered_bytes == 832 * KiB


async def test_primary_abort_abandons_the_mirror_body(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    tee = d.submit((make_mirror(b.endpoint),), b"POST", b"/", request_headers(), True)
    assert tee is not None
    tee.feed(b"partial")
    await until(lambda: b.accepted == 1)
    tee.abort()
    assert d.stats().dropped == {"primary_aborted": 1}
    await until(lambda: not d.tasks and b.open == 0)
    assert b.seen == []  # the backend never saw a complete request


async def test_abort_after_end_lets_the_mirror_finish(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(delay=0.1)
    d = make_dispatcher()
    tee = d.submit((make_mirror(b.endpoint),), b"POST", b"/", request_headers(), True)
    assert isinstance(tee, Tee)
    tee.feed(b"all of it")
    tee.end()
    tee.abort()
    await until(lambda: d.stats().completed.get("2xx") == 1)
    assert d.stats().dropped == {}


async def test_a_long_upload_that_keeps_up_is_not_cut_by_the_timeout(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    """The timeout runs from the end of the request: an upload lasting 1.5 timeouts (by the loop's
    clock, however slow the host) completes; the answer after the end has a whole second."""
    b = await start_backend()
    d = make_dispatcher(timeout=1.0)
    tee = d.submit((make_mirror(b.endpoint),), b"POST", b"/slow-client", request_headers(), True)
    assert tee is not None
    loop = asyncio.get_running_loop()
    done_at, parts = loop.time() + 1.5, list[bytes]()
    while loop.time() < done_at:
        parts.append(b"part %d;" % len(parts))
        tee.feed(parts[-1])
        await asyncio.sleep(0.1)
    tee.end()
    await until(lambda: d.stats().completed.get("2xx") == 1)
    assert d.stats().dropped == {}
    assert b.seen[0].body_length == len(b"".join(parts))


async def test_queued_mirror_body_is_kept_and_sent_when_a_slot_frees(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(delay=0.1)
    d = make_dispatcher(max_concurrent_per_backend=1, max_queue_per_backend=1)
    first = d.submit((make_mirror(b.endpoint),), b"POST", b"/1", request_headers(), True)
    second = d.submit((make_mirror(b.endpoint),), b"POST", b"/2", request_headers(), True)
    assert first is not None
    assert second is not None
    assert d.stats().queued == {"service/default/shadow:80": 1}
    for tee, body in ((first, b"one"), (second, b"two")):
        tee.feed(body)
        tee.end()
    await until(lambda: d.stats().completed.get("2xx") == 2)
    assert [(r.target, r.body_sha256) for r in b.seen] == [
        ("/1", hashlib.sha256(b"one").hexdigest()),
        ("/2", hashlib.sha256(b"two").hexdigest()),
    ]
    assert b.max_open == 1


async def test_queued_mirror_aborted_by_the_primary_leaves_the_queue(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(Mode.BLACKHOLE)
    d = make_dispatcher(max_concurrent_per_backend=1, max_queue_per_backend=4)
    tees = [d.submit((make_mirror(b.endpoint),), b"POST", b"/", request_headers(), True) for _ in range(3)]
    assert d.stats().queued == {"service/default/shadow:80": 2}
    for tee in tees[1:]:
        assert tee is not None
        tee.abort()
    assert d.stats().queued == {"service/default/shadow:80": 0}
    assert d.stats().dropped == {"primary_aborted": 2}


async def test_shutdown_cancels_queued_and_inflight_mirrors_promptly(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    hole = await start_backend(Mode.BLACKHOLE)
    slow = await start_backend(delay=60.0)
    d = make_dispatcher(max_concurrent_per_backend=5, max_queue_per_backend=3, timeout=60.0)
    for i in range(8):
        d.submit(
            (make_mirror(hole.endpoint, backend="service/default/hole:80"),), b"GET", b"/", request_headers(), False
        )
        tee = d.submit((make_mirror(slow.endpoint, k=1),), b"POST", b"/%d" % i, request_headers(), True)
        assert tee is not None
        tee.feed(b"body")
    await until(lambda: hole.accepted == 5 and slow.accepted == 5)
    assert len(d.tasks) == 10
    await d.shutdown()
    assert not d.tasks
    st = d.stats()
    assert st.dropped == {"shutdown": 16}
    assert st.inflight == {"service/default/hole:80": 0, "service/default/shadow:80": 0}
    assert st.queued == {"service/default/hole:80": 0, "service/default/shadow:80": 0}
    assert st.buffered_bytes == 0
    assert repr(d.pool) == "<Pool in_use=0 idle=0 waiting=0>"
    await until(lambda: slow.open == 0 and hole.open == 0, "mirror connections closed")
    assert d.submit((make_mirror(slow.endpoint),), b"GET", b"/", request_headers(), False) is None


async def test_shutdown_closes_idle_mirror_connections(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    d.submit((make_mirror(b.endpoint),), b"GET", b"/", request_headers(), False)
    await until(lambda: d.stats().completed.get("2xx") == 1)
    assert repr(d.pool) == "<Pool in_use=0 idle=1 waiting=0>"
    await d.shutdown()
    await until(lambda: b.open == 0)


async def test_a_bug_in_a_mirror_task_is_logged_counted_and_contained(
    start_backend: StartBackend,
    make_dispatcher: MakeDispatcher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    b = await start_backend()
    d = make_dispatcher()

    def broken(self: Shadow, conn: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Shadow, "attach", broken)
    d.submit((make_mirror(b.endpoint),), b"GET", b"/", request_headers(), False)
    await until(lambda: not d.tasks)
    assert d.stats().dropped == {"internal_error": 1}
    assert "bug in mirror to service/default/shadow:80" in caplog.text
    assert d.stats().inflight == {"service/default/shadow:80": 0}
    assert repr(d.pool) == "<Pool in_use=0 idle=0 waiting=0>"
