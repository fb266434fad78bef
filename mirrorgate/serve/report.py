"""What a configuration serves and what is wrong with it, as log lines: pure functions.

Input: the status view (the kubectl-shaped ``List`` that ``/status`` shows, ``Loaded.status``) and
the routing table built from the same snapshot. Output: plain lines, no logging here; the
callers log them (``serve/single.py`` and ``serve/supervisor.py`` at start, ``serve/apply.py``
on each reload) or print them (``mirrorgate validate``).

Rules:
1. ``listener_lines``: one line per served listener: its address, port, protocol (HTTPS with its
   certificates' sources), hostname and the HTTPRoutes attached to it.
2. ``problems``: one line per thing the statuses know is wrong, naming ``Kind namespace/name`` and
   the condition with its reason and message: a condition that is not fine (Accepted, Programmed or
   ResolvedRefs ``False``; Conflicted or PartiallyInvalid ``True``) on a GatewayClass of ours
   (InvalidParameters: its message says which settings its Gateways are served with), a Gateway, one of its
   listeners (InvalidCertificateRef, RefNotPermitted, ...), a route's parent, a BackendTLSPolicy's
   ancestor (InvalidCACertificateRef, Conflicted, ...) or a MirrorPolicy (BackendNotFound, ...); a
   Gateway of another GatewayClass's controller (left alone); a route attached to no parent served
   here; a Service a route uses that has no ready endpoint (requests to it get 503, mirror copies to
   it are dropped; an ExternalName Service has none by design).
3. ``not_served``: ``None`` while some listener is served, else why nothing is (``/readyz`` says it,
   the start-up log and ``validate`` warn with it).
4. A Gateway without status is not ours; every rule says why in the same words
   (``_foreign_reason``): its GatewayClass does not exist (``run --kubernetes``), or names
   another controller. A GatewayClass of ours, accepted or not (InvalidParameters), has its
   Gateways served (``translate/params.py`` rule 2), so they are never called "not ours".
"""

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from mirrorgate.ir.table import Action, Filters, HTTPListener, RoutingTable
from mirrorgate.translate.translator import CONTROLLER_NAME

ENDPOINTS_FLAG = "--endpoints SERVICE[.NS][:PORT]=ADDR:PORT"
# condition type -> the status that means something is wrong (rule 2)
_BAD_WHEN = {
    "Accepted": "False",
    "Programmed": "False",
    "ResolvedRefs": "False",
    "Conflicted": "True",
    "PartiallyInvalid": "True",
}

Item = dict[str, Any]


def _ref(item: Item) -> str:
    """``Kind namespace/name`` (``Kind name`` for cluster-scoped objects)."""
    meta = item.get("metadata", {})
    ns = meta.get("namespace")
    return f"{item.get('kind')} {ns}/{meta.get('name')}" if ns else f"{item.get('kind')} {meta.get('name')}"


def _items(status: dict[str, Any], kind: str) -> list[Item]:
    return [i for i in status.get("items", ()) if i.get("kind") == kind]


def _bad(conditions: list[Item]) -> Iterator[str]:
    for c in conditions:
        if _BAD_WHEN.get(c.get("type", "")) == c.get("status"):
            yield f"{c['type']}={c['status']} ({c.get('reason')}): {c.get('message')}"


# --- rule 1: listeners ------------------------------------------------------------------------------------


def _route_names(listener: HTTPListener) -> list[str]:
    names = {r.name.split("/rule/")[0] for vh in listener.virtual_hosts for r in vh.routes}
    return sorted(names)


def listener_lines(table: RoutingTable) -> list[str]:
    """One line per served listener (rule 1)."""
    out = []
    for server in table.servers:
        for lst in server.listeners:
            routes = _route_names(lst)
            attached = ", ".join(routes) if routes else "none"
            host = lst.hostname or "*"
            out.append(
                f"listener {lst.name}: {server.address}:{server.port} {_protocol(table, lst)}, hostname {host}, "
                f"{len(routes)} route(s) attached: {attached}"
            )
    return out


def _protocol(table: RoutingTable, listener: HTTPListener) -> str:
    if listener.tls is None:
        return "HTTP"
    sources = {c.digest: c.source for c in table.certificates}
    return f"HTTPS ({', '.join(sources.get(d, d) for d in listener.tls.certificates)})"


def counts(table: RoutingTable) -> str:
    """``N listener(s) on M socket(s), R route(s)`` (routes: HTTPRoutes attached, counted once per listener)."""
    listeners = [lst for s in table.servers for lst in s.listeners]
    routes = sum(len(_route_names(lst)) for lst in listeners)
    return f"{len(listeners)} listener(s) on {len(table.servers)} socket(s), {routes} route attachment(s)"


# --- rule 2: problems ---------------------------------------------------------------------------------------


def problems(status: dict[str, Any], table: RoutingTable) -> list[str]:
    """Every problem the statuses and the table know about, one line each (rule 2)."""
    return [
        *_condition_problems(status, "GatewayClass"),
        *_gateway_problems(status),
        *_foreign_gateways(status),
        *_route_problems(status),
        *_policy_problems(status),
        *_condition_problems(status, "MirrorPolicy"),
        *_no_endpoints(table),
    ]


def _gateway_problems(status: dict[str, Any]) -> Iterator[str]:
    for gw in _items(status, "Gateway"):
        st = gw.get("status")
        if st is None:
            continue
        for text in _bad(st.get("conditions", [])):
            yield f"{_ref(gw)}: {text}"
        for lst in st.get("listeners", []):
            for text in _bad(lst.get("conditions", [])):
                yield f"{_ref(gw)} listener {lst.get('name')}: {text}"


def _condition_problems(status: dict[str, Any], kind: str) -> Iterator[str]:
    """The bad conditions of each object of ``kind`` whose status has conditions of its own."""
    for item in _items(status, kind):
        for text in _bad((item.get("status") or {}).get("conditions", [])):
            yield f"{_ref(item)}: {text}"


def _class_controllers(status: dict[str, Any]) -> dict[str, str]:
    return {c["metadata"]["name"]: c.get("spec", {}).get("controllerName", "") for c in _items(status, "GatewayClass")}


def _foreign_gateways(status: dict[str, Any]) -> Iterator[str]:
    for gw in _items(status, "Gateway"):
        if gw.get("status") is None:
            yield f"{_ref(gw)}: not ours, left alone: {_foreign_reason(status, gw)}"


def _foreign_reason(status: dict[str, Any], gw: Item) -> str:
    """Why a Gateway without status is not ours (rule 4): the one text every rule uses."""
    cls = gw.get("spec", {}).get("gatewayClassName", "")
    controllers = _class_controllers(status)
    if cls not in controllers:
        return f"its GatewayClass {cls} does not exist"
    if controllers[cls] == CONTROLLER_NAME:  # not ours although it has the default name: --controller-name
        return f"GatewayClass {cls} has controllerName {CONTROLLER_NAME}, not the --controller-name this process serves"
    return f"GatewayClass {cls} has controllerName {controllers[cls]}, not ours ({CONTROLLER_NAME})"


def _route_problems(status: dict[str, Any]) -> Iterator[str]:
    for route in _items(status, "HTTPRoute"):
        parents = route.get("status", {}).get("parents", [])
        if not parents:
            yield f"{_ref(route)}: attached to nothing served here: {_why_unattached(status, route)}"
        for parent in parents:
            where = _parent_text(parent.get("parentRef", {}), route)
            for text in _bad(parent.get("conditions", [])):
                yield f"{_ref(route)} (parent {where}): {text}"


def _policy_problems(status: dict[str, Any]) -> Iterator[str]:
    for policy in _items(status, "BackendTLSPolicy"):
        for ancestor in policy.get("status", {}).get("ancestors", []):
            where = _parent_text(ancestor.get("ancestorRef", {}), policy)
            for text in _bad(ancestor.get("conditions", [])):
                yield f"{_ref(policy)} (ancestor {where}): {text}"


def _parent_text(ref: Item, route: Item) -> str:
    ns = ref.get("namespace") or route.get("metadata", {}).get("namespace", "")
    section = f" section {ref['sectionName']}" if ref.get("sectionName") else ""
    return f"{ref.get('kind', 'Gateway')} {ns}/{ref.get('name')}{section}"


def _why_unattached(status: dict[str, Any], route: Item) -> str:
    refs = route.get("spec", {}).get("parentRefs", [])
    if not refs:
        return "it has no parentRefs"
    return "; ".join(_why_parent(status, ref, route) for ref in refs)


def _why_parent(status: dict[str, Any], ref: Item, route: Item) -> str:
    where = _parent_text(ref, route)
    kind = ref.get("kind", "Gateway")
    ns = ref.get("namespace") or route.get("metadata", {}).get("namespace", "")
    found = [i for i in _items(status, kind) if _ns_name(i) == (ns, ref.get("name"))]
    if not found:
        return f"{where} does not exist"
    if kind == "Gateway" and found[0].get("status") is None:
        return f"{where} is not ours: {_foreign_reason(status, found[0])}"
    return f"{where} is not a parent it can attach to"


def _ns_name(item: Item) -> tuple[str, str]:
    meta = item.get("metadata", {})
    return meta.get("namespace", ""), meta.get("name", "")


def _filter_mirrors(filters: Filters) -> Iterator[tuple[str, bool]]:
    for m in filters.mirrors:
        yield m.backend, not m.endpoints and m.external is None


def _action_refs(action: Action) -> Iterator[tuple[str, bool]]:
    """(Service port name, has no endpoints) of every usable backend and mirror of an action."""
    yield from _filter_mirrors(action.filters)
    if action.status or action.filters.redirect is not None:
        return
    for b in action.backends:
        if b.status == 0:
            yield b.name, not b.endpoints and b.external is None
        yield from _filter_mirrors(b.filters)


def _no_endpoints(table: RoutingTable) -> Iterator[str]:
    users: dict[str, set[str]] = defaultdict(set)
    for server in table.servers:
        for lst in server.listeners:
            for vh in lst.virtual_hosts:
                for route in vh.routes:
                    for name, empty in _action_refs(route.action):
                        if empty:
                            users[name].add(route.name.split("/rule/")[0])
    for name in sorted(users):
        svc = name.removeprefix("service/")
        yield (
            f"Service {svc}: no endpoints (used by {', '.join(sorted(users[name]))}): requests to it get 503 "
            f"and mirror copies to it are dropped; add an EndpointSlice, or use {ENDPOINTS_FLAG}"
        )


# --- rule 3: nothing served ---------------------------------------------------------------------------------


def not_served(status: dict[str, Any], table: RoutingTable) -> str | None:
    """``None`` when some listener is served, else ``no listener is served: <why>`` (rule 3)."""
    if table.servers:
        return None
    return f"no listener is served: {_why_nothing(status)}"


def _why_nothing(status: dict[str, Any]) -> str:
    gateways = _items(status, "Gateway")
    reasons = []
    for gw in gateways:
        if gw.get("status") is None:
            reasons.append(f"{_ref(gw)} is not ours: {_foreign_reason(status, gw)}")
        else:
            reasons.append(f"{_ref(gw)} has no listener that can be served")
    if reasons:
        return "; ".join(reasons)
    objects = len(status.get("items", ()))
    routes = [_ref(r) for r in _items(status, "HTTPRoute")]
    if routes:
        return f"the configuration has no Gateway ({', '.join(routes)} attach to none)"
    return f"the configuration has no Gateway ({objects} object(s) loaded)"


def report(status: dict[str, Any], table: RoutingTable) -> tuple[list[str], list[str]]:
    """(info lines, warning lines): the listeners served, then every problem and, when nothing is
    served, why."""
    warnings = problems(status, table)
    why = not_served(status, table)
    if why is not None:
        warnings.append(why)
    return listener_lines(table), warnings
