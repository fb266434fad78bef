"""translate(): Snapshot -> RoutingTable + statuses, in named phases of fixed order.

Phases: classes (``parametersRef``: ``translate/params.py``; a class of ours rejected with
InvalidParameters still has its Gateways served) -> BackendTLSPolicies -> gateways/listeners
(HTTPS certificates) -> routes
(rules, parents, attachment) -> mesh services -> servers (the IR, with the certificates and trust
bundles in use) -> statuses (BackendTLSPolicy ancestors: our Gateways whose routes use a target;
MirrorPolicies: Accepted and ResolvedRefs of their backendRef).
Gateways whose class is absent from the input are ours unless
``TranslateOptions.missing_class_is_ours`` is False (the Kubernetes source).
"""

import ipaddress
from collections import defaultdict

import msgspec

from mirrorgate.gcpause import paused_gc
from mirrorgate.ir.table import (
    Action,
    Backend,
    Certificate,
    HeaderMatch,
    HTTPListener,
    ListenerTLS,
    Match,
    PathType,
    QueryMatch,
    Route,
    RoutingTable,
    Server,
    VirtualHost,
)
from mirrorgate.model.core import Service
from mirrorgate.model.gwconfig import GatewayConfig
from mirrorgate.model.httproute import HTTPRoute, HTTPRouteMatch, ParentReference
from mirrorgate.model.snapshot import Snapshot
from mirrorgate.translate import hostnames
from mirrorgate.translate.backends import ready_endpoints
from mirrorgate.translate.backendtls import policy_statuses, resolve_policies, service_users
from mirrorgate.translate.certificates import unique
from mirrorgate.translate.index import Index
from mirrorgate.translate.listeners import GatewayInfo, listener_conditions, process_gateways
from mirrorgate.translate.mirrorpolicy import policy_statuses as mirror_policy_statuses
from mirrorgate.translate.params import Parameters, resolve_parameters
from mirrorgate.translate.precedence import PrecedenceKey, precedence_key
from mirrorgate.translate.routes import Attachment, ParentResult, attach_to_gateway
from mirrorgate.translate.rules import RuleResult, build_rule
from mirrorgate.translate.status import (
    AnyStatus,
    Condition,
    CondType,
    GatewayClassStatus,
    GatewayStatus,
    GatewayStatusAddress,
    ListenerStatus,
    ParentRef,
    Reason,
    RouteParentStatus,
    RouteStatus,
    cond,
)

CONTROLLER_NAME = "mirrorgate.dev/gateway-controller"


class TranslateOptions(msgspec.Struct, frozen=True, kw_only=True):
    bind: str = "0.0.0.0"
    controller_name: str = CONTROLLER_NAME
    # A Gateway whose GatewayClass is absent from the input: ours with files (a file rarely carries
    # the class), not ours from an API server (where every class the cluster has is in the input).
    missing_class_is_ours: bool = True
    # Services as mesh listeners: every Service with a clusterIP, on that IP (files: the addresses
    # are the user's to give the host), or only those a route names as its parent, on ``bind``
    # (a pod, where cluster IPs are kube-proxy's and cannot be bound).
    mesh_parents_on_bind: bool = False
    # GatewayConfigs admission refused ("namespace/name" -> message): a class naming one is
    # rejected with InvalidParameters saying why (translate/params.py).
    refused_configs: dict[str, str] = msgspec.field(default_factory=dict)
    # The last valid GatewayConfig the process served: a rejected class's settings when no valid
    # one is in effect (translate/params.py rule 2); None: the defaults.
    last_config: GatewayConfig | None = None


class TranslateResult(msgspec.Struct, frozen=True, kw_only=True):
    table: RoutingTable
    statuses: dict[str, AnyStatus]  # str(ObjectKey) -> status
    parameters: Parameters = msgspec.field(default_factory=lambda: Parameters(verdicts={}))


# (route, rule index, rule action, hostnames) attached to one listener (by listener name).
_Entry = tuple[HTTPRoute, int, Action, tuple[str, ...]]


class _Mesh(msgspec.Struct, frozen=True, kw_only=True):
    service: Service
    address: str
    port: int
    port_name: str
    listener: HTTPListener


def translate(snap: Snapshot, options: TranslateOptions | None = None) -> TranslateResult:
    """Translate a snapshot; deterministic, pure, and never raises on admitted input."""
    with paused_gc():  # builds a large acyclic result (mirrorgate.gcpause)
        return _translate(snap, options or TranslateOptions())


def _translate(snap: Snapshot, options: TranslateOptions) -> TranslateResult:
    statuses: dict[str, AnyStatus] = {}
    params = resolve_parameters(
        snap,
        [gc for gc in snap.gateway_classes if gc.spec.controller_name == options.controller_name],
        options.refused_configs,
        options.last_config,
    )
    ours = _process_classes(snap, params, statuses)
    class_names = {gc.metadata.name for gc in snap.gateway_classes}
    gateways = tuple(
        g
        for g in snap.gateways
        if g.spec.gateway_class_name in ours
        or (options.missing_class_is_ours and g.spec.gateway_class_name not in class_names)
    )
    ix = Index(snap)
    ix.policies = resolve_policies(snap, ix.config_maps)
    infos = process_gateways(gateways, options.bind, ix)
    meshes = _mesh_listeners(ix, options.bind, parents_only=options.mesh_parents_on_bind)
    parents = _Parents(infos, meshes)
    attached: dict[str, list[_Entry]] = defaultdict(list)
    for route in snap.http_routes:
        status = _process_route(ix, route, parents, options, attached)
        if status.parents:
            statuses[str(route.key)] = status
    for info in infos:
        statuses[str(info.gateway.key)] = _gateway_status(info, attached)
    users = service_users(snap.http_routes, set(parents.gateways))
    statuses.update(policy_statuses(ix.policies, users, options.controller_name))
    statuses.update(mirror_policy_statuses(ix))
    table = _build_table(infos, meshes, attached)
    table = msgspec.structs.replace(table, trust=ix.policies.trust())
    return TranslateResult(table=table, statuses=statuses, parameters=params)


def _process_classes(snap: Snapshot, params: Parameters, statuses: dict[str, AnyStatus]) -> set[str]:
    """Our classes' Accepted conditions; their names: every class of ours is served, an
    InvalidParameters one too (``translate/params.py`` rule 2)."""
    ours = set()
    for gc in snap.gateway_classes:
        verdict = params.verdicts.get(gc.metadata.name)
        if verdict is None:
            continue
        ours.add(gc.metadata.name)
        if verdict.accepted:
            c = cond(CondType.ACCEPTED, True, Reason.ACCEPTED, verdict.message, gc.metadata.generation)
        else:
            c = cond(CondType.ACCEPTED, False, Reason.INVALID_PARAMETERS, verdict.message, gc.metadata.generation)
        statuses[str(gc.key)] = GatewayClassStatus(conditions=(c,))
    return ours


def _process_route(
    ix: Index,
    route: HTTPRoute,
    known: "_Parents",
    options: TranslateOptions,
    attached: dict[str, list[_Entry]],
) -> RouteStatus:
    rules = [build_rule(ix, route, i, r) for i, r in enumerate(route.spec.rules)]
    parents = []
    for ref in route.spec.parent_refs:
        result = _resolve_parent(ix, route, ref, known)
        if result is None:
            continue
        conditions = _route_conditions(route, rules, result)
        if conditions[0].status == "True":
            for att in result.attachments:
                attached[att.listener].extend(
                    (route, i, r.action, att.hostnames) for i, r in enumerate(rules) if r.action is not None
                )
        parents.append(
            RouteParentStatus(parent_ref=_echo_ref(ref), controller_name=options.controller_name, conditions=conditions)
        )
    return RouteStatus(parents=tuple(parents))


class _Parents:
    """The Gateways of ours and the mesh Service ports, by (namespace, name), in input order."""

    def __init__(self, infos: tuple[GatewayInfo, ...], meshes: tuple[_Mesh, ...]) -> None:
        self.gateways: dict[tuple[str, str], GatewayInfo] = {}
        for info in infos:
            self.gateways.setdefault((info.gateway.metadata.namespace, info.gateway.metadata.name), info)
        self.services: dict[tuple[str, str], list[_Mesh]] = defaultdict(list)
        for m in meshes:
            self.services[(m.service.metadata.namespace, m.service.metadata.name)].append(m)


def _resolve_parent(ix: Index, route: HTTPRoute, ref: ParentReference, known: _Parents) -> ParentResult | None:
    ns = ref.namespace or route.metadata.namespace
    if (ref.group, ref.kind) == ("gateway.networking.k8s.io", "Gateway"):
        gw = known.gateways.get((ns, ref.name))
        return attach_to_gateway(ix, route, ref, gw) if gw is not None else None
    if (ref.group, ref.kind) == ("", "Service"):
        ports = known.services.get((ns, ref.name), [])
        if not ports:
            return None
        chosen = [
            m
            for m in ports
            if (ref.section_name is None or m.port_name == ref.section_name)
            and (ref.port is None or m.port == ref.port)
        ]
        if not chosen:
            return ParentResult(
                ref=ref, refusal=(Reason.NO_MATCHING_PARENT, f"Service {ns}/{ref.name} has no matching port")
            )
        return ParentResult(ref=ref, attachments=tuple(_mesh_attachment(m) for m in chosen))
    return None


def _mesh_attachment(m: _Mesh) -> Attachment:
    """GAMMA: a route on a Service parent serves every Host (route hostnames do not apply)."""
    return Attachment(listener=m.listener.name, hostnames=("",))


def _route_conditions(route: HTTPRoute, rules: list[RuleResult], parent: ParentResult) -> tuple[Condition, ...]:
    gen = route.metadata.generation
    problems = [r.problem for r in rules if r.problem is not None]
    valid = [r for r in rules if r.action is not None]
    if parent.refusal is not None:
        accepted = cond(CondType.ACCEPTED, False, parent.refusal[0], parent.refusal[1], gen)
    elif not valid and problems:
        accepted = cond(CondType.ACCEPTED, False, problems[0].reason, "; ".join(p.message for p in problems), gen)
    else:
        accepted = cond(CondType.ACCEPTED, True, Reason.ACCEPTED, "Route is accepted", gen)
    unresolved = [u for r in rules for u in r.unresolved]
    resolved = cond(
        CondType.RESOLVED_REFS,
        not unresolved,
        unresolved[0].reason if unresolved else Reason.RESOLVED_REFS,
        "; ".join(u.message for u in unresolved) if unresolved else "All references are resolved",
        gen,
    )
    out = [accepted, resolved]
    if accepted.status == "True" and problems:
        dropped = [f"rule {i}: {r.problem.message}" for i, r in enumerate(rules) if r.problem is not None]
        out.append(
            cond(
                CondType.PARTIALLY_INVALID,
                True,
                Reason.UNSUPPORTED_VALUE,
                "Dropped Rule(s): " + "; ".join(dropped),
                gen,
            )
        )
    return tuple(out)


def _echo_ref(ref: ParentReference) -> ParentRef:
    return ParentRef(
        group=ref.group,
        kind=ref.kind,
        name=ref.name,
        namespace=ref.namespace,
        section_name=ref.section_name,
        port=ref.port,
    )


def _gateway_status(info: GatewayInfo, attached: dict[str, list[_Entry]]) -> GatewayStatus:
    gen = info.gateway.metadata.generation
    listeners = tuple(
        ListenerStatus(
            name=li.spec.name,
            supported_kinds=li.supported_kinds,
            attached_routes=len({r.key for r, _, _, _ in attached.get(li.name, [])}),
            conditions=listener_conditions(li),
        )
        for li in info.listeners
    )
    served = [li for li in info.listeners if li.served]
    if info.address is None:
        conds = (
            cond(CondType.ACCEPTED, False, Reason.UNSUPPORTED_ADDRESS, info.address_problem, gen),
            cond(CondType.PROGRAMMED, False, Reason.ADDRESS_NOT_USABLE, info.address_problem, gen),
        )
        return GatewayStatus(conditions=conds, listeners=listeners)
    all_ok = len(served) == len(info.listeners)
    accepted = cond(
        CondType.ACCEPTED,
        bool(served),
        Reason.ACCEPTED if all_ok else Reason.LISTENERS_NOT_VALID,
        "Gateway is accepted" if all_ok else f"{len(info.listeners) - len(served)} listener(s) not valid",
        gen,
    )
    programmed = cond(
        CondType.PROGRAMMED,
        bool(served),
        Reason.PROGRAMMED if served else Reason.INVALID,
        f"Serving {len(served)} listener(s) on {info.address}" if served else "No listener can be served",
        gen,
    )
    address = GatewayStatusAddress(type="IPAddress", value=info.address)
    return GatewayStatus(addresses=(address,), conditions=(accepted, programmed), listeners=listeners)


def _mesh_listeners(ix: Index, bind: str, *, parents_only: bool = False) -> tuple[_Mesh, ...]:
    """Services as virtual addresses (a Service as an HTTPRoute parentRef, GEP-1426 mesh
    routing): clusterIP:port for each port, or ``bind``:port when the Service has no clusterIP
    and some route names it as a parent. Requests no route matches go to the Service's own
    endpoints, as kube-proxy would send them."""
    parents = {
        (ref.namespace or r.metadata.namespace, ref.name)
        for r in ix.snap.http_routes
        for ref in r.spec.parent_refs
        if (ref.group, ref.kind) == ("", "Service")
    }
    out = []
    for svc in ix.snap.services:
        ip = None if parents_only else _cluster_ip(svc)
        if ip is None and (svc.metadata.namespace, svc.metadata.name) not in parents:
            continue
        for sp in svc.spec.ports:
            name = f"service/{svc.metadata.namespace}/{svc.metadata.name}:{sp.port}"
            backend = Backend(name=name, weight=1, endpoints=ready_endpoints(ix, svc, sp))
            listener = HTTPListener(
                name=name, port=sp.port, default_action=Action(rule=f"{name}/default", backends=(backend,))
            )
            out.append(_Mesh(service=svc, address=ip or bind, port=sp.port, port_name=sp.name or "", listener=listener))
    return tuple(out)


def _cluster_ip(svc: Service) -> str | None:
    ip = svc.spec.cluster_ip
    if not ip or ip == "None":
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


def _build_table(
    infos: tuple[GatewayInfo, ...], meshes: tuple[_Mesh, ...], attached: dict[str, list[_Entry]]
) -> RoutingTable:
    servers: dict[tuple[str, int], list[HTTPListener]] = defaultdict(list)
    certificates: list[Certificate] = []
    for info in infos:
        for li in info.listeners:
            if li.served:
                certificates.extend(li.certificates)
                tls = ListenerTLS(certificates=tuple(sorted({c.digest for c in li.certificates})))
                listener = HTTPListener(
                    name=li.name,
                    hostname=li.hostname,
                    port=li.spec.port,
                    virtual_hosts=_virtual_hosts(attached.get(li.name, [])),
                    tls=tls if li.spec.protocol == "HTTPS" else None,
                )
                servers[(li.address, li.spec.port)].append(listener)
    for m in meshes:
        listener = msgspec.structs.replace(m.listener, virtual_hosts=_virtual_hosts(attached.get(m.listener.name, [])))
        servers[(m.address, m.port)].append(listener)
    return RoutingTable(
        servers=tuple(
            Server(
                address=addr,
                port=port,
                listeners=tuple(sorted(ls, key=lambda x: (hostnames.specificity(x.hostname), x.name))),
            )
            for (addr, port), ls in sorted(servers.items())
        ),
        certificates=unique(certificates),
    )


def _virtual_hosts(entries: list[_Entry]) -> tuple[VirtualHost, ...]:
    by_host: dict[str, list[tuple[PrecedenceKey, Route]]] = defaultdict(list)
    for route, rule_index, action, hosts in entries:
        base = f"httproute/{route.metadata.namespace}/{route.metadata.name}/rule/{rule_index}"
        for j, m in enumerate(route.spec.rules[rule_index].matches):
            ir = Route(name=f"{base}/match/{j}", match=build_match(m), action=action)
            for h in hosts:
                by_host[h].append((precedence_key(route, rule_index, j, m), ir))
    return tuple(
        VirtualHost(hostname=h, routes=tuple(r for _, r in sorted(items, key=lambda x: x[0])))
        for h, items in sorted(by_host.items(), key=lambda kv: (*hostnames.specificity(kv[0]), kv[0]))
    )


def build_match(m: HTTPRouteMatch) -> Match:
    """IR match: prefix without trailing ``/``, header names lower-cased, first entry per name wins."""
    path = m.path.value
    if m.path.type == "PathPrefix":
        path = path.rstrip("/")
    seen_h: set[str] = set()
    headers = []
    for h in m.headers:
        if h.name.lower() not in seen_h:
            seen_h.add(h.name.lower())
            headers.append(HeaderMatch(name=h.name.lower(), value=h.value, type=h.type))
    seen_q: set[str] = set()
    query = []
    for q in m.query_params:
        if q.name not in seen_q:
            seen_q.add(q.name)
            query.append(QueryMatch(name=q.name, value=q.value, type=q.type))
    return Match(
        path_type=PathType(m.path.type), path=path, headers=tuple(headers), query_params=tuple(query), method=m.method
    )
