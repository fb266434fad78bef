"""Hot reload: watch the ``-f`` paths, rebuild the configuration off the event loop, apply it whole.

Owns: ``Reloader`` (one reload at a time; requests made while one runs coalesce into one more),
the last reload error shown on ``/status``, and ``watch_paths`` (``watchfiles``).

Rules:
1. Loading and translating is CPU work: it runs in a thread (``asyncio.to_thread``), never on
   the loop; applying the result is the caller's ``apply`` coroutine (a reference swap plus
   listener changes), so requests in flight finish on the table they started with.
2. A configuration whose table equals the one served (frozen structs compare by value) is not
   applied; its status view still replaces the old one (statuses can change on their own).
3. A broken configuration is never applied: the old one keeps serving, each error line (file,
   object, field, as ``mirrorgate validate`` prints) is logged and kept as ``last_error``
   (``{"time": ..., "errors": [...]}``) until a later reload succeeds.
4. One log line per reload: ``reloaded: N servers, M routes`` or ``reload failed: ...`` followed
   by the error lines.
5. Changes made between a load and the moment watching starts are not lost: once the watcher
   runs, one quiet reload catches up (a no-op when nothing changed).
6. Files are watched through their directory (editors and Kubernetes ConfigMaps replace files by
   renaming, which a watch on the file itself would miss); a directory's ``*.yaml``/``*.yml``
   children count, and so do ConfigMap ``..data`` swaps. Standard input (``-``) is not watched.
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import watchfiles

from mirrorgate.errors import MirrorgateError
from mirrorgate.ir.table import RoutingTable
from mirrorgate.status_view import utc_now

log = logging.getLogger("mirrorgate")

DEBOUNCE_MS = 300  # file events closer together than this make one reload
WATCH_TICK_MS = 500  # the watcher wakes this often even without events (its first wake-up means "watching")
WATCH_RETRY = 1.0  # seconds before watching again after the watcher failed (e.g. a directory vanished)
YAML_SUFFIXES = (".yaml", ".yml")

T = TypeVar("T")


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


class Reloader(Generic[T]):
    """Reload on request: ``load`` (blocking, run in a thread) builds a candidate ``T``; ``table_of``
    says what it serves; ``apply`` installs it. ``on_result`` (optional) hears every outcome:
    ``None`` for success, else the error lines."""

    def __init__(
        self,
        current: T,
        *,
        load: Callable[[], T],
        table_of: Callable[[T], RoutingTable],
        apply: Callable[[T], Awaitable[None]],
        on_result: Callable[[list[str] | None], None] | None = None,
    ) -> None:
        self.current = current
        self.last_error: dict[str, Any] | None = None
        self.reloads = 0  # completed reload attempts, good or bad (tests and logs)
        self._load = load
        self._table_of = table_of
        self._apply = apply
        self._on_result = on_result
        self._wake = asyncio.Event()
        self._loud = False  # a pending request wants its outcome logged even if nothing changed

    def request(self, *, quiet: bool = False) -> None:
        """Ask for a reload (signal handler, file watcher); returns at once. A ``quiet`` reload
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
            candidate = await asyncio.to_thread(self._load)
            changed = self._table_of(candidate) != self._table_of(self.current)
            if changed:
                await self._apply(candidate)
        except ReloadFailed as exc:
            self._failed(exc.lines)
            return False
        except Exception as exc:  # a bug in load/translate/apply must not stop serving; logged with traceback
            log.exception("reload failed with an internal error")
            self._failed([f"internal error: {exc!r}"])
            return False
        self.current = candidate
        self.last_error = None
        self.reloads += 1
        table = self._table_of(candidate)
        level = logging.DEBUG if quiet and not changed else logging.INFO
        log.log(level, "reloaded: %s%s", summary(table), "" if changed else " (unchanged)")
        if self._on_result is not None:
            self._on_result(None)
        return True

    def fail(self, lines: Sequence[str]) -> None:
        """Record a failure found elsewhere (e.g. reported by a worker process)."""
        self.last_error = {"time": utc_now(), "errors": list(lines)}

    def _failed(self, lines: list[str]) -> None:
        self.reloads += 1
        self.fail(lines)
        log.error("reload failed: %d error(s); the previous configuration keeps serving", len(lines))
        for line in lines:
            log.error("  %s", line)
        if self._on_result is not None:
            self._on_result(lines)


class _PathFilter:
    """Which file-system events concern the configuration (rule 5)."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        for p in paths:
            if p == "-":
                continue
            full = os.path.abspath(p)
            (self.dirs if os.path.isdir(full) else self.files).add(full)

    def roots(self) -> list[str]:
        """The directories to watch (non-recursively)."""
        return sorted(self.dirs | {os.path.dirname(f) for f in self.files})

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        full = os.path.abspath(path)
        parent, name = os.path.split(full)
        if full in self.files or name.startswith(".."):
            return True
        return parent in self.dirs and name.endswith(YAML_SUFFIXES)


async def watch_paths(paths: Sequence[str], on_change: Callable[..., None], stop: asyncio.Event) -> None:
    """Call ``on_change()`` after each burst of changes to ``paths`` until ``stop`` is set; and
    ``on_change(quiet=True)`` each time watching (re)starts, for what changed before it did."""
    logging.getLogger("watchfiles").setLevel(logging.WARNING)  # its "N changes detected" lines are ours to log
    filt = _PathFilter(paths)
    roots = filt.roots()
    if not roots:
        return
    while not stop.is_set():
        started = False
        try:
            async for changes in watchfiles.awatch(
                *roots,
                watch_filter=filt,
                debounce=DEBOUNCE_MS,
                stop_event=stop,
                recursive=False,
                rust_timeout=WATCH_TICK_MS,
                yield_on_timeout=True,
            ):
                if not started:
                    started = True
                    on_change(quiet=True)  # watching now: catch what changed since the last load
                if changes:
                    log.debug("configuration changed: %s", ", ".join(sorted({p for _, p in changes})))
                    on_change()
        except (OSError, RuntimeError) as exc:  # a watched directory vanished, inotify limits, ...
            log.warning("watching %s failed (%s); retrying in %.0fs", ", ".join(roots), exc, WATCH_RETRY)
            try:
                await asyncio.wait_for(stop.wait(), WATCH_RETRY)
            except TimeoutError:
                pass
