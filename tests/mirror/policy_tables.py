"""Routing tables with MirrorPolicy settings on their mirrors, for tests of the data plane.

The YAML of a test is translated by the real control plane (RequestMirror filters); then
``with_policy`` puts the IR ``Mirror`` policy fields on the mirrors of one backend, as the
MirrorPolicy translation fills them (the data plane only ever sees the IR).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from mirrorgate.ir.table import Action, Backend, Filters, Mirror, RoutingTable
from mirrorgate.serve.config import load_table
from tests.support.manifests import gateway_doc, route_doc, service_docs

NS = "infra"


def backend_name(service: str) -> str:
    return f"service/{NS}/{service}:8080"


def load(tmp_path: Path, rules: str, ports: dict[str, int], name: str = "mirrored") -> RoutingTable:
    """The table of one Gateway (port 80) and one HTTPRoute with ``rules``; ``ports``: Service name
    -> the loopback port of its one endpoint."""
    services = "".join(service_docs(service, port) for service, port in ports.items())
    path = tmp_path / f"{name}.yaml"
    path.write_text(gateway_doc() + services + route_doc(rules, name=name))
    return load_table([str(path)], "127.0.0.1")


def with_policy(table: RoutingTable, service: str, **fields: Any) -> RoutingTable:
    """``table`` with ``fields`` (IR ``Mirror`` fields) set on every mirror to ``service``, and
    ``policy`` named after it."""
    target = backend_name(service)

    def edit(m: Mirror) -> Mirror:
        if m.backend != target:
            return m
        return msgspec.structs.replace(m, policy=f"mirrorpolicy/{NS}/{service}", **fields)

    return map_mirrors(table, edit)


def map_mirrors(table: RoutingTable, edit: Callable[[Mirror], Mirror]) -> RoutingTable:
    """``table`` with every mirror (rule- and backendRef-level) replaced by ``edit(mirror)``."""
    replace = msgspec.structs.replace

    def filters(f: Filters) -> Filters:
        return replace(f, mirrors=tuple(edit(m) for m in f.mirrors)) if f.mirrors else f

    def backend(b: Backend) -> Backend:
        return replace(b, filters=filters(b.filters))

    def action(a: Action) -> Action:
        return replace(a, filters=filters(a.filters), backends=tuple(backend(b) for b in a.backends))

    servers = tuple(
        replace(
            server,
            listeners=tuple(
                replace(
                    listener,
                    virtual_hosts=tuple(
                        replace(vh, routes=tuple(replace(r, action=action(r.action)) for r in vh.routes))
                        for vh in listener.virtual_hosts
                    ),
                )
                for listener in server.listeners
            ),
        )
        for server in table.servers
    )
    return replace(table, servers=servers)


def mirrors_of(table: RoutingTable) -> list[Mirror]:
    """Every mirror of ``table`` (rule- and backendRef-level), in table order."""
    found: list[Mirror] = []

    def collect(m: Mirror) -> Mirror:
        found.append(m)
        return m

    map_mirrors(table, collect)
    return found
