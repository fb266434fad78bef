"""Where configurations come from: the ``ConfigSource`` interface and its file implementation.

A source yields whole configurations (``Loaded``: a translated routing table plus the status
view) and says when a new one may be available; ``serve/apply.py`` does the rest (check,
compile, swap), the same for every source. ``FileSource`` reads the ``-f`` paths; a Kubernetes
API source implements the same two methods.

Rules:
1. ``load()`` is blocking CPU and I/O work: callers run it in a thread, never on the loop. It
   returns a complete configuration or raises ``ConfigInvalid`` with every error line.
2. ``watch(changed, stop)`` calls ``changed()`` whenever ``load()`` may return something new,
   until ``stop`` is set; ``changed(quiet=True)`` when it (re)starts watching, for what changed
   before it did (a no-op reload when nothing did). ``changed`` returns at once; bursts coalesce.
3. Files are watched through their directory (editors and Kubernetes ConfigMaps replace files by
   renaming, which a watch on the file itself would miss); a directory's ``*.yaml``/``*.yml``
   children count, and so do ConfigMap ``..data`` swaps. Standard input (``-``) is read once, at
   start, and reused by every load; it is not watched.
4. The first ``FileSource.load()`` logs the loader's notes at INFO, later ones at DEBUG (a reload
   repeats them otherwise).
5. A source remembers the last valid GatewayConfig it loaded (``Loaded.valid_config``) and hands
   it to the next translation: when the GatewayClass's ``parametersRef`` stops resolving (the
   GatewayConfig deleted, or refused), its Gateways keep being served with those settings
   (``translate/params.py`` rule 2). A fresh process has none: the defaults (flags still win).
"""

import asyncio
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import watchfiles
from prometheus_client.registry import Collector

from mirrorgate.model.gwconfig import GatewayConfig
from mirrorgate.providers.endpoints import EndpointSpec
from mirrorgate.serve.config import Loaded, RunConfig, load_config, read_stdin_once

log = logging.getLogger("mirrorgate")

DEBOUNCE_MS = 300  # file events closer together than this make one reload
WATCH_TICK_MS = 500  # the watcher wakes this often even without events (its first wake-up means "watching")
WATCH_RETRY = 1.0  # seconds before watching again after the watcher failed (e.g. a directory vanished)
YAML_SUFFIXES = (".yaml", ".yml")


class Trigger(Protocol):
    """Asks for a reload; returns at once (``Reloader.request``)."""

    def __call__(self, *, quiet: bool = False) -> None: ...


class ConfigSource(Protocol):
    """Yields validated configurations (rules 1-2)."""

    def load(self) -> Loaded:
        """The current configuration; blocking, run in a thread; raises ``ConfigInvalid``."""
        ...

    async def watch(self, changed: Trigger, stop: asyncio.Event) -> None:
        """Call ``changed()`` whenever ``load()`` may return something new, until ``stop``."""
        ...


@runtime_checkable
class Observed(Protocol):
    """A source with its own readiness, ``/status`` section and metrics (the Kubernetes source)."""

    def not_ready(self, current: Loaded) -> str | None:
        """Why the process must not be ready with ``current`` served, or None."""
        ...

    def status_section(self) -> dict[str, Any]: ...

    def collector(self) -> Collector: ...


def source_of(config: RunConfig) -> ConfigSource:
    """The source ``mirrorgate run`` asked for: the API server with ``--kubernetes``, else the files."""
    if config.kube is not None:
        from mirrorgate.serve.kube import kube_source

        return kube_source(config)
    return FileSource.of(config)


class FileSource:
    """The ``-f`` paths: files, directories of ``*.yaml``/``*.yml``, ``-`` for standard input."""

    def __init__(
        self,
        paths: Sequence[str],
        bind: str,
        *,
        watch: bool = True,
        stdin_text: str | None = None,
        endpoints: Sequence[EndpointSpec] = (),
    ) -> None:
        self.paths = tuple(paths)
        self.bind = bind
        self.watching = watch
        self.stdin_text = stdin_text
        self.endpoints = tuple(endpoints)
        self._first = True
        self.last_config: GatewayConfig | None = None  # rule 5

    @classmethod
    def of(cls, config: RunConfig) -> "FileSource":
        """The source of ``mirrorgate run``; reads standard input now when a path is ``-``."""
        stdin_text = read_stdin_once(config.paths)
        return cls(config.paths, config.bind, watch=config.watch, stdin_text=stdin_text, endpoints=config.endpoints)

    def load(self) -> Loaded:
        notes, self._first = self._first, False
        loaded = load_config(
            self.paths, self.bind, self.stdin_text, notes=notes, endpoints=self.endpoints, last=self.last_config
        )
        self.last_config = loaded.valid_config(self.last_config)
        return loaded

    async def watch(self, changed: Trigger, stop: asyncio.Event) -> None:
        if self.watching:
            await watch_paths(self.paths, changed, stop)


class _PathFilter:
    """Which file-system events concern the configuration (rule 3)."""

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


async def watch_paths(paths: Sequence[str], on_change: Trigger, stop: asyncio.Event) -> None:
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
