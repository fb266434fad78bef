"""Every mirror metric, defined in one place: plain in-memory counters on the hot path, exposed
to Prometheus by a collector that reads them at scrape time.

Metrics (on the registry passed to the dispatcher; label values are IR names and small enums):

    mirrorgate_mirror_sent_total{route, mirror, backend}               head written to a connection
    mirrorgate_mirror_requests_total{route, mirror, backend, outcome}  completed; outcome 1xx..5xx
    mirrorgate_mirror_dropped_total{route, mirror, backend, reason}    reason: ``DropReason``
    mirrorgate_mirror_sampled_out_total{route, mirror, backend}        not sampled (not a drop)
    mirrorgate_mirror_duration_seconds{route, mirror, backend}         histogram, submit -> end of response
    mirrorgate_mirror_inflight{backend}                                mirror requests holding a slot
    mirrorgate_mirror_queued{backend}                                  mirror requests waiting for one
    mirrorgate_mirror_breaker_open{backend}                            1 while the breaker is open/half-open
    mirrorgate_mirror_buffered_bytes                                   body bytes all mirrors are behind

Rules:
1. ``route`` is the mirror's IR name up to ``/rule/<i>`` (``httproute/<ns>/<name>/rule/<i>``);
   ``mirror`` is the full IR name (``.../rule/<i>/mirror/<k>``); ``backend`` the IR backend name.
2. The hot path only adds to ints of a ``MirrorSeries`` (no locks, no label lookups). Prometheus
   and ``stats()`` are two views of the same numbers, so they never disagree.
3. The collector copies what it reads (``tuple(...)``) before iterating, so a scrape from another
   thread never sees a dict change size under it.
"""

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from mirrorgate.mirror.config import DropReason

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LABELS = ["route", "mirror", "backend"]
_LE = [*(repr(b) for b in DURATION_BUCKETS), "+Inf"]


def route_of(mirror_name: str) -> str:
    """``httproute/ns/r/rule/0/mirror/1`` -> ``httproute/ns/r/rule/0`` (the whole name if no ``/mirror/``)."""
    route, sep, _ = mirror_name.rpartition("/mirror/")
    return route if sep else mirror_name


_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    return _CLASSES[min(max(status // 100, 1), 5)]


class MirrorSeries:
    """The counters of one (mirror, backend), changed only by the dispatcher."""

    __slots__ = ("backend", "buckets", "completed", "dropped", "duration_sum", "mirror", "route", "sampled_out", "sent")

    def __init__(self, mirror: str, backend: str) -> None:
        self.mirror = mirror
        self.route = route_of(mirror)
        self.backend = backend
        self.sent = 0
        self.sampled_out = 0
        self.completed: dict[str, int] = {}
        self.dropped: dict[str, int] = {}  # by ``DropReason`` value
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)  # per bucket, not cumulative; last = +Inf
        self.duration_sum = 0.0

    def count_completed(self, status: int, seconds: float) -> None:
        outcome = _CLASSES[status // 100] if 100 <= status < 600 else status_class(status)
        completed = self.completed
        completed[outcome] = completed.get(outcome, 0) + 1
        self.buckets[bisect_left(DURATION_BUCKETS, seconds)] += 1
        self.duration_sum += seconds

    def count_dropped(self, reason: DropReason | str) -> None:
        """Keys are the plain ``str`` values: an Enum member hashes through a Python-level
        ``__hash__`` (and not as its value), so members are never used as keys."""
        key = reason.value if isinstance(reason, DropReason) else reason
        dropped = self.dropped
        dropped[key] = dropped.get(key, 0) + 1


class BackendGauges(msgspec.Struct, frozen=True):
    """What the collector reads per backend at scrape time."""

    name: str
    inflight: int
    queued: int
    breaker_open: bool


class MirrorCollector:
    """A Prometheus collector over the dispatcher's counters (rule 2)."""

    def __init__(
        self,
        series: Callable[[], Iterable[MirrorSeries]],
        backends: Callable[[], Iterable[BackendGauges]],
        buffered: Callable[[], int],
    ) -> None:
        self._series = series
        self._backends = backends
        self._buffered = buffered

    def describe(self) -> list[Metric]:
        return list(_families())

    def collect(self) -> Iterator[Metric]:
        families = _families()
        sent, requests, dropped, sampled_out, duration, inflight, queued, breaker, buffered = families
        for s in tuple(self._series()):
            labels = [s.route, s.mirror, s.backend]
            sent.add_metric(labels, s.sent)
            sampled_out.add_metric(labels, s.sampled_out)
            for outcome, n in tuple(s.completed.items()):
                requests.add_metric([*labels, outcome], n)
            for reason, n in tuple(s.dropped.items()):
                dropped.add_metric([*labels, str(reason)], n)
            cumulative, buckets = 0, []
            for le, n in zip(_LE, tuple(s.buckets), strict=True):
                cumulative += n
                buckets.append((le, float(cumulative)))
            duration.add_metric(labels, buckets, s.duration_sum)
        for b in tuple(self._backends()):
            inflight.add_metric([b.name], b.inflight)
            queued.add_metric([b.name], b.queued)
            breaker.add_metric([b.name], 1.0 if b.breaker_open else 0.0)
        buffered.add_metric([], self._buffered())
        yield from families


class _Families(NamedTuple):
    sent: CounterMetricFamily
    requests: CounterMetricFamily
    dropped: CounterMetricFamily
    sampled_out: CounterMetricFamily
    duration: HistogramMetricFamily
    inflight: GaugeMetricFamily
    queued: GaugeMetricFamily
    breaker_open: GaugeMetricFamily
    buffered: GaugeMetricFamily


def _families() -> _Families:
    """Empty metric families: every name, type, help text and label set, in one place."""
    return _Families(
        CounterMetricFamily(
            "mirrorgate_mirror_sent", "Mirror requests whose head was written to a connection", labels=_LABELS
        ),
        CounterMetricFamily(
            "mirrorgate_mirror_requests",
            "Mirror requests completed, by response status class",
            labels=[*_LABELS, "outcome"],
        ),
        CounterMetricFamily(
            "mirrorgate_mirror_dropped", "Sampled mirror requests dropped, by reason", labels=[*_LABELS, "reason"]
        ),
        CounterMetricFamily(
            "mirrorgate_mirror_sampled_out", "Requests not sampled for a mirror (not a drop)", labels=_LABELS
        ),
        HistogramMetricFamily(
            "mirrorgate_mirror_duration_seconds", "Mirror request duration, submit to end of response", labels=_LABELS
        ),
        GaugeMetricFamily(
            "mirrorgate_mirror_inflight", "Mirror requests holding a concurrency slot", labels=["backend"]
        ),
        GaugeMetricFamily(
            "mirrorgate_mirror_queued", "Mirror requests waiting for a concurrency slot", labels=["backend"]
        ),
        GaugeMetricFamily(
            "mirrorgate_mirror_breaker_open",
            "1 while the backend's circuit breaker is open or half-open",
            labels=["backend"],
        ),
        GaugeMetricFamily(
            "mirrorgate_mirror_buffered_bytes", "Request body bytes all mirrors together are behind", labels=[]
        ),
    )


class SeriesCounts(msgspec.Struct, kw_only=True):
    """A copy of the counters of one (mirror, backend): ``MirrorStats`` (``Dispatcher.stats``) and
    ``views.Report`` (``/mirrors``, summed across workers) add what they show beside them."""

    backend: str
    sent: int = 0
    sampled_out: int = 0
    completed: dict[str, int] = msgspec.field(default_factory=dict)
    dropped: dict[str, int] = msgspec.field(default_factory=dict)

    @staticmethod
    def copied(s: MirrorSeries) -> dict[str, Any]:
        """The fields above, copied from ``s`` (drop reasons as plain strings)."""
        return {
            "backend": s.backend,
            "sent": s.sent,
            "sampled_out": s.sampled_out,
            "completed": dict(s.completed),
            "dropped": {str(reason): n for reason, n in s.dropped.items()},
        }

    def add_counts(self, other: "SeriesCounts") -> None:
        self.sent += other.sent
        self.sampled_out += other.sampled_out
        for mine, theirs in ((self.completed, other.completed), (self.dropped, other.dropped)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n


class MirrorStats(SeriesCounts, kw_only=True):
    """``SeriesCounts`` with the mirror's route."""

    route: str

    @classmethod
    def of(cls, s: MirrorSeries) -> "MirrorStats":
        return cls(route=s.route, **SeriesCounts.copied(s))


class Stats(msgspec.Struct, kw_only=True):
    """A snapshot for tests and the admin server (``Dispatcher.stats()``); totals over all mirrors."""

    sent: int = 0
    sampled_out: int = 0
    completed: dict[str, int] = msgspec.field(default_factory=dict)
    dropped: dict[str, int] = msgspec.field(default_factory=dict)
    inflight: dict[str, int] = msgspec.field(default_factory=dict)
    queued: dict[str, int] = msgspec.field(default_factory=dict)
    breakers: dict[str, str] = msgspec.field(default_factory=dict)
    buffered_bytes: int = 0
    tasks: int = 0
    mirrors: dict[str, MirrorStats] = msgspec.field(default_factory=dict)
