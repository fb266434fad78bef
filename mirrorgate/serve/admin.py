"""The admin server of a process (one gateway process, or the supervisor of a group of workers).

Rules:
1. ``/status`` is the served resources with their status plus ``lastReloadError``: null when the
   last reload succeeded, else its time and error lines.
2. An admin address that cannot be bound is a startup error.
4. ``gatewayConfig``: every gateway-wide setting with its value, its source (flag, GatewayConfig,
   default) and whether a reload applies it, plus the changes waiting for a restart
   (``serve/gwsettings.py``).
3. A source with its own state (``serve.source.Observed``: the Kubernetes source) adds its section
   to ``/status`` (``kubernetes``), its reason not to be ready to ``/readyz`` (before the table's)
   and its collector to ``/metrics``.
4. ``/mirrors`` and ``/mirrors/<id>/diffs`` list the mirrors of the table served, with the
   counters of the process's dispatcher (one process) or of every worker added up (the
   supervisor: ``supervisor.MergedMirrors``).
"""

import asyncio
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from mirrorgate.admin.server import AdminApp, start_admin
from mirrorgate.ir.table import RoutingTable
from mirrorgate.mirror.views import Views, diffs_document, mirrors_document
from mirrorgate.serve.apply import Reloader
from mirrorgate.serve.config import Loaded, StartupError
from mirrorgate.serve.report import not_served
from mirrorgate.serve.source import ConfigSource, Observed


def status_of(
    reloader: Reloader[Any],
    status: Callable[[], dict[str, Any]],
    source: ConfigSource | None = None,
    settings: Callable[[], dict[str, Any]] | None = None,
) -> Callable[[], dict[str, Any]]:
    """The ``/status`` document (rule 1), with the gateway-wide settings (rule 4) and the source's
    own section (rule 3)."""
    observed = source if isinstance(source, Observed) else None

    def document() -> dict[str, Any]:
        doc = {**status(), "lastReloadError": reloader.last_error}
        if settings is not None:
            doc["gatewayConfig"] = settings()
        if observed is not None:
            doc["kubernetes"] = observed.status_section()
        return doc

    return document


def why_not_ready(source: ConfigSource, current: Callable[[], Loaded]) -> Callable[[], str | None]:
    """The source's reason not to be ready (rule 3), else the table's (``serve/report.not_served``)."""
    observed = source if isinstance(source, Observed) else None

    def why() -> str | None:
        loaded = current()
        return (observed.not_ready(loaded) if observed else None) or not_served(loaded.status, loaded.table)

    return why


def register_source_metrics(registry: CollectorRegistry, source: ConfigSource) -> None:
    """The source's own metrics (the Kubernetes source's watch, sync and leader gauges)."""
    if isinstance(source, Observed):
        registry.register(source.collector())


def mirror_endpoints(table: Callable[[], RoutingTable], views: Views) -> dict[str, Any]:
    """``AdminApp``'s ``mirrors`` and ``diffs`` (rule 4), read at request time."""
    return {
        "mirrors": lambda: mirrors_document(table(), views.reports()),
        "diffs": lambda mirror_id: diffs_document(table(), mirror_id, views),
    }


async def listen_admin(app: AdminApp, address: tuple[str, int]) -> asyncio.Server:
    try:
        return await start_admin(app, *address)
    except OSError as exc:
        raise StartupError(f"cannot listen for the admin server on {address[0]}:{address[1]}: {exc}") from exc
