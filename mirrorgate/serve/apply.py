"""The one path a configuration takes to be served: load off the loop, check, prepare, apply.

Owns: ``Reloader`` (one reload at a time; requests made while one runs coalesce into one more),
the invariant check every routing table passes before it is served (``checked``), and the last
reload error shown on ``/status``. What it serves comes from a ``ConfigSource``; where it goes is
the caller's ``prepare`` (off the loop, e.g. compiling the matcher) and ``apply`` (on the loop:
a ``DataPlane`` swap in one process, frames to the workers in a supervisor).

Rules:
1. Loading, translating, checking and preparing are CPU work: they run in a thread
   (``asyncio.to_thread``), never on the loop; applying the result is the caller's ``apply``
   coroutine (a reference swap plus listener changes), so requests in flight finish on the table
   they started with.
2. Every routing table passes ``ir.invariants.check`` before it is prepared or served, at startup
   (a failure is a startup error) and on each reload (a failure is a failed reload, rule 4). A
   violation is a translator bug, never a user error, but it is handled like a broken file.
3. A configuration whose table (and gateway-wide settings, ``serve/gwsettings.py``) equals the
   one served (frozen structs compare by value) is not applied; its status view still replaces
   the old one (statuses can change on their own).
4. A broken configuration is never applied: the old one keeps serving, each error line (file,
   object, field, as ``mirrorgate validate`` prints) is logged and kept as ``last_error``
   (``{"time": ..., "errors": [...]}``) until a later reload succeeds.
5. One log line per reload: ``reloaded: N servers, M routes`` or ``reload failed: ...`` followed
   by the error lines. A reload that was asked for (not a quiet one that found nothing changed)
   then logs what ``serve/report.py`` says about the new configuration: the listener counts
   before and after, the listeners served when they changed, and every problem (warning level),
   including why nothing is served when nothing is. ``announce`` logs the same at start.
6. Every completed reload attempt is counted by outcome, ``mirrorgate_reloads_total{outcome}``:
   ``applied`` (a new table is served), ``unchanged`` (the table equals the one served; its
   status view still replaced) or ``failed`` (rule 4). ``ReloadMetrics`` exposes the counts.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from mirrorgate.errors import MirrorgateError
from mirrorgate.ir import invariants
from mirrorgate.ir.table import RoutingTable
from mirrorgate.serve.config import ConfigInvalid, Loaded
from mirrorgate.serve.report import counts, report
from mirrorgate.serve.source import ConfigSource, Observed
from mirrorgate.status_view import utc_now

log = logging.getLogger("mirrorgate")

T = TypeVar("T")


def checked(loaded: Loaded) -> Loaded:
    """``loaded`` if its table upholds every invariant (rule 2), else ``ConfigInvalid``."""
    problems = invariants.check(loaded.table)
    if problems:
        raise ConfigInvalid([f"routing table invariant violated (a translator bug): {p}" for p in problems])
    return loaded


def load_checked(source: ConfigSource) -> Loaded:
    """The source's current configuration, checked (startup: raises ``ConfigInvalid``)."""
    return checked(source.load())


class ReloadFailed(MirrorgateError):
    """A new configuration could not be applied; ``lines`` are the error lines to report."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = list(lines)


def count_routes(table: RoutingTable) -> int:
    """The number of IR routes (one per HTTPRoute match) over every server, listener and host."""
    return sum(len(vh.routes) for s in table.servers for lst in s.listeners for vh in lst.virtual_hosts)


def summary(table: RoutingTable) -> str:
    return f"{len(table.servers)} servers, {count_routes(table)} routes"


def announce(loaded: Loaded, before: Loaded | None = None) -> None:
    """Log what ``loaded`` serves and what is wrong with it (rule 5): listeners at info (on a reload
    only when the table changed), problems at warning."""
    infos, warnings = report(loaded.status, loaded.table)
    if before is None:
        log.info("serving %s", counts(loaded.table))
    else:
        log.info("now serving %s (was %s)", counts(loaded.table), counts(before.table))
    if before is None or before.table != loaded.table:
        for line in infos:
            log.info("  %s", line)
    for line in warnings:
        log.warning("%s", line)


def announce_start(loaded: Loaded, source: ConfigSource) -> None:
    """``announce`` at start, or, for a source not ready to be served yet (the Kubernetes source
    before its first sync), why nothing is announced yet."""
    why = source.not_ready(loaded) if isinstance(source, Observed) else None
    if why is not None:
        log.info("not serving yet: %s", why)
    else:
        announce(loaded)


class Reloader(Generic[T]):
    """Reload on request: ``source.load()``, checked (rule 2), then ``prepare`` builds a candidate
    ``T`` (all in a thread); ``table_of`` says what it serves; ``apply`` installs it when its
    ``key`` (default: the table; with the gateway-wide settings beside it) differs from the current one's. ``on_result``
    (optional) hears every outcome: ``None`` for success, else the error lines. ``loaded_of``
    (optional) gives the configuration of a ``T``, to ``announce`` it after a reload (rule 5)."""

    def __init__(
        self,
        current: T,
        *,
        source: ConfigSource,
        prepare: Callable[[Loaded], T],
        table_of: Callable[[T], RoutingTable],
        apply: Callable[[T], Awaitable[None]],
        on_result: Callable[[list[str] | None], None] | None = None,
        loaded_of: Callable[[T], Loaded] | None = None,
        key: Callable[[T], object] | None = None,
    ) -> None:
        self.current = current
        self.last_error: dict[str, Any] | None = None
        self.reloads = 0  # completed reload attempts, good or bad (tests and logs)
        self.outcomes: Counter[str] = Counter()  # rule 6
        self._source = source
        self._prepare = prepare
        self._table_of = table_of
        self._apply = apply
        self._on_result = on_result
        self._loaded_of = loaded_of
        self._key = key if key is not None else table_of
        self._wake = asyncio.Event()
        self._loud = False  # a pending request wants its outcome logged even if nothing changed

    def request(self, *, quiet: bool = False) -> None:
        """Ask for a reload (signal handler, the source's watch); returns at once. A ``quiet`` reload
        that finds nothing changed logs at debug level only."""
        self._loud = self._loud or not quiet
        self._wake.set()

    async def run(self) -> None:
        """Serve reload requests until cancelled; one at a time, bursts coalesce."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            quiet, self._loud = not self._loud, False
            await self.reload(quiet=quiet)

    async def reload(self, *, quiet: bool = False) -> bool:
        """Load, compare, apply; True when the new configuration is serving (or was unchanged)."""
        try:
            candidate = await asyncio.to_thread(self._build)
            changed = self._key(candidate) != self._key(self.current)
            if changed:
                await self._apply(candidate)
        except ReloadFailed as exc:
            self._failed(exc.lines)
            return False
        except Exception as exc:  # a bug in load/translate/apply must not stop serving; logged with traceback
            log.exception("reload failed with an internal error")
            self._failed([f"internal error: {exc!r}"])
            return False
        previous, self.current = self.current, candidate
        self.last_error = None
        self.reloads += 1
        self.outcomes["applied" if changed else "unchanged"] += 1
        table = self._table_of(candidate)
        level = logging.DEBUG if quiet and not changed else logging.INFO
        log.log(level, "reloaded: %s%s", summary(table), "" if changed else " (unchanged)")
        if self._loaded_of is not None and level == logging.INFO:
            announce(self._loaded_of(candidate), self._loaded_of(previous))
        if self._on_result is not None:
            self._on_result(None)
        return True

    def _build(self) -> T:
        try:
            loaded = load_checked(self._source)
        except ConfigInvalid as exc:
            raise ReloadFailed(exc.lines) from exc
        return self._prepare(loaded)

    def fail(self, lines: Sequence[str]) -> None:
        """Record a failure found elsewhere (e.g. reported by a worker process)."""
        self.last_error = {"time": utc_now(), "errors": list(lines)}

    def _failed(self, lines: list[str]) -> None:
        self.reloads += 1
        self.outcomes["failed"] += 1
        self.fail(lines)
        log.error("reload failed: %d error(s); the previous configuration keeps serving", len(lines))
        for line in lines:
            log.error("  %s", line)
        if self._on_result is not None:
            self._on_result(lines)


class ReloadMetrics(Collector):
    """``mirrorgate_reloads_total{outcome}`` of one ``Reloader`` (rule 6)."""

    OUTCOMES = ("applied", "unchanged", "failed")

    def __init__(self, reloader: "Reloader[Any]") -> None:
        self.reloader = reloader

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "mirrorgate_reloads", "Completed configuration reload attempts by outcome", labels=["outcome"]
        )
        for outcome in self.OUTCOMES:
            family.add_metric([outcome], self.reloader.outcomes[outcome])
        yield family
