"""Gateway and listener processing: which listeners are served, where, and their conditions.

A listener is served when its protocol is HTTP, or HTTPS with ``tls.mode: Terminate`` and at
least one certificateRef that resolves (``certificates``), its allowedRoutes kinds leave HTTPRoute
in, and it does not conflict. Conflicts: two listeners of one Gateway on one port with the same
hostname (HostnameConflict) or different protocols (ProtocolConflict); across Gateways sharing one
socket (address, port) the older Gateway (creationTimestamp, then namespace/name) keeps the
hostname, and the protocol (HTTP and HTTPS never share a socket: ProtocolConflict).
``tls.mode: Passthrough`` on HTTPS never reaches here: admission refuses it with the CRD's rule.
"""

import ipaddress

import msgspec

from mirrorgate.ir.table import Certificate
from mirrorgate.model.gateway import Gateway, Listener
from mirrorgate.translate.certificates import listener_certificates
from mirrorgate.translate.index import Index
from mirrorgate.translate.status import Condition, CondType, Reason, RouteGroupKind, cond

ROUTE_GROUP = "gateway.networking.k8s.io"
HTTPROUTE = RouteGroupKind(group=ROUTE_GROUP, kind="HTTPRoute")


class ListenerInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A processed listener: where it is served and whether it may carry routes."""

    gateway: Gateway
    spec: Listener
    name: str  # gateway/<ns>/<name>/listener/<section>
    address: str
    supported_kinds: tuple[RouteGroupKind, ...]
    problem: tuple[CondType, Reason, str] | None  # why it is not served; None = served
    bad_kinds: str = ""  # allowedRoutes kinds left out of supportedKinds (ResolvedRefs=False)
    certificates: tuple[Certificate, ...] = ()  # HTTPS: the certificateRefs that resolved
    tls_fault: tuple[Reason, str] | None = None  # HTTPS: refs that did not (ResolvedRefs=False)

    @property
    def served(self) -> bool:
        return self.problem is None

    @property
    def hostname(self) -> str:
        return self.spec.hostname or ""


class GatewayInfo(msgspec.Struct, frozen=True, kw_only=True):
    gateway: Gateway
    address: str | None  # None: spec.addresses unusable
    address_problem: str
    listeners: tuple[ListenerInfo, ...]


class _Sockets:
    """What older Gateways already took: (address, port, hostname) -> listener, (address, port) -> protocol."""

    def __init__(self, ix: Index) -> None:
        self.ix = ix
        self.hosts: dict[tuple[str, int, str], str] = {}
        self.protocols: dict[tuple[str, int], tuple[str, str]] = {}

    def conflict(self, name: str, ln: Listener, address: str) -> tuple[CondType, Reason, str] | None:
        protocol, owner = self.protocols.setdefault((address, ln.port), (ln.protocol, name))
        if protocol != ln.protocol:
            return (
                CondType.CONFLICTED,
                Reason.PROTOCOL_CONFLICT,
                f"{address}:{ln.port} already serves {protocol} for {owner}",
            )
        owner = self.hosts.setdefault((address, ln.port, ln.hostname or ""), name)
        if owner != name:
            return (
                CondType.CONFLICTED,
                Reason.HOSTNAME_CONFLICT,
                f"Hostname {ln.hostname or '(any)'!r} on {address}:{ln.port} is already served by {owner}",
            )
        return None


def process_gateways(gateways: tuple[Gateway, ...], bind: str, ix: Index) -> tuple[GatewayInfo, ...]:
    """Process every Gateway of ours; older Gateways first, so they win socket-level conflicts."""
    infos: list[GatewayInfo] = []
    taken = _Sockets(ix)
    for gw in sorted(gateways, key=lambda g: (g.metadata.creation_timestamp, g.metadata.namespace, g.metadata.name)):
        address, problem = _gateway_address(gw, bind)
        listeners = tuple(_process_listener(gw, ln, address or bind, taken) for ln in gw.spec.listeners)
        infos.append(GatewayInfo(gateway=gw, address=address, address_problem=problem, listeners=listeners))
    return tuple(sorted(infos, key=lambda i: (i.gateway.metadata.namespace, i.gateway.metadata.name)))


def _gateway_address(gw: Gateway, bind: str) -> tuple[str | None, str]:
    if not gw.spec.addresses:
        return bind, ""
    first = gw.spec.addresses[0]
    if first.type != "IPAddress":
        return None, f"Address type {first.type!r} is not supported; only IPAddress is"
    try:
        return str(ipaddress.ip_address(first.value)), ""
    except ValueError:
        return None, f"Address {first.value!r} is not a valid IP address"


def _process_listener(gw: Gateway, ln: Listener, address: str, taken: _Sockets) -> ListenerInfo:
    name = f"gateway/{gw.metadata.namespace}/{gw.metadata.name}/listener/{ln.name}"
    kinds, bad_kinds = _supported_kinds(ln)
    problem = _listener_problem(gw, ln, bad_kinds, kinds)
    certificates: tuple[Certificate, ...] = ()
    tls_fault = None
    if problem is None and ln.protocol == "HTTPS":
        resolved = listener_certificates(taken.ix, gw, ln)
        certificates = resolved.certificates
        tls_fault = (resolved.reason, resolved.message) if resolved.faults else None
        if not certificates:
            problem = (CondType.RESOLVED_REFS, resolved.reason, resolved.message)
    if problem is None:
        problem = taken.conflict(name, ln, address)
    bad = f"Route kinds not supported: {', '.join(bad_kinds)}" if bad_kinds else ""
    return ListenerInfo(
        gateway=gw,
        spec=ln,
        name=name,
        address=address,
        supported_kinds=kinds,
        problem=problem,
        bad_kinds=bad,
        certificates=certificates,
        tls_fault=tls_fault,
    )


def _supported_kinds(ln: Listener) -> tuple[tuple[RouteGroupKind, ...], list[str]]:
    if ln.protocol not in ("HTTP", "HTTPS"):
        return (), []
    if not ln.allowed_routes.kinds:
        return (HTTPROUTE,), []
    good = [k for k in ln.allowed_routes.kinds if (k.group, k.kind) == (ROUTE_GROUP, "HTTPRoute")]
    bad = [f"{k.group}/{k.kind}" for k in ln.allowed_routes.kinds if (k.group, k.kind) != (ROUTE_GROUP, "HTTPRoute")]
    return ((HTTPROUTE,) if good else ()), bad


def _listener_problem(
    gw: Gateway, ln: Listener, bad_kinds: list[str], kinds: tuple[RouteGroupKind, ...]
) -> tuple[CondType, Reason, str] | None:
    if ln.protocol not in ("HTTP", "HTTPS"):
        return (
            CondType.ACCEPTED,
            Reason.UNSUPPORTED_PROTOCOL,
            f"Protocol {ln.protocol!r} is not supported; mirrorgate serves HTTP and HTTPS listeners",
        )
    for other in gw.spec.listeners:
        if other is ln or other.port != ln.port:
            continue
        if other.protocol != ln.protocol:
            return (
                CondType.CONFLICTED,
                Reason.PROTOCOL_CONFLICT,
                f"Listener {other.name!r} uses protocol {other.protocol} on the same port {ln.port}",
            )
        if (other.hostname or "") == (ln.hostname or ""):
            return (
                CondType.CONFLICTED,
                Reason.HOSTNAME_CONFLICT,
                f"Listener {other.name!r} uses the same hostname on port {ln.port}",
            )
    if not kinds:
        return (
            CondType.RESOLVED_REFS,
            Reason.INVALID_ROUTE_KINDS,
            f"Route kinds not supported: {', '.join(bad_kinds)}; no supported kind left",
        )
    return None


def listener_conditions(info: ListenerInfo) -> tuple[Condition, ...]:
    """Accepted, ResolvedRefs, Programmed and Conflicted (negative polarity) for one listener."""
    gen = info.gateway.metadata.generation
    kind, reason, msg = info.problem or (None, Reason.ACCEPTED, "")

    def positive(ctype: CondType, ok_reason: Reason, ok_message: str) -> Condition:
        hit = kind == ctype
        return cond(ctype, not hit, reason if hit else ok_reason, msg if hit else ok_message, gen)

    conflicted = kind == CondType.CONFLICTED
    if info.tls_fault is not None and kind != CondType.RESOLVED_REFS:
        resolved = cond(CondType.RESOLVED_REFS, False, info.tls_fault[0], info.tls_fault[1], gen)
    elif info.bad_kinds and kind != CondType.RESOLVED_REFS:
        resolved = cond(CondType.RESOLVED_REFS, False, Reason.INVALID_ROUTE_KINDS, info.bad_kinds, gen)
    else:
        resolved = positive(CondType.RESOLVED_REFS, Reason.RESOLVED_REFS, "All references are resolved")
    return (
        positive(CondType.ACCEPTED, Reason.ACCEPTED, "Listener is accepted"),
        resolved,
        cond(
            CondType.PROGRAMMED,
            info.served,
            Reason.PROGRAMMED if info.served else Reason.INVALID,
            f"Serving on {info.address}:{info.spec.port}" if info.served else msg,
            gen,
        ),
        cond(
            CondType.CONFLICTED,
            conflicted,
            reason if conflicted else Reason.NO_CONFLICTS,
            msg if conflicted else "No conflicts",
            gen,
        ),
    )
