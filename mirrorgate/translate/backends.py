"""backendRef resolution: kind, ReferenceGrant, Service, port -> targetPort -> endpoints.

A Service port resolves to endpoints the way kube-proxy does: the EndpointSlices labelled
``kubernetes.io/service-name: <svc>`` in the Service's namespace, port matched by the Service
port's name; legacy ``v1 Endpoints`` of the same name likewise. An endpoint whose
``conditions.ready`` is false is left out (unset means ready). A Service of type ExternalName has
no endpoints: it resolves to its ``spec.externalName`` on the route's port (``ExternalName``), which
the data plane resolves by DNS. The BackendTLSPolicy governing the Service port (by its name, else
the whole Service; ``backendtls``) gives the ``BackendTLS``, or, with no valid CA, a 500.
"""

import msgspec

from mirrorgate.ir.table import BackendTLS, ExternalName, UpstreamAddress
from mirrorgate.model.core import EndpointSlice, Service, ServicePort
from mirrorgate.model.snapshot import Snapshot
from mirrorgate.translate.index import Index
from mirrorgate.translate.refs import ROUTE_GROUP, reference_permitted
from mirrorgate.translate.status import Reason

# appProtocols the HTTP/1.1 data plane can speak to a backend (``kubernetes.io/ws``: WebSocket over
# HTTP/1.1, Gateway API HTTPRouteBackendProtocolWebSocket; every backend may be upgraded to).
HTTP_APP_PROTOCOLS = frozenset({"http", "HTTP", "kubernetes.io/http", "kubernetes.io/ws"})


class Resolved(msgspec.Struct, frozen=True, kw_only=True):
    """A resolved Service port: its IR name and ready endpoints."""

    name: str
    endpoints: tuple[UpstreamAddress, ...]
    app_protocol: str | None = None
    tls: BackendTLS | None = None
    external: ExternalName | None = None
    tls_failed: bool = False  # a BackendTLSPolicy targets it but has no valid CA: connections must fail


class Unresolved(msgspec.Struct, frozen=True, kw_only=True):
    """Why a backendRef is invalid (becomes ResolvedRefs=False with this reason)."""

    reason: Reason
    message: str


def resolve(
    ix: Index,
    *,
    route_ns: str,
    group: str,
    kind: str,
    name: str,
    namespace: str | None,
    port: int | None,
    from_group: str = ROUTE_GROUP,
    from_kind: str = "HTTPRoute",
) -> Resolved | Unresolved:
    """Resolve one backend or mirror reference made from an HTTPRoute in ``route_ns`` (or, with
    ``from_group``/``from_kind``, from another object there: a MirrorPolicy's backendRef, whose
    cross-namespace reference needs a ReferenceGrant from that kind)."""
    ns = namespace or route_ns
    if (group, kind) != ("", "Service"):
        return Unresolved(
            reason=Reason.INVALID_KIND,
            message=f"Unsupported backend kind {kind!r} in group {group!r}: only core Service is supported",
        )
    if not reference_permitted(
        ix.grants.get(ns, ()),
        from_namespace=route_ns,
        from_kind=from_kind,
        from_group=from_group,
        to_group="",
        to_kind="Service",
        to_namespace=ns,
        to_name=name,
    ):
        return Unresolved(
            reason=Reason.REF_NOT_PERMITTED,
            message=f"Backend ref to Service {ns}/{name} not permitted by any ReferenceGrant",
        )
    svc = ix.service(ns, name)
    if svc is None:
        return Unresolved(reason=Reason.BACKEND_NOT_FOUND, message=f"Service {ns}/{name} not found")
    sport = next((p for p in svc.spec.ports if p.port == port), None)
    if svc.spec.type == "ExternalName" and port is not None:
        return _with_policy(ix, svc, sport, _external(svc, port))
    if sport is None:
        return Unresolved(reason=Reason.BACKEND_NOT_FOUND, message=f"Service {ns}/{name} has no port {port}")
    if sport.app_protocol is not None and sport.app_protocol not in HTTP_APP_PROTOCOLS:
        return Unresolved(
            reason=Reason.UNSUPPORTED_PROTOCOL,
            message=f"Service {ns}/{name} port {port} has unsupported appProtocol {sport.app_protocol!r}",
        )
    plain = Resolved(
        name=f"service/{ns}/{name}:{port}",
        endpoints=ready_endpoints(ix, svc, sport),
        app_protocol=sport.app_protocol,
    )
    return _with_policy(ix, svc, sport, plain)


def _external(svc: Service, port: int) -> Resolved:
    """An ExternalName Service: no endpoints, the name and the route's port."""
    name = f"service/{svc.metadata.namespace}/{svc.metadata.name}:{port}"
    return Resolved(name=name, endpoints=(), external=ExternalName(host=svc.spec.external_name or "", port=port))


def _with_policy(ix: Index, svc: Service, sport: ServicePort | None, resolved: Resolved) -> Resolved:
    applied = ix.policies.applied(svc.metadata.namespace, svc.metadata.name, (sport.name or "") if sport else "")
    if applied is None:
        return resolved
    if applied.tls is None:
        return msgspec.structs.replace(resolved, tls_failed=True)
    return msgspec.structs.replace(resolved, tls=applied.tls)


def service_endpoints(snap: Snapshot, svc: Service, sport: ServicePort) -> tuple[UpstreamAddress, ...]:
    """Ready endpoints of one Service port, from EndpointSlices and legacy Endpoints, sorted."""
    return ready_endpoints(Index(snap), svc, sport)


def ready_endpoints(ix: Index, svc: Service, sport: ServicePort) -> tuple[UpstreamAddress, ...]:
    """``service_endpoints`` through an index, computed once per Service port."""
    key = ((svc.metadata.namespace, svc.metadata.name), sport)
    found = ix.ready.get(key)
    if found is None:
        found = ix.ready[key] = _ready_endpoints(ix, key[0], sport)
    return found


def _ready_endpoints(ix: Index, svc: tuple[str, str], sport: ServicePort) -> tuple[UpstreamAddress, ...]:
    found: set[UpstreamAddress] = set()
    for sl in ix.slices.get(svc, ()):
        found.update(_slice_endpoints(sl, sport))
    for ep in ix.endpoints.get(svc, ()):
        for subset in ep.subsets:
            target = _pick_port([(p.name, p.port) for p in subset.ports], sport)
            if target is not None:
                found.update(UpstreamAddress(address=a.ip, port=target) for a in subset.addresses)
    return tuple(sorted(found, key=lambda e: (e.address, e.port)))


def _slice_endpoints(sl: EndpointSlice, sport: ServicePort) -> list[UpstreamAddress]:
    target = _pick_port([(p.name, p.port) for p in sl.ports if p.port is not None], sport)
    if target is None:
        return []
    return [
        UpstreamAddress(address=addr, port=target)
        for e in sl.endpoints
        if e.conditions.ready is not False
        for addr in e.addresses
    ]


def _pick_port(ports: list[tuple[str | None, int | None]], sport: ServicePort) -> int | None:
    """The endpoint port for a Service port: by the Service port's name (Kubernetes names slice
    ports after Service ports); else, for a numeric targetPort, a slice port with that number."""
    want = sport.name or ""
    for pname, pnum in ports:
        if (pname or "") == want and pnum is not None:
            return pnum
    target = sport.target_port if sport.target_port is not None else sport.port
    if isinstance(target, int):
        for _, pnum in ports:
            if pnum == target:
                return pnum
    return None
