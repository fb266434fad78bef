"""Prometheus metrics on the registry passed in, labelled by IR names and small enums only; the
``stats()`` snapshot agrees with them."""

import msgspec
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mirrorgate.mirror import Dispatcher, MirrorConfig
from mirrorgate.mirror.metrics import route_of, status_class
from tests.support.backends import Mode
from tests.support.waiting import until

from .conftest import ROUTE, MakeDispatcher, StartBackend, make_mirror, refused_endpoint, request_headers

Labels = frozenset[tuple[str, str]]


def frozen(labels: dict[str, str]) -> Labels:
    return frozenset(labels.items())


def scrape(d: Dispatcher) -> dict[tuple[str, Labels], float]:
    """The dispatcher's registry as Prometheus text, parsed back: (sample name, labels) -> value."""
    text = generate_latest(d.registry).decode()
    return {
        (sample.name, frozen(sample.labels)): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.parametrize(
    ("name", "route"),
    [
        ("httproute/default/web/rule/0/mirror/1", "httproute/default/web/rule/0"),
        ("httproute/ns/a/rule/12/mirror/0", "httproute/ns/a/rule/12"),
        ("service/ns/svc:80", "service/ns/svc:80"),
    ],
)
def test_route_label_is_the_rule_prefix(name: str, route: str) -> None:
    assert route_of(name) == route


def test_status_classes() -> None:
    assert [status_class(s) for s in (101, 200, 302, 404, 599, 600)] == ["1xx", "2xx", "3xx", "4xx", "5xx", "5xx"]


async def test_metrics_text_has_every_family(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    ok, hole = await start_backend(), await start_backend(Mode.BLACKHOLE)
    d = make_dispatcher(timeout=1.0, max_concurrent_per_backend=1, max_queue_per_backend=0)  # ok answers well within
    good = make_mirror(ok.endpoint, k=0, backend="service/default/good:80")
    bad = make_mirror(hole.endpoint, k=1, backend="service/default/hole:80")
    never = make_mirror(refused_endpoint(), k=2, ppm=0, backend="service/default/never:80")
    d.submit((good, bad, never), b"GET", b"/", request_headers(), False)
    d.submit((bad,), b"GET", b"/", request_headers(), False)  # over capacity
    await until(lambda: not d.tasks)
    samples = scrape(d)
    good_labels = {"route": ROUTE, "mirror": good.name, "backend": good.backend}
    bad_labels = {"route": ROUTE, "mirror": bad.name, "backend": bad.backend}
    never_labels = {"route": ROUTE, "mirror": never.name, "backend": never.backend}
    assert samples[("mirrorgate_mirror_sent_total", frozen(good_labels))] == 1
    assert samples[("mirrorgate_mirror_requests_total", frozen({**good_labels, "outcome": "2xx"}))] == 1
    assert samples[("mirrorgate_mirror_duration_seconds_count", frozen(good_labels))] == 1
    assert samples[("mirrorgate_mirror_sent_total", frozen(bad_labels))] == 1
    assert samples[("mirrorgate_mirror_dropped_total", frozen({**bad_labels, "reason": "timeout"}))] == 1
    assert samples[("mirrorgate_mirror_dropped_total", frozen({**bad_labels, "reason": "over_capacity"}))] == 1
    assert samples[("mirrorgate_mirror_sampled_out_total", frozen(never_labels))] == 1
    assert samples[("mirrorgate_mirror_inflight", frozen({"backend": bad.backend}))] == 0
    assert samples[("mirrorgate_mirror_queued", frozen({"backend": bad.backend}))] == 0
    reasons = {dict(labels).get("reason") for name, labels in samples if name == "mirrorgate_mirror_dropped_total"}
    assert reasons == {"timeout", "over_capacity"}


async def test_inflight_gauge_follows_the_slots(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    hole = await start_backend(Mode.BLACKHOLE)
    d = make_dispatcher(max_concurrent_per_backend=3, max_queue_per_backend=2, timeout=60.0)
    for _ in range(5):
        d.submit((make_mirror(hole.endpoint),), b"GET", b"/", request_headers(), False)
    backend = frozen({"backend": "service/default/shadow:80"})
    samples = scrape(d)
    assert samples[("mirrorgate_mirror_inflight", backend)] == 3
    assert samples[("mirrorgate_mirror_queued", backend)] == 2
    await d.shutdown()
    samples = scrape(d)
    assert samples[("mirrorgate_mirror_inflight", backend)] == 0
    assert samples[("mirrorgate_mirror_queued", backend)] == 0
    labels = {"route": ROUTE, "mirror": f"{ROUTE}/mirror/0", "backend": "service/default/shadow:80"}
    assert samples[("mirrorgate_mirror_dropped_total", frozen({**labels, "reason": "shutdown"}))] == 5


async def test_stats_snapshot_is_serialisable_and_consistent(
    start_backend: StartBackend, make_dispatcher: MakeDispatcher
) -> None:
    ok, reset = await start_backend(), await start_backend(Mode.RESET)
    d = make_dispatcher(breaker_failures=0)
    mirrors = (
        make_mirror(ok.endpoint, k=0, backend="service/default/ok:80"),
        make_mirror(reset.endpoint, k=1, backend="service/default/reset:80"),
    )
    for _ in range(4):
        d.submit(mirrors, b"GET", b"/", request_headers(), False)
    await until(lambda: not d.tasks)
    st = d.stats()
    assert st.sent == 8
    assert st.completed == {"2xx": 4}
    assert st.dropped == {"reset": 4}
    assert st.sent == sum(st.completed.values()) + st.dropped["reset"]  # every sent mirror ended once
    decoded = msgspec.json.decode(msgspec.json.encode(st))
    assert decoded["mirrors"][mirrors[1].name]["dropped"] == {"reset": 4}
    assert decoded["breakers"] == {"service/default/ok:80": "closed", "service/default/reset:80": "closed"}


async def test_each_dispatcher_has_its_own_registry() -> None:
    a = Dispatcher(MirrorConfig(), registry=CollectorRegistry())
    b = Dispatcher(MirrorConfig(), registry=CollectorRegistry())
    c = Dispatcher()  # a private registry by default: never the global one
    assert a.registry is not b.registry
    assert c.registry is not a.registry
    for d in (a, b, c):
        await d.shutdown()


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_concurrent_per_backend"):
        MirrorConfig(max_concurrent_per_backend=0)
    with pytest.raises(ValueError, match="max_queue_per_backend"):
        MirrorConfig(max_queue_per_backend=-1)
    assert MirrorConfig(max_queue_per_backend=0).max_queue_per_backend == 0


async def test_breaker_buffer_and_histogram_series(make_dispatcher: MakeDispatcher) -> None:
    d = make_dispatcher(breaker_failures=1, breaker_open_duration=60.0)
    dead = make_mirror(refused_endpoint())
    d.submit((dead,), b"GET", b"/", request_headers(), False)
    await until(lambda: not d.tasks)
    tee = d.submit(
        (make_mirror(refused_endpoint(), k=1, backend="service/default/other:80"),),
        b"POST",
        b"/",
        request_headers(),
        True,
    )
    assert tee is not None
    tee.feed(b"z" * 1000)
    samples = scrape(d)
    assert samples[("mirrorgate_mirror_breaker_open", frozen({"backend": dead.backend}))] == 1
    assert samples[("mirrorgate_mirror_breaker_open", frozen({"backend": "service/default/other:80"}))] == 0
    assert samples[("mirrorgate_mirror_buffered_bytes", frozen({}))] > 1000  # the body plus its chunk framing
    assert d.stats().buffered_bytes == samples[("mirrorgate_mirror_buffered_bytes", frozen({}))]


async def test_duration_histogram_buckets(start_backend: StartBackend, make_dispatcher: MakeDispatcher) -> None:
    b = await start_backend()
    d = make_dispatcher()
    for _ in range(3):
        d.submit((make_mirror(b.endpoint),), b"GET", b"/", request_headers(), False)
    await until(lambda: d.stats().completed.get("2xx") == 3)
    samples = scrape(d)
    labels = {"route": ROUTE, "mirror": f"{ROUTE}/mirror/0", "backend": "service/default/shadow:80"}
    assert samples[("mirrorgate_mirror_duration_seconds_count", frozen(labels))] == 3
    assert samples[("mirrorgate_mirror_duration_seconds_bucket", frozen({**labels, "le": "+Inf"}))] == 3
    assert samples[("mirrorgate_mirror_duration_seconds_bucket", frozen({**labels, "le": "10.0"}))] == 3
    assert samples[("mirrorgate_mirror_duration_seconds_sum", frozen(labels))] >= 0  # uvloop's clock has 1 ms steps


def test_one_collector_per_registry() -> None:
    registry = CollectorRegistry()
    Dispatcher(registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Dispatcher(registry=registry)
