"""What a healthy mirror backend receives: the head as the primary sends it (plus the shadow
Host), bodies byte-identical, one endpoint per request (round-robin), connections reused."""

import hashlib
import os

from mirrorgate.dataplane.state import MirrorDispatcher
from mirrorgate.mirror import Dispatcher
from tests.support.backends import Mode
from tests.support.waiting import until

from .conftest import MakeDispatcher, StartBackend, make_mirror, request_headers

MiB = 1 << 20


def test_dispatcher_satisfies_the_data_plane_hook() -> None:
    hook: MirrorDispatcher = Dispatcher()
    assert hook is not None


async def test_head_is_the_primary_head_with_shadow_host(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    target = b"/api/v1/x%2Fy;p?b=2&a=1&a=&%zz&sp=%20"
    headers = [*request_headers(host=b"httpbin:8000", request_id=b"rid-42"), (b"x-dup", b"1"), (b"x-dup", b"2")]
    assert d.submit((make_mirror(b.endpoint),), b"DELETE", target, headers, False) is None
    await until(lambda: len(b.seen) == 1)
    got = b.seen[0]
    assert got.method == "DELETE"
    assert got.target == target.decode()
    assert got.values("host") == [b"httpbin-shadow:8000"]
    assert got.values("x-request-id") == [b"rid-42"]
    assert got.values("x-forwarded-for") == [b"10.1.2.3"]
    assert got.values("x-dup") == [b"1", b"2"]
    assert [n for n, _ in got.headers] == [n for n, _ in headers]
    await until(lambda: d.stats().completed.get("2xx") == 1)


async def test_shadow_suffix_off(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    b = await start_backend()
    d = make_dispatcher(shadow_host_suffix=False)
    d.submit((make_mirror(b.endpoint),), b"GET", b"/", request_headers(host=b"a.com"), False)
    await until(lambda: len(b.seen) == 1)
    assert b.seen[0].values("host") == [b"a.com"]


async def test_one_mib_binary_body_with_content_length_arrives_identical(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher(body_lag_budget=4 * MiB)
    body = os.urandom(MiB)
    headers = [*request_headers(), (b"content-length", b"%d" % len(body))]
    tee = d.submit((make_mirror(b.endpoint),), b"POST", b"/upload?x=1", headers, True)
    assert tee is not None
    for i in range(0, len(body), 16384):
        tee.feed(body[i : i + 16384])
    tee.end()
    await until(lambda: len(b.seen) == 1)
    got = b.seen[0]
    assert got.body_sha256 == hashlib.sha256(body).hexdigest()
    assert got.body_length == MiB
    assert got.values("content-length") == [b"%d" % MiB]
    assert got.values("transfer-encoding") == []
    await until(lambda: d.stats().completed.get("2xx") == 1)


async def test_chunked_upload_is_mirrored_chunked_and_identical(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    chunks = [os.urandom(n) for n in (1, 0, 17, 65536, 3, 300000, 0, 5)]  # empty chunks must not end the body
    tee = d.submit((make_mirror(b.endpoint),), b"PUT", b"/c", request_headers(), True)
    assert tee is not None
    for chunk in chunks:
        tee.feed(chunk)
    tee.end()
    await until(lambda: len(b.seen) == 1)
    got = b.seen[0]
    assert got.values("transfer-encoding") == [b"chunked"]
    assert got.values("content-length") == []
    assert got.body_sha256 == hashlib.sha256(b"".join(chunks)).hexdigest()


async def test_body_fed_before_the_connection_exists_and_after(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    tee = d.submit((make_mirror(b.endpoint),), b"POST", b"/", request_headers(), True)
    assert tee is not None
    tee.feed(b"early,")  # before the task has even run: held as pending bytes
    await until(lambda: b.accepted == 1)
    tee.feed(b"late")
    tee.end()
    await until(lambda: len(b.seen) == 1)
    assert b.seen[0].body_sha256 == hashlib.sha256(b"early,late").hexdigest()


async def test_several_mirrors_each_get_a_copy(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    b1, b2 = await start_backend(), await start_backend()
    d = make_dispatcher()
    mirrors = (
        make_mirror(b1.endpoint, k=0, backend="service/default/a:80"),
        make_mirror(b2.endpoint, k=1, backend="service/default/b:80"),
    )
    tee = d.submit(mirrors, b"POST", b"/two", request_headers(), True)
    assert tee is not None
    tee.feed(b"payload")
    tee.end()
    await until(lambda: len(b1.seen) == len(b2.seen) == 1)
    assert b1.seen[0].body_sha256 == b2.seen[0].body_sha256 == hashlib.sha256(b"payload").hexdigest()


async def test_round_robin_one_endpoint_per_request(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b1, b2, b3 = await start_backend(), await start_backend(), await start_backend()
    d = make_dispatcher()
    mirror = make_mirror(b1.endpoint, b2.endpoint, b3.endpoint)
    for _ in range(9):
        d.submit((mirror,), b"GET", b"/", request_headers(), False)
    await until(lambda: d.stats().completed.get("2xx") == 9)
    assert [len(b.seen) for b in (b1, b2, b3)] == [3, 3, 3]


async def test_responses_are_drained_and_connections_reused(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    mirror = make_mirror(b.endpoint)
    for i in range(1, 6):
        d.submit((mirror,), b"GET", b"/%d" % i, request_headers(), False)
        await until(lambda i=i: d.stats().completed.get("2xx") == i)  # type: ignore[misc]
    d.submit((mirror,), b"HEAD", b"/h", request_headers(), False)
    await until(lambda: d.stats().completed.get("2xx") == 6)
    assert b.accepted == 1
    assert [r.target for r in b.seen] == ["/1", "/2", "/3", "/4", "/5", "/h"]


async def test_status_classes_are_counted(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    b = await start_backend(status=503)
    d = make_dispatcher()
    for _ in range(3):
        d.submit((make_mirror(b.endpoint),), b"GET", b"/", request_headers(), False)
    await until(lambda: d.stats().completed.get("5xx") == 3)
    st = d.stats()
    assert st.sent == 3
    assert st.dropped == {}


async def test_body_disagreeing_with_content_length_is_cut(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend()
    d = make_dispatcher()
    mirror = make_mirror(b.endpoint)
    long_tee = d.submit((mirror,), b"POST", b"/", [*request_headers(), (b"content-length", b"4")], True)
    short_tee = d.submit((mirror,), b"POST", b"/", [*request_headers(), (b"content-length", b"4")], True)
    assert long_tee is not None
    assert short_tee is not None
    long_tee.feed(b"12345")
    short_tee.feed(b"12")
    short_tee.end()
    await until(lambda: d.stats().dropped.get("body_mismatch") == 2 and not d.tasks)
    assert b.seen == []


async def test_non_reusable_responses_close_the_connection(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(Mode.CLOSE)
    d = make_dispatcher()
    for i in range(1, 4):
        d.submit((make_mirror(b.endpoint),), b"GET", b"/", request_headers(), False)
        await until(lambda i=i: d.stats().completed.get("2xx") == i)  # type: ignore[misc]
    assert b.accepted == 3
    assert repr(d.pool) == "<Pool in_use=0 idle=0 waiting=0>"


async def test_response_before_the_body_ends_completes_the_mirror(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(Mode.EARLY)
    d = make_dispatcher()
    tee = d.submit((make_mirror(b.endpoint),), b"POST", b"/", request_headers(), True)
    assert tee is not None
    tee.feed(b"first")
    await until(lambda: d.stats().completed.get("4xx") == 1)
    tee.feed(b"more")  # ignored: the mirror is over
    tee.end()
    await until(lambda: not d.tasks)
    st = d.stats()
    assert st.completed == {"4xx": 1}
    assert st.dropped == {}
    assert st.buffered_bytes == 0
    assert repr(d.pool) == "<Pool in_use=0 idle=0 waiting=0>"  # half-sent request: never reused
