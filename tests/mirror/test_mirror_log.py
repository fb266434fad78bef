"""The mirror access log at the dispatcher (``mirror/mirrorlog.py``), against real backends: one
line per sampled mirror for every outcome (drops at admission and in ``start``, a refused
upgrade, timeouts, shutdown), the would-be Host of a mirror dropped at admission, nothing kept
once a mirror has ended, and nothing read of the primary while the log is off. The sink that
collects the lines is the only stand-in (the writer itself is tested with the process)."""

import io
import json
import logging
import re
import sys

import msgspec
import pytest

from mirrorgate.dataplane import accesslog
from mirrorgate.dataplane.headers import encode_forward
from mirrorgate.dataplane.matcher import mirror_shapes
from mirrorgate.ir.table import PPM, Mirror, MirrorHost
from mirrorgate.mirror.config import MirrorConfig
from mirrorgate.mirror.mirrorlog import MirrorLog, RequestView
from mirrorgate.mirror.policy import Shape
from mirrorgate.serve import logs
from tests.support.backends import Mode
from tests.support.waiting import until

from .conftest import MakeDispatcher, StartBackend, make_mirror, refused_endpoint, request_headers

TEXT = re.compile(
    r'^1970-01-01 00:00:00,000 mirror "(\S+) (\S+) HTTP/1\.1" (\d{3}|-) - [\d.]+ms route=(\S+) endpoint=(\S+) '
    r"request_id=(\S+) name=(\S+) backend=(\S+) host=(\S+) drop=(\S+)\n$"
)


class Lines:
    """A ``LineSink`` that keeps its lines (``dataplane.accesslog`` gives the real one)."""

    def __init__(self, worker: int | None = None) -> None:
        self.lines: list[str] = []
        self.json_head = "{" if worker is None else f'{{"worker": {worker}, '
        self.text_tail = "\n" if worker is None else f" worker={worker}\n"
        self.utc = '"1970-01-01T00:00:00Z"'

    @property
    def writer(self) -> "Lines":
        return self

    def write(self, line: str) -> None:
        self.lines.append(line)

    def stamp(self) -> str:
        return "1970-01-01 00:00:00,000 "

    def parsed(self) -> list[tuple[str, ...]]:
        out = []
        for line in self.lines:
            m = TEXT.match(line)
            assert m is not None, line
            out.append(m.groups())
        return out


def primary(rid: bytes = b"rid-1", target: bytes = b"/p", host: bytes = b"a.com:8080") -> RequestView:
    return RequestView(b"GET", target, host, rid, "httproute/default/web/rule/0/match/0")


async def test_drops_at_admission_and_in_start_have_a_line_each(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    b = await start_backend(Mode.OK, delay=0.2)
    sink = Lines()
    d = make_dispatcher(access_log=MirrorLog(sink), max_concurrent_per_backend=1, max_queue_per_backend=0)
    mirror, sibling = make_mirror(b.endpoint), make_mirror(b.endpoint, k=1)
    # two mirrors of one request to one backend: ``admit`` lets both through, ``start`` has one place
    d.submit(
        (mirror, sibling), b"GET", b"/0", request_headers(request_id=b"rid-0"), False, request=primary(b"rid-0", b"/0")
    )
    for i in (1, 2):  # the slot is taken, there is no queue: dropped at admission
        rid = b"rid-%d" % i
        d.submit(
            (mirror,), b"GET", b"/%d" % i, request_headers(request_id=rid), False, request=primary(rid, b"/%d" % i)
        )
    d.submit((mirror,), b"GET", b"/3", request_headers(request_id=b"rid-3"), False)  # no primary given
    await until(lambda: d.stats().completed.get("2xx") == 1)
    rows = sink.parsed()
    assert len(rows) == 5
    endpoint = f"{b.endpoint.address}:{b.endpoint.port}"
    route = "httproute/default/web/rule/0/match/0"
    assert sorted(rows, key=lambda r: (r[5], r[6])) == [
        ("-", "-", "-", "-", "-", "-", mirror.name, mirror.backend, "-", "over_capacity"),
        ("GET", "/0", "200", route, endpoint, "rid-0", mirror.name, mirror.backend, "a.com-shadow:8080", "-"),
        ("GET", "/0", "-", route, "-", "rid-0", sibling.name, mirror.backend, "a.com-shadow:8080", "over_capacity"),
        ("GET", "/1", "-", route, "-", "rid-1", mirror.name, mirror.backend, "a.com-shadow:8080", "over_capacity"),
        ("GET", "/2", "-", route, "-", "rid-2", mirror.name, mirror.backend, "a.com-shadow:8080", "over_capacity"),
    ]
    await until(lambda: not d.tasks)
    assert d.access_log is not None
    assert d.access_log.records == {}  # nothing kept once every mirror has ended


@pytest.mark.parametrize("plain", [True, False])
async def test_policy_mirrors_have_their_lines_with_their_own_host(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher, plain: bool
) -> None:
    """MirrorPolicy mirrors (``shaped.py``), on the plain path (``admit_shaped``/``start_shaped``)
    and through ``submit``: completed, over capacity in ``start`` and dropped at admission, each
    line with the primary's request id and the mirror's own (Literal) Host."""
    b = await start_backend(Mode.OK, delay=0.2)
    sink = Lines()
    d = make_dispatcher(access_log=MirrorLog(sink), max_concurrent_per_backend=1, max_queue_per_backend=0)
    literal = MirrorHost(type="Literal", value="lit.internal")
    mirror = msgspec.structs.replace(make_mirror(b.endpoint), host=literal)
    sibling = msgspec.structs.replace(make_mirror(b.endpoint, k=1), host=literal)
    both = mirror_shapes((mirror, sibling))
    assert both is not None

    def send(mirrors: tuple[Mirror, ...], shapes: tuple[Shape | None, ...], i: int) -> None:
        rid, target = b"rid-%d" % i, b"/%d" % i
        headers = request_headers(request_id=rid)
        if not plain:
            d.submit(mirrors, b"GET", target, headers, False, shapes, None, primary(rid, target))
            return
        admitted = d.admit_shaped(mirrors, shapes, target, headers, primary(rid, target))
        if admitted is not None:
            encoded = encode_forward(b"GET", target, headers, b"10.1.2.3", b"http")
            assert encoded is not None
            d.start_shaped(admitted, encoded[0], encoded[2], False, None, False, primary(rid, target))

    send((mirror, sibling), both, 0)  # both admitted, one place: the sibling is over capacity in start
    send((mirror,), both[:1], 1)  # the slot is taken, no queue: dropped at admission
    await until(lambda: d.stats().completed.get("2xx") == 1)
    endpoint = f"{b.endpoint.address}:{b.endpoint.port}"
    route, host = "httproute/default/web/rule/0/match/0", "lit.internal"
    assert sorted(sink.parsed(), key=lambda r: (r[5], r[6])) == [
        ("GET", "/0", "200", route, endpoint, "rid-0", mirror.name, mirror.backend, host, "-"),
        ("GET", "/0", "-", route, "-", "rid-0", sibling.name, mirror.backend, host, "over_capacity"),
        ("GET", "/1", "-", route, "-", "rid-1", mirror.name, mirror.backend, host, "over_capacity"),
    ]
    await until(lambda: not d.tasks)
    assert d.access_log is not None
    assert d.access_log.records == {}


async def test_a_refused_upgrade_a_timeout_and_a_shutdown(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    hole = await start_backend(Mode.BLACKHOLE)
    sink = Lines(worker=3)
    log = MirrorLog(sink)
    d = make_dispatcher(access_log=log, timeout=0.2)
    mirror = make_mirror(hole.endpoint)
    d.refuse((mirror, make_mirror(hole.endpoint, k=1, ppm=0)), "upgrade", request=primary(b"up"))  # k=1: sampled out
    d.submit(
        (mirror,), b"GET", b"/slow", request_headers(request_id=b"late"), False, request=primary(b"late", b"/slow")
    )
    await until(lambda: d.stats().dropped.get("timeout") == 1)
    d.submit((mirror,), b"POST", b"/up", request_headers(request_id=b"cut"), True, request=primary(b"cut", b"/up"))
    await d.shutdown()
    assert all(line.endswith(" worker=3\n") for line in sink.lines)
    sink.lines = [line.replace(" worker=3\n", "\n") for line in sink.lines]
    rows = sink.parsed()
    assert [(r[0], r[1], r[5], r[9]) for r in rows] == [
        ("GET", "/p", "up", "upgrade"),
        ("GET", "/slow", "late", "timeout"),
        ("POST", "/up", "cut", "shutdown"),
    ]
    assert rows[1][4] == f"127.0.0.1:{hole.endpoint.port}"
    assert log.records == {}


async def test_json_lines(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    b = await start_backend()
    sink = Lines(worker=1)
    d = make_dispatcher(access_log=MirrorLog(sink, json=True))
    d.submit(
        (make_mirror(refused_endpoint()),), b"GET", b'/j?q="1"', request_headers(), False, request=primary(b"rid-1")
    )
    d.submit((make_mirror(b.endpoint),), b"GET", b"/j", request_headers(), False, request=primary(b"rid-1"))
    await until(lambda: len(sink.lines) == 2)
    records = [json.loads(line.split(" ", 2)[2]) for line in sink.lines]
    by = {r["status"]: r for r in records}
    assert list(by[200]) == ["worker", "time", "mirror", "method", "target", "status", "duration_ms", "route",
                             "endpoint", "request_id", "name", "backend", "host", "drop"]  # fmt: skip
    assert (by[200]["worker"], by[200]["mirror"], by[200]["drop"]) == (1, True, "")
    assert (by[None]["target"], by[None]["drop"]) == ('/j?q="1"', "connect_error")
    for line in sink.lines:  # the separators and escapes of json.dumps, as the primary's lines
        assert json.dumps(json.loads(line.split(" ", 2)[2])) + "\n" == line.split(" ", 2)[2]


def test_without_a_file_descriptor_lines_go_through_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """An embedded process whose stdout is no file: the sink has no writer, lines go through the
    logger ``mirrorgate.mirror_access`` to that stdout, whole, with their time and worker."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    fallback = logging.getLogger("mirrorgate.mirror_access")
    handlers = list(fallback.handlers)
    try:
        logs.setup_mirror_access_log("-", 2)
        logs.setup_mirror_access_log("-", 2)  # a second setup replaces the first: one line each
        sink = accesslog.mirror_sink()
        assert sink is not None
        assert sink.writer is None
        MirrorLog(sink).refused(make_mirror(), primary(), "no_endpoints")
    finally:
        accesslog.install_mirror(None, on=False)
        for handler in fallback.handlers[len(handlers) :]:
            fallback.removeHandler(handler)
    assert accesslog.mirror_sink() is None
    assert re.fullmatch(
        r'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} mirror "GET /p HTTP/1\.1" - - 0\.000ms route=\S+ endpoint=- '
        r"request_id=rid-1 name=\S+ backend=\S+ host=a\.com-shadow:8080 drop=no_endpoints worker=2\n",
        out.getvalue(),
    ), out.getvalue()


@pytest.mark.parametrize(
    ("rule", "suffix", "want"),
    [
        (None, True, "a.com-shadow:8080"),
        (None, False, "a.com:8080"),
        (MirrorHost(type="Original"), True, "a.com:8080"),
        (MirrorHost(type="ShadowSuffix"), False, "a.com-shadow:8080"),
        (MirrorHost(type="Literal", value="v2.internal"), True, "v2.internal"),
    ],
)
async def test_the_host_of_a_mirror_dropped_at_admission(
    make_dispatcher: MakeDispatcher, rule: MirrorHost | None, suffix: bool, want: str
) -> None:
    sink = Lines()
    d = make_dispatcher(access_log=MirrorLog(sink, shadow_suffix=suffix))
    mirror = msgspec.structs.replace(make_mirror(), host=rule)  # no endpoints: dropped at admission
    d.submit((mirror,), b"GET", b"/h", request_headers(), False, request=primary())
    (row,) = sink.parsed()
    assert (row[8], row[9]) == (want, "no_endpoints")


async def test_a_reload_switching_the_host_rule_shows_in_the_lines_of_mirrors_dropped_at_admission(
    make_dispatcher: MakeDispatcher,
) -> None:
    sink = Lines()
    d = make_dispatcher(access_log=MirrorLog(sink, shadow_suffix=True))
    d.reconfigure(MirrorConfig(shadow_host_suffix=False))  # ``--no-shadow-host-suffix`` by a reload
    d.submit((make_mirror(),), b"GET", b"/h", request_headers(), False, request=primary())
    (row,) = sink.parsed()
    assert (row[8], row[9]) == ("a.com:8080", "no_endpoints")  # the Host it would have been sent with


class Untouchable:
    """A primary whose every attribute read fails: with the log off nothing reads it."""

    def __getattr__(self, name: str) -> bytes:
        raise AssertionError(f"read {name} of the primary with the mirror access log off")


async def test_off_reads_nothing_of_the_primary(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    b = await start_backend()
    d = make_dispatcher(max_concurrent_per_backend=1, max_queue_per_backend=0)
    assert d.access_log is None
    request = Untouchable()
    ok, dead, half = make_mirror(b.endpoint), make_mirror(), make_mirror(b.endpoint, k=1, ppm=PPM // 2)
    d.submit((ok, dead, half), b"GET", b"/1", request_headers(), False, request=request)  # type: ignore[arg-type]
    d.refuse((ok,), "upgrade", request=request)  # type: ignore[arg-type]
    admitted = d.admit((ok, dead), request)  # type: ignore[arg-type]
    assert admitted is None  # the only slot is taken, no queue: over_capacity; no endpoints
    await until(lambda: not d.tasks)
