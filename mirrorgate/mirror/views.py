"""What the admin server shows of mirrors: ``/mirrors`` and ``/mirrors/<id>/diffs`` (JSON), and
the Prometheus counters of comparisons.

``Report`` is one mirror's counters (the dispatcher's series and, for a compared mirror, its
board's ``Counts``); ``Views`` is a process's reports and rings, made from one dispatcher
(``DispatcherViews``) or merged from the workers of ``--workers N`` (``serve/supervisor.py``).

Rules:
1. ``/mirrors`` lists every mirror of the routing table (rule-level and backendRef-level, each
   name once, in table order), compared or not; a mirror without traffic yet shows zeros.
   ``id`` is the first 12 hex digits of the SHA-256 of the mirror's name: URL-safe and stable
   across reloads, restarts and workers. ``compare`` is null for a mirror without ``compare``.
2. ``/mirrors/<id>/diffs`` is the ring of the latest mismatches, newest first; an unknown id is
   None (the admin server answers 404).
3. Metrics: ``mirrorgate_mirror_compared_total{mirror, result="match"|"mismatch"}``,
   ``mirrorgate_mirror_mismatch_total{mirror, kind}``, ``mirrorgate_mirror_compare_skipped_total{mirror}``,
   read from the board at scrape time (copies first: a scrape never sees a dict change size).
"""

import hashlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import msgspec
from prometheus_client.core import CounterMetricFamily, Metric

from mirrorgate.ir.table import Filters, Mirror, RoutingTable
from mirrorgate.mirror.board import KINDS, MAX_RING_BYTES, RECORD_OVERHEAD, Board, Counts, LatencyHistogram
from mirrorgate.mirror.metrics import MirrorSeries, SeriesCounts, route_of


class Report(SeriesCounts, kw_only=True):
    """One (mirror, backend)'s counters (``SeriesCounts``); ``compare`` only for a compared mirror."""

    mirror: str
    compare: Counts | None = None

    def add(self, other: "Report") -> None:
        self.add_counts(other)
        if other.compare is not None:
            if self.compare is None:
                self.compare = Counts()
            self.compare.add(other.compare)


class Views(Protocol):
    def reports(self) -> list[Report]: ...
    def diffs(self, mirror: str) -> list[dict[str, Any]]: ...  # newest first


def reports_of(series: list[MirrorSeries], board: Board) -> list[Report]:
    """The counters of every series and every compared mirror of one process (copies)."""
    out: dict[tuple[str, str], Report] = {}
    for s in series:
        out[(s.mirror, s.backend)] = Report(mirror=s.mirror, **SeriesCounts.copied(s))
    backends = {name: backend for name, backend in out}
    for name, st in tuple(board.stats.items()):
        key = (name, backends.get(name, ""))
        report = out.get(key)
        if report is None:
            report = out[key] = Report(mirror=name, backend=key[1])
        report.compare = msgspec.convert(msgspec.to_builtins(st.counts), Counts)
    return list(out.values())


class DispatcherViews:
    """``Views`` of one process's dispatcher (``series``: its ``MirrorSeries``, read at call time)."""

    def __init__(self, series: Callable[[], list[MirrorSeries]], board: Board) -> None:
        self._series = series
        self._board = board

    def reports(self) -> list[Report]:
        return reports_of(self._series(), self._board)

    def diffs(self, mirror: str) -> list[dict[str, Any]]:
        st = self._board.stats.get(mirror)
        return [] if st is None else st.records()


class WorkerFeed:
    """What a worker of ``--workers N`` sends its supervisor about mirrors, every snapshot: every
    report, and the ring records it has not sent yet (``board.py`` rule 4)."""

    def __init__(self, views: DispatcherViews, board: Board) -> None:
        self._views = views
        self._board = board
        self._sent: dict[str, int] = {}  # mirror name -> sequence number of the last record sent

    def event(self) -> dict[str, Any]:
        diffs: dict[str, list[dict[str, Any]]] = {}
        for name, st in tuple(self._board.stats.items()):
            new = st.records_since(self._sent.get(name, 0))
            if new:
                diffs[name] = new
                self._sent[name] = st.seq
        return {"event": "mirrors", "reports": msgspec.to_builtins(self._views.reports()), "diffs": diffs}


class MergedMirrors:
    """``Views`` of a group of workers (``serve/supervisor.py``): the sum of their latest reports
    plus what dead workers counted, and one ring per mirror merged from theirs, newest first,
    as long as the table's ``keep_mismatches`` for it; all the rings together hold at most
    ``MAX_RING_BYTES`` (records as JSON bytes, the oldest of any mirror evicted first)."""

    def __init__(self, table: Callable[[], RoutingTable]) -> None:
        self._table = table
        self.live: dict[int, list[Report]] = {}  # worker index -> its last reports
        self.retired: list[Report] = []  # dead workers' reports, summed
        # mirror name -> (time, record as JSON bytes), newest first; all together at most
        # ``MAX_RING_BYTES`` (``board.py`` rule 4: bytes, decoded only when shown)
        self.rings: dict[str, list[tuple[str, bytes]]] = {}
        self.ring_bytes = 0

    def update(self, worker: int, event: dict[str, Any]) -> None:
        """One ``WorkerFeed.event`` of ``worker``; raises ``msgspec.ValidationError`` if malformed."""
        self.live[worker] = msgspec.convert(event.get("reports", []), list[Report])
        diffs = msgspec.convert(event.get("diffs", {}), dict[str, list[dict[str, Any]]])
        if diffs:
            keep = {m.name: m.compare.keep_mismatches for m in table_mirrors(self._table()) if m.compare is not None}
            self.rings = {name: ring for name, ring in self.rings.items() if name in keep}  # mirrors gone
            for name, records in diffs.items():
                new = [(str(r.get("time", "")), msgspec.json.encode(r)) for r in records]
                ring = sorted([*new, *self.rings.get(name, [])], key=lambda r: r[0], reverse=True)
                self.rings[name] = ring[: keep.get(name, len(records))]
            self._within_budget()

    def _within_budget(self) -> None:
        """Evict the oldest records of any mirror while the rings hold more than ``MAX_RING_BYTES``."""
        rings = self.rings
        total = sum(len(raw) + RECORD_OVERHEAD for ring in rings.values() for _, raw in ring)
        while total > MAX_RING_BYTES:
            name = min((n for n in rings if rings[n]), key=lambda n: rings[n][-1][0])
            _, raw = rings[name].pop()
            total -= len(raw) + RECORD_OVERHEAD
        self.ring_bytes = total

    def retire(self, worker: int) -> None:
        self.retired = _summed([self.retired, self.live.pop(worker, [])])

    def reports(self) -> list[Report]:
        return _summed([self.retired, *self.live.values()])

    def diffs(self, mirror: str) -> list[dict[str, Any]]:
        return [msgspec.json.decode(raw) for _, raw in self.rings.get(mirror, [])]


def _summed(groups: list[list[Report]]) -> list[Report]:
    out: dict[tuple[str, str], Report] = {}
    for group in groups:
        for r in group:
            key = (r.mirror, r.backend)
            mine = out.get(key)
            if mine is None:
                mine = out[key] = Report(mirror=r.mirror, backend=r.backend)
            mine.add(r)
    return list(out.values())


def mirror_id(name: str) -> str:
    """Rule 1: stable and URL-safe."""
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def table_mirrors(table: RoutingTable) -> list[Mirror]:
    """Every mirror of the table, each name once, in table order (rule 1)."""
    seen: dict[str, Mirror] = {}

    def take(filters: Filters) -> None:
        for m in filters.mirrors:
            seen.setdefault(m.name, m)

    for server in table.servers:
        for listener in server.listeners:
            for action in listener.actions():
                take(action.filters)
                for b in action.backends:
                    take(b.filters)
    return list(seen.values())


def compared_names(table: RoutingTable) -> set[str]:
    """The names of the table's mirrors that compare responses."""
    return {m.name for m in table_mirrors(table) if m.compare is not None}


def _latency(h: list[int]) -> dict[str, float | None]:
    hist = LatencyHistogram(list(h))
    return {"p50": hist.percentile(0.5), "p99": hist.percentile(0.99)}


def compare_summary(c: Counts) -> dict[str, Any]:
    return {
        "compared": c.compared,
        "matched": c.matched,
        "matchRate": round(c.matched / c.compared, 6) if c.compared else None,
        "mismatches": {k: c.mismatches.get(k, 0) for k in KINDS},
        "mirrorFailed": dict(sorted(c.mirror_failed.items())),
        "skipped": c.skipped,
        "evicted": c.evicted,
        "latencyMs": {"primary": _latency(c.primary_latency), "mirror": _latency(c.mirror_latency)},
    }


def mirrors_document(table: RoutingTable, reports: list[Report]) -> dict[str, Any]:
    """``/mirrors`` (rule 1)."""
    by_key = {(r.mirror, r.backend): r for r in reports}
    compared = {r.mirror: r.compare for r in reports if r.compare is not None}
    out = []
    for m in table_mirrors(table):
        r = by_key.get((m.name, m.backend)) or Report(mirror=m.name, backend=m.backend)
        counts = compared.get(m.name) or Counts()
        out.append(
            {
                "id": mirror_id(m.name),
                "mirror": m.name,
                "route": route_of(m.name),
                "backend": m.backend,
                "policy": m.policy or None,
                "sent": r.sent,
                "sampledOut": r.sampled_out,
                "completed": dict(sorted(r.completed.items())),
                "dropped": dict(sorted(r.dropped.items())),
                "compare": None if m.compare is None else compare_summary(counts),
            }
        )
    return {"mirrors": out}


def diffs_document(table: RoutingTable, mirror_id_: str, views: Views) -> dict[str, Any] | None:
    """``/mirrors/<id>/diffs`` (rule 2); None for an id no mirror of the table has."""
    for m in table_mirrors(table):
        if mirror_id(m.name) == mirror_id_:
            return {"id": mirror_id_, "mirror": m.name, "diffs": views.diffs(m.name)}
    return None


class CompareCollector:
    """Rule 3."""

    def __init__(self, board: Board) -> None:
        self._board = board

    def describe(self) -> list[Metric]:
        return list(_families())

    def collect(self) -> Iterator[Metric]:
        compared, mismatch, skipped = families = _families()
        for name, st in tuple(self._board.stats.items()):
            c = st.counts
            compared.add_metric([name, "match"], c.matched)
            compared.add_metric([name, "mismatch"], c.compared - c.matched)
            for kind in KINDS:
                mismatch.add_metric([name, kind], c.mismatches.get(kind, 0))
            skipped.add_metric([name], c.skipped)
        yield from families


def _families() -> tuple[CounterMetricFamily, CounterMetricFamily, CounterMetricFamily]:
    return (
        CounterMetricFamily(
            "mirrorgate_mirror_compared",
            "Mirror responses compared with the primary's, by result",
            labels=["mirror", "result"],
        ),
        CounterMetricFamily(
            "mirrorgate_mirror_mismatch",
            "Compared mirror responses that differed, by kind of difference",
            labels=["mirror", "kind"],
        ),
        CounterMetricFamily(
            "mirrorgate_mirror_compare_skipped",
            "Mirror requests sent but not compared: too many comparisons pending",
            labels=["mirror"],
        ),
    )
