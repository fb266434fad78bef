"""Route attachment: parentRefs -> listeners (sectionName, port, allowedRoutes, hostnames).

One RouteParentStatus per parentRef that names a parent of ours; parents that do not exist or
belong to another controller are left out, as the spec says.
"""

import msgspec

from mirrorgate.model.httproute import HTTPRoute, ParentReference
from mirrorgate.translate import hostnames
from mirrorgate.translate.index import Index
from mirrorgate.translate.listeners import ROUTE_GROUP, GatewayInfo, ListenerInfo
from mirrorgate.translate.status import Reason


class Attachment(msgspec.Struct, frozen=True, kw_only=True):
    """A route accepted by one listener, serving ``hostnames`` there."""

    listener: str  # the listener's IR name
    hostnames: tuple[str, ...]


class ParentResult(msgspec.Struct, frozen=True, kw_only=True):
    ref: ParentReference
    attachments: tuple[Attachment, ...] = ()
    refusal: tuple[Reason, str] | None = None  # why no listener accepted the route


def attach_to_gateway(ix: Index, route: HTTPRoute, ref: ParentReference, gw: GatewayInfo) -> ParentResult:
    """Which listeners of ``gw`` accept ``route`` through ``ref``: ParentReference ``sectionName``
    and ``port``, the Listener's ``allowedRoutes`` (namespaces and kinds), and the intersection of
    ``Listener.hostname`` with ``HTTPRoute.spec.hostnames``."""
    candidates = [
        li
        for li in gw.listeners
        if (ref.section_name is None or li.spec.name == ref.section_name)
        and (ref.port is None or li.spec.port == ref.port)
    ]
    if not candidates:
        return ParentResult(ref=ref, refusal=(Reason.NO_MATCHING_PARENT, _no_parent_message(ref, gw)))
    allowed = [li for li in candidates if li.served and _allows(ix, li, route)]
    if not allowed:
        return ParentResult(
            ref=ref,
            refusal=(
                Reason.NOT_ALLOWED_BY_LISTENERS,
                "No listener of the parent allows this route (namespace or kind)",
            ),
        )
    attachments = []
    for li in allowed:
        hosts = hostnames.intersect(li.spec.hostname, route.spec.hostnames)
        if hosts:
            attachments.append(Attachment(listener=li.name, hostnames=hosts))
    if not attachments:
        return ParentResult(
            ref=ref,
            refusal=(Reason.NO_MATCHING_LISTENER_HOSTNAME, "No hostname of the route intersects a listener hostname"),
        )
    return ParentResult(ref=ref, attachments=tuple(attachments))


def _no_parent_message(ref: ParentReference, gw: GatewayInfo) -> str:
    what = []
    if ref.section_name is not None:
        what.append(f"sectionName {ref.section_name!r}")
    if ref.port is not None:
        what.append(f"port {ref.port}")
    g = gw.gateway.metadata
    return f"No listener of Gateway {g.namespace}/{g.name} matches {' and '.join(what)}"


def _allows(ix: Index, li: ListenerInfo, route: HTTPRoute) -> bool:
    if not any((k.group, k.kind) == (ROUTE_GROUP, "HTTPRoute") for k in li.supported_kinds):
        return False
    ns_rule = li.spec.allowed_routes.namespaces
    route_ns = route.metadata.namespace
    if ns_rule.from_ == "All":
        return True
    if ns_rule.from_ == "Same":
        return route_ns == li.gateway.metadata.namespace
    if ns_rule.from_ == "Selector" and ns_rule.selector is not None:
        ns = ix.namespaces.get(route_ns)
        labels = dict(ns.metadata.labels) if ns is not None else {}
        labels.setdefault("kubernetes.io/metadata.name", route_ns)
        return ns_rule.selector.matches(labels)
    return False
