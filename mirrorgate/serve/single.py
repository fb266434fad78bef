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
   accepting, drain within the grace served, ``--grace`` or the GatewayConfig's); close the admin server.
5. Gateway-wide settings: the flags with the GatewayConfig in effect (``serve/gwsettings.py``),
   computed at start (a value refused is a startup error) and at each reload (a failed reload);
   a reload applies what may change at reload (``DataPlane.reconfigure``) and logs the rest.
6. The access log and the mirror access log: ``cli`` sets them up from the flags (or defaults)
   before any configuration is read; when the GatewayConfig names other destinations they are
   switched before the ``DataPlane`` is made (it reads the mirror sink then). A file that cannot
   be opened stops the start with one line naming the GatewayConfig and the field; on the reload
   that first serves (nothing served before) it fails that reload, changing nothing.
"""

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import NamedTuple

import uvloop
from prometheus_client import CollectorRegistry

from mirrorgate.admin.server import AdminApp
from mirrorgate.dataplane.matcher import Matcher, compile
from mirrorgate.serve.admin import listen_admin, mirror_endpoints, register_source_metrics, status_of, why_not_ready
from mirrorgate.serve.apply import Reloader, ReloadFailed, ReloadMetrics, announce_start, load_checked
from mirrorgate.serve.config import ConfigInvalid, Loaded, RunConfig, StartupError
from mirrorgate.serve.gwsettings import Effective, SettingsState, cannot_open, log_applied, log_destinations
from mirrorgate.serve.logs import CannotOpen, switch_logs
from mirrorgate.serve.plane import DataPlane
from mirrorgate.serve.signals import cancel_all, on_signal, until_stopped
from mirrorgate.serve.source import ConfigSource, source_of

log = logging.getLogger("mirrorgate")


class Built(NamedTuple):
    """A candidate configuration, built off the loop: the loaded config, its compiled matcher and
    its gateway-wide settings (``serve/gwsettings.py``)."""

    loaded: Loaded
    matcher: Matcher
    settings: Effective


def plane_reloader(
    plane: DataPlane, source: ConfigSource, loaded: Loaded, config: RunConfig, settings: SettingsState
) -> Reloader[Built]:
    """The reloader of one process: compile in a thread, ``DataPlane.apply`` on the loop, then the
    settings a reload may change (``DataPlane.reconfigure``)."""

    def prepare(new: Loaded) -> Built:
        try:
            wanted = new.settings(config)
        except ConfigInvalid as exc:
            raise ReloadFailed(exc.lines) from exc
        return Built(new, compile(new.table), wanted)

    async def apply(built: Built) -> None:
        before = settings.served
        fresh = plane.fresh and built.settings != settings.wanted
        if fresh:  # nothing served yet: every setting applies, before the first listener binds
            _logs(log_destinations(built.settings.settings, before), built.settings, ReloadFailed)  # first: it can fail
            plane.reconfigure(settings.update(built.settings, fresh=True), fresh=True)
        if built.loaded.table != plane.table:
            try:
                await plane.apply(built.loaded.table, built.matcher)
            except StartupError as exc:
                raise ReloadFailed([str(exc)]) from exc
        if not fresh and built.settings != settings.wanted:
            plane.reconfigure(settings.update(built.settings))
        log_applied(before, settings.served)

    return Reloader(
        Built(loaded, plane.state.matcher, settings.wanted),
        source=source,
        prepare=prepare,
        table_of=lambda b: b.loaded.table,
        apply=apply,
        loaded_of=lambda b: b.loaded,
        key=lambda b: (b.loaded.table, b.settings),
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
    settings = SettingsState(loaded.settings(config))
    served = settings.served
    # the GatewayConfig names other log destinations than the flags (or defaults) cli set up
    changed = log_destinations(served, config.settings)
    _logs(changed, settings.wanted, StartupError.of_lines)
    plane = DataPlane(
        loaded.table,
        port_overrides=config.port_overrides,
        access_log_json=served.access_log_json,
        mirror_config=served.mirror,
        registry=registry,
        reuse_port=config.reuse_port,
        limits=served.limits,
    )
    reloader = plane_reloader(plane, source, loaded, config, settings)
    plane.registry.register(ReloadMetrics(reloader))
    register_source_metrics(plane.registry, source)
    admin = await _start_admin(config, plane, reloader, source, settings) if config.admin is not None else None
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
        grace = settings.served.grace
        log.info("shutting down (grace %.1fs)", grace)
        await plane.shutdown(grace)
        if admin is not None:
            admin.close()
            await admin.wait_closed()


def _logs(destinations: dict[str, str], wanted: Effective, error: Callable[[list[str]], Exception]) -> None:
    """Access-log and mirror access-log lines to their ``destinations`` from now on (none: nothing
    changes); ``error`` (a startup error, a failed reload) names the setting and where it came
    from when a file cannot be opened, and then neither log changed (``serve/logs.py`` rule 6)."""
    if not destinations:
        return
    try:
        switch_logs(destinations)
    except CannotOpen as exc:
        raise error([cannot_open(wanted, exc)]) from exc


async def _start_admin(
    config: RunConfig, plane: DataPlane, reloader: Reloader[Built], source: ConfigSource, settings: SettingsState
) -> asyncio.Server:
    assert config.admin is not None
    app = AdminApp(
        registry=plane.registry,
        table=lambda: plane.table,
        status=status_of(reloader, lambda: reloader.current.loaded.status, source, settings.view),
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
