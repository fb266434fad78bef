"""One gateway process: a configuration source feeding one ``DataPlane``, until a signal.

Rules:
1. Start: the source's first configuration is loaded and checked (``serve/apply.py``), then every
   listener bound; a failure of either is a ``StartupError`` and nothing stays open.
2. Once listening, what is served and every problem are logged (``serve/apply.announce``); the
   same after each reload. ``/readyz`` is 503 while the table serves no listener, with the
   reason (``serve/report.not_served``); the process keeps running, a reload can make it ready.
3. Reload triggers: the source's ``watch`` (for ``FileSource``: a change to a ``-f`` path, unless
   ``--no-watch``) and SIGHUP. Each reload compiles the matcher off the loop, then
   ``DataPlane.apply`` swaps it in.
4. Shutdown, in order: stop reloading; shut the data plane down (``DataPlane.shutdown``: stop
   accepting, drain within ``grace``); close the admin server.
"""

import asyncio
import logging
import signal
from typing import NamedTuple

import uvloop
from prometheus_client import CollectorRegistry

from mirrorgate.admin.server import AdminApp
from mirrorgate.dataplane.matcher import Matcher, compile
from mirrorgate.serve.admin import listen_admin, mirror_endpoints, register_source_metrics, status_of, why_not_ready
from mirrorgate.serve.apply import Reloader, ReloadFailed, ReloadMetrics, announce_start, load_checked
from mirrorgate.serve.config import Loaded, RunConfig, StartupError
from mirrorgate.serve.plane import DataPlane
from mirrorgate.serve.signals import cancel_all, on_signal, until_stopped
from mirrorgate.serve.source import ConfigSource, source_of

log = logging.getLogger("mirrorgate")


class Built(NamedTuple):
    """A candidate configuration, built off the loop: the loaded config and its compiled matcher."""

    loaded: Loaded
    matcher: Matcher


def plane_reloader(plane: DataPlane, source: ConfigSource, loaded: Loaded) -> Reloader[Built]:
    """The reloader of one process: compile in a thread, ``DataPlane.apply`` on the loop."""

    async def apply(built: Built) -> None:
        try:
            await plane.apply(built.loaded.table, built.matcher)
        except StartupError as exc:
            raise ReloadFailed([str(exc)]) from exc

    return Reloader(
        Built(loaded, plane.state.matcher),
        source=source,
        prepare=lambda new: Built(new, compile(new.table)),
        table_of=lambda b: b.loaded.table,
        apply=apply,
        loaded_of=lambda b: b.loaded,
    )


async def serve(
    config: RunConfig,
    stop: asyncio.Event,
    *,
    registry: CollectorRegistry | None = None,
    source: ConfigSource | None = None,
) -> None:
    """Serve ``source`` (default: ``config``'s ``-f`` paths) until ``stop`` is set, reloading when
    it changes and on SIGHUP, then shut down gracefully. ``registry`` (default: a new one)
    receives the process's metrics."""
    source = source if source is not None else source_of(config)
    loaded = load_checked(source)
    plane = DataPlane(
        loaded.table,
        port_overrides=config.port_overrides,
        access_log_json=config.access_log_json,
        mirror_config=config.mirror,
        registry=registry,
        reuse_port=config.reuse_port,
        limits=config.limits,
    )
    reloader = plane_reloader(plane, source, loaded)
    plane.registry.register(ReloadMetrics(reloader))
    register_source_metrics(plane.registry, source)
    admin = await _start_admin(config, plane, reloader, source) if config.admin is not None else None
    tasks: list[asyncio.Task[None]] = []
    try:
        with on_signal(signal.SIGHUP, reloader.request):
            await plane.start()
            announce_start(loaded, source)
            tasks.append(asyncio.create_task(reloader.run()))
            tasks.append(asyncio.create_task(source.watch(reloader.request, stop)))
            await stop.wait()
    finally:
        await cancel_all(tasks)
        log.info("shutting down (grace %.1fs)", config.grace)
        await plane.shutdown(config.grace)
        if admin is not None:
            admin.close()
            await admin.wait_closed()


async def _start_admin(
    config: RunConfig, plane: DataPlane, reloader: Reloader[Built], source: ConfigSource
) -> asyncio.Server:
    assert config.admin is not None
    app = AdminApp(
        registry=plane.registry,
        table=lambda: plane.table,
        status=status_of(reloader, lambda: reloader.current.loaded.status, source),
        ready=lambda: plane.ready,
        why_not_ready=why_not_ready(source, lambda: reloader.current.loaded),
        **mirror_endpoints(lambda: plane.table, plane.mirror.views()),
    )
    return await listen_admin(app, config.admin)


async def _serve_until_signal(config: RunConfig) -> None:
    stop = asyncio.Event()
    with until_stopped(stop.set):
        await serve(config, stop)


def run(config: RunConfig) -> None:
    """Run one process under uvloop until SIGINT/SIGTERM; raises ``StartupError`` when it cannot
    start. (``cli`` runs ``serve.supervisor.supervise`` instead for ``workers > 1``.)"""
    uvloop.run(_serve_until_signal(config))
