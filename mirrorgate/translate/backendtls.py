"""BackendTLSPolicy (gateway.networking.k8s.io/v1, GEP-1897) -> ``BackendTLS`` per Service port, trust bundles, status.

Rules:
1. A policy applies to the core Services its ``targetRefs`` name in its own namespace: every port,
   or the port whose name is ``sectionName``. Other target kinds are ignored.
2. Two policies on the same target and sectionName: the older (creationTimestamp, then name)
   wins; the other is ``Accepted=False, Conflicted`` wherever it lost every target. For one port,
   a policy naming it by sectionName takes precedence over one naming the whole Service.
3. The CA: ``caCertificateRefs`` must be core ConfigMaps (else ``ResolvedRefs=False, InvalidKind``)
   that exist and hold a ``ca.crt`` OpenSSL loads (else ``InvalidCACertificateRef``, the message
   naming the ConfigMap and the fault). The valid ones form one trust bundle, named by digest.
   With none valid the policy is ``Accepted=False, NoValidCACertificate`` and every backend it
   targets fails (500; a mirror to it is dropped), as the spec requires connections using an
   invalid CA to fail. ``wellKnownCACertificates: System`` is the system store (``ca_digest`` None).
4. Status: one ``PolicyAncestorStatus`` per Gateway of ours with a route that sends to (or mirrors
   to) a targeted Service; a policy no such route uses gets no status from us.
"""

import hashlib
import re
import ssl
from collections import defaultdict

import msgspec

from mirrorgate.ir.table import BackendTLS, SubjectAltName, TrustBundle
from mirrorgate.model.httproute import HTTPRoute
from mirrorgate.model.snapshot import Snapshot
from mirrorgate.model.tls import BackendTLSPolicy, ConfigMap, LocalObjectReference
from mirrorgate.tls.client import InvalidCaBundle, load_ca
from mirrorgate.translate.status import Condition, CondType, ParentRef, PolicyAncestorStatus, PolicyStatus, Reason, cond

GATEWAY_GROUP = "gateway.networking.k8s.io"
OPENSSL_SOURCE = re.compile(r" \(_ssl\.c:\d+\)")  # the C source line differs between Python builds
_Target = tuple[str, str, str]  # (namespace, service, sectionName or "")


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    """The policy that governs one Service port: its settings, or ``tls`` None when it has no valid CA."""

    policy: str
    tls: BackendTLS | None


class _Resolved(msgspec.Struct, frozen=True, kw_only=True):
    policy: BackendTLSPolicy
    tls: BackendTLS | None
    bundle: TrustBundle | None
    faults: tuple[tuple[Reason, str], ...]


class Policies(msgspec.Struct, frozen=True, kw_only=True):
    """Every policy resolved: the winner per target, the losers, the trust bundles in use."""

    resolved: tuple[_Resolved, ...] = ()
    winners: dict[_Target, _Resolved] = msgspec.field(default_factory=dict)
    losers: frozenset[str] = frozenset()  # policies that lost every target

    def applied(self, namespace: str, service: str, port_name: str) -> Applied | None:
        """The policy for one Service port (rule 2: by sectionName first, then the whole Service)."""
        found = self.winners.get((namespace, service, port_name)) if port_name else None
        found = found or self.winners.get((namespace, service, ""))
        if found is None:
            return None
        return Applied(policy=_name(found.policy), tls=found.tls)

    def trust(self) -> tuple[TrustBundle, ...]:
        used = {r.bundle.digest: r.bundle for r in self.winners.values() if r.bundle is not None}
        return tuple(used[d] for d in sorted(used))


_ConfigMaps = dict[tuple[str, str], ConfigMap]


def resolve_policies(snap: Snapshot, config_maps: _ConfigMaps) -> Policies:
    """Rules 1 to 3 over every BackendTLSPolicy of the snapshot; ``config_maps`` by (namespace, name)."""
    ordered = sorted(
        snap.backend_tls_policies,
        key=lambda p: (p.metadata.creation_timestamp, p.metadata.name, p.metadata.namespace),
    )
    resolved = tuple(_resolve(config_maps, p) for p in ordered)
    winners: dict[_Target, _Resolved] = {}
    won: set[str] = set()
    for r in resolved:
        for target in _targets(r.policy):
            if winners.setdefault(target, r) is r:
                won.add(_name(r.policy))
    losers = frozenset(_name(r.policy) for r in resolved if _name(r.policy) not in won and _targets(r.policy))
    return Policies(resolved=resolved, winners=winners, losers=losers)


def _name(policy: BackendTLSPolicy) -> str:
    return f"backendtlspolicy/{policy.metadata.namespace}/{policy.metadata.name}"


def _targets(policy: BackendTLSPolicy) -> list[_Target]:
    ns = policy.metadata.namespace
    return [
        (ns, ref.name, ref.section_name or "")
        for ref in policy.spec.target_refs
        if (ref.group, ref.kind) == ("", "Service")
    ]


def _resolve(config_maps: _ConfigMaps, policy: BackendTLSPolicy) -> _Resolved:
    v = policy.spec.validation
    sans = tuple(
        SubjectAltName(type=s.type, value=(s.hostname if s.type == "Hostname" else s.uri) or "")
        for s in v.subject_alt_names
    )
    if not v.ca_certificate_refs:  # wellKnownCACertificates: System (admission allows nothing else)
        tls = BackendTLS(policy=_name(policy), hostname=v.hostname, subject_alt_names=sans)
        return _Resolved(policy=policy, tls=tls, bundle=None, faults=())
    pems: list[tuple[str, str]] = []
    faults: list[tuple[Reason, str]] = []
    for ref in v.ca_certificate_refs:
        source, pem, fault = _ca(config_maps, policy.metadata.namespace, ref)
        if fault is not None:
            faults.append(fault)
        else:
            pems.append((source, pem))
    if not pems:
        return _Resolved(policy=policy, tls=None, bundle=None, faults=tuple(faults))
    pem = "\n".join(p for _, p in pems)
    digest = "sha256:" + hashlib.sha256(pem.encode()).hexdigest()
    bundle = TrustBundle(digest=digest, source=",".join(s for s, _ in pems), ca_pem=pem)
    tls = BackendTLS(policy=_name(policy), hostname=v.hostname, ca_digest=digest, subject_alt_names=sans)
    return _Resolved(policy=policy, tls=tls, bundle=bundle, faults=tuple(faults))


def _ca(config_maps: _ConfigMaps, ns: str, ref: LocalObjectReference) -> tuple[str, str, tuple[Reason, str] | None]:
    """One caCertificateRef: (source, PEM, None), or ("", "", (reason, message))."""
    if (ref.group, ref.kind) != ("", "ConfigMap"):
        return "", "", (Reason.INVALID_KIND, f"Unsupported caCertificateRef kind {ref.kind!r} in group {ref.group!r}")
    where = f"ConfigMap {ns}/{ref.name}"
    cm = config_maps.get((ns, ref.name))
    pem = cm.data.get("ca.crt") if cm is not None else None
    if not pem:
        fault = f"{where} not found" if cm is None else f"{where} has no ca.crt"
        return "", "", (Reason.INVALID_CA_CERTIFICATE_REF, fault)
    try:
        load_ca(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), pem)
    except InvalidCaBundle as error:
        return "", "", (Reason.INVALID_CA_CERTIFICATE_REF, f"{where}: {OPENSSL_SOURCE.sub('', str(error))}")
    return f"configmap/{ns}/{ref.name}", pem, None


def policy_statuses(
    policies: Policies, routes: dict[tuple[str, str], set[tuple[str, str]]], controller: str
) -> dict[str, PolicyStatus]:
    """Rule 4. ``routes`` maps a Service (namespace, name) to the Gateways (namespace, name) of ours
    whose routes send or mirror to it."""
    out: dict[str, PolicyStatus] = {}
    for r in policies.resolved:
        gateways = sorted({g for ns, svc, _ in _targets(r.policy) for g in routes.get((ns, svc), ())})
        if not gateways:
            continue
        conditions = _conditions(policies, r)
        out[str(r.policy.key)] = PolicyStatus(
            ancestors=tuple(
                PolicyAncestorStatus(
                    ancestor_ref=ParentRef(group=GATEWAY_GROUP, kind="Gateway", namespace=ns, name=name),
                    controller_name=controller,
                    conditions=conditions,
                )
                for ns, name in gateways
            )
        )
    return out


def _conditions(policies: Policies, r: _Resolved) -> tuple[Condition, ...]:
    gen = r.policy.metadata.generation
    if _name(r.policy) in policies.losers:
        message = "Another BackendTLSPolicy takes precedence for every target (older, or first by name)"
        accepted = cond(CondType.ACCEPTED, False, Reason.CONFLICTED, message, gen)
    elif r.tls is None:
        accepted = cond(CondType.ACCEPTED, False, Reason.NO_VALID_CA_CERTIFICATE, "No valid CA certificate", gen)
    else:
        accepted = cond(CondType.ACCEPTED, True, Reason.ACCEPTED, "Policy is accepted", gen)
    if r.faults:
        message = "; ".join(m for _, m in r.faults)
        resolved = cond(CondType.RESOLVED_REFS, False, r.faults[0][0], message, gen)
    else:
        resolved = cond(CondType.RESOLVED_REFS, True, Reason.RESOLVED_REFS, "All references are resolved", gen)
    return (accepted, resolved)


def service_users(
    routes: tuple[HTTPRoute, ...], ours: set[tuple[str, str]]
) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Service (namespace, name) -> our Gateways whose routes name it in a backendRef or a mirror."""
    out: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for route in routes:
        ns = route.metadata.namespace
        gateways = {
            (ref.namespace or ns, ref.name)
            for ref in route.spec.parent_refs
            if (ref.group, ref.kind) == (GATEWAY_GROUP, "Gateway") and (ref.namespace or ns, ref.name) in ours
        }
        if not gateways:
            continue
        for svc in _services(route):
            out[svc] |= gateways
    return out


def _services(route: HTTPRoute) -> set[tuple[str, str]]:
    ns = route.metadata.namespace
    found = set()
    for rule in route.spec.rules:
        filters = list(rule.filters)
        for ref in rule.backend_refs:
            filters.extend(ref.filters)
            if (ref.group, ref.kind) == ("", "Service"):
                found.add((ref.namespace or ns, ref.name))
        for f in filters:
            m = f.request_mirror
            if m is not None and (m.backend_ref.group, m.backend_ref.kind) == ("", "Service"):
                found.add((m.backend_ref.namespace or ns, m.backend_ref.name))
    return found
