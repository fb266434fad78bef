"""Which documents the file provider reads, which it skips, and which it refuses as near misses.

Rules, applied in this order to a document's ``apiVersion`` (group/version) and ``kind``:
1. A (group, kind) mirrorgate models is read (its version is checked when it is converted).
2. Istio's networking API (``networking.istio.io``) is not loaded: the document is skipped with a
   warning naming the Gateway API equivalent (a VirtualService's mirror is an HTTPRoute
   RequestMirror filter; in a mesh the HTTPRoute's parent is the Service).
3. A kind mirrorgate models, written in another case or within a small edit ("HTTPRout",
   "httproute", "Servcie"), is an error: "did you mean HTTPRoute?". Kinds of the common Kubernetes,
   Gateway API, Istio and Envoy Gateway APIs are never taken for near misses.
4. A kind mirrorgate models under the core group (``apiVersion: v1``) or under another group
   mirrorgate reads is an error naming the apiVersion it is served under.
5. A group within a small edit of a group mirrorgate reads ("gateway.networking.k8s.oi"), or
   naming mirrorgate, is an error: "did you mean gateway.networking.k8s.io?".
6. A real Gateway API kind mirrorgate does not serve (GRPCRoute, TLSRoute, ...) is skipped with a
   warning: manifests written for another implementation still load, and the user sees what is
   not served. Any other kind of ``gateway.networking.k8s.io`` or ``mirrorgate.dev`` is an error
   listing the kinds and versions served there (an apiserver with the standard CRDs would not know
   it either; skipping it would silently drop configuration).
7. Anything else (Deployment, ServiceAccount, a CRD of another project...) is skipped with a note.
"""

import difflib
from typing import Literal

import msgspec

from mirrorgate.model.snapshot import KINDS, VERSIONS

GATEWAY_GROUP = "gateway.networking.k8s.io"
OWN_GROUP = "mirrorgate.dev"
ISTIO_GROUP = "networking.istio.io"
# Groups whose every kind must be one mirrorgate serves.
SERVED_GROUPS = (GATEWAY_GROUP, OWN_GROUP)
# The groups mirrorgate reads kinds from, for near-miss suggestions.
READ_GROUPS = tuple(sorted({g for g, _ in KINDS if g} | {OWN_GROUP}))

# difflib ratios at or above which a name counts as a near miss (lower-cased comparison). Kinds
# are short, so one or two edits weigh more; groups are long, so the cutoff is higher.
KIND_CUTOFF = 0.8
GROUP_CUTOFF = 0.9

# Real kinds that are not mirrorgate's but are close to one of its kinds, or common enough that a
# false "did you mean" on them would break manifests written for a cluster.
KNOWN_KINDS = frozenset(
    {
        # Kubernetes
        *("APIService", "Binding", "CSIDriver", "CSINode", "CertificateSigningRequest", "ClusterRole"),
        *("ClusterRoleBinding", "ComponentStatus", "CronJob", "CustomResourceDefinition"),
        *("DaemonSet", "Deployment", "Event", "FlowSchema", "HorizontalPodAutoscaler", "IPAddress", "Ingress"),
        *("IngressClass", "Job", "Lease", "LimitRange", "MutatingWebhookConfiguration", "NetworkPolicy", "Node"),
        *("PersistentVolume", "PersistentVolumeClaim", "Pod", "PodDisruptionBudget", "PodTemplate"),
        *("PriorityClass", "PriorityLevelConfiguration", "ReplicaSet", "ReplicationController", "ResourceQuota"),
        *("Role", "RoleBinding", "RuntimeClass", "ServiceAccount", "ServiceCIDR", "StatefulSet"),
        *("StorageClass", "ValidatingWebhookConfiguration", "VolumeAttachment", "ServiceImport", "ServiceExport"),
        # Gateway API kinds mirrorgate does not serve (standard and experimental channels)
        *sorted(GATEWAY_UNSERVED := frozenset(("GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"))),
        *("ListenerSet", "XListenerSet", "XBackendTrafficPolicy", "XMesh", "BackendLBPolicy"),
        # Istio, Envoy Gateway, Prometheus operator, cert-manager
        *("VirtualService", "DestinationRule", "ServiceEntry", "Sidecar", "WorkloadEntry", "WorkloadGroup"),
        *("EnvoyFilter", "ProxyConfig", "AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication"),
        *("Telemetry", "WasmPlugin", "EnvoyProxy", "BackendTrafficPolicy", "ClientTrafficPolicy"),
        *("SecurityPolicy", "EnvoyPatchPolicy", "EnvoyExtensionPolicy", "HTTPRouteFilter", "Backend"),
        *("ServiceMonitor", "PodMonitor", "Certificate", "Issuer", "ClusterIssuer"),
    }
)
# Real groups within a small edit of a group mirrorgate reads.
KNOWN_GROUPS = frozenset({"gateway.networking.x-k8s.io", "networking.k8s.io", "policy.networking.k8s.io"})

# The Gateway API equivalent of each Istio networking kind, for the skip warning.
ISTIO_EQUIVALENTS = {
    "VirtualService": "an HTTPRoute (mirroring: a RequestMirror filter; in a mesh the HTTPRoute's parentRef "
    "is the Service, as in examples/istio-mesh-mirror.yaml)",
    "Gateway": f"a {GATEWAY_GROUP}/v1 Gateway with a GatewayClass",
    "DestinationRule": "one Service per subset, referenced by HTTPRoute backendRefs with weights",
}
ISTIO_DEFAULT = "an HTTPRoute (see examples/istio-mesh-mirror.yaml for mirroring in a mesh)"


class Verdict(msgspec.Struct, frozen=True):
    """What to do with a document: ``read``, ``skip`` (a note), ``warn`` (skip, visibly) or ``error``.

    For ``error``, ``path`` is the field at fault (``kind`` or ``apiVersion``)."""

    action: Literal["read", "skip", "warn", "error"]
    message: str = ""
    path: str = ""


READ = Verdict("read")


def classify(api_version: str, kind: str) -> Verdict:
    """The verdict for a document with this ``apiVersion`` and ``kind`` (rules 1-7)."""
    group = api_version.rpartition("/")[0]
    if (group, kind) in KINDS:
        return READ
    if group == ISTIO_GROUP:
        equivalent = ISTIO_EQUIVALENTS.get(kind, ISTIO_DEFAULT)
        return Verdict("warn", f"Istio networking APIs are not loaded; the Gateway API equivalent is {equivalent}")
    nomatch = f"no matches for kind {_quote(kind)} in version {_quote(api_version)}"
    if hint := _kind_hint(group, kind):
        return Verdict("error", f"{nomatch}: {hint}", "kind")
    if near := _near_group(group):
        return Verdict("error", f"{nomatch}: did you mean {near}?", "apiVersion")
    if group == GATEWAY_GROUP and kind in GATEWAY_UNSERVED:
        return Verdict("warn", f"a Gateway API kind mirrorgate does not serve ({served_in(group)})")
    if group in SERVED_GROUPS:
        return Verdict("error", f"{nomatch}: {served_in(group)}", "kind")
    return Verdict("skip", "not a kind mirrorgate uses")


def served_in(group: str) -> str:
    """ "mirrorgate serves ..." for one group: its kinds with their versions."""
    kinds = [f"{k} ({', '.join(VERSIONS[(g, k)])})" for g, k in KINDS if g == group]
    return f"mirrorgate serves {', '.join(kinds)} in {group}" if kinds else f"mirrorgate serves no kind in {group}"


def _kind_hint(group: str, kind: str) -> str:
    """ "did you mean K?" for a near miss of a kind (rule 3), or the right apiVersion (rule 4)."""
    if kind in KNOWN_KINDS:
        return ""
    exact = [(g, k) for g, k in KINDS if k == kind]
    if exact:
        if group and group not in READ_GROUPS:
            return ""  # a kind of the same name in another project's API (a Knative Service...)
        return "; ".join(f"{k} is served as {_api_versions(g, k)}" for g, k in exact)
    lowered = {k.lower(): k for _, k in KINDS}
    close = difflib.get_close_matches(kind.lower(), lowered, n=1, cutoff=KIND_CUTOFF)
    return f"did you mean {lowered[close[0]]}?" if close else ""


def _near_group(group: str) -> str:
    if not group or group in KNOWN_GROUPS or group in READ_GROUPS:
        return ""
    lowered = group.lower()
    if any(label == "mirrorgate" for label in lowered.split(".")):
        return OWN_GROUP
    close = difflib.get_close_matches(lowered, READ_GROUPS, n=1, cutoff=GROUP_CUTOFF)
    return close[0] if close else ""


def _api_versions(group: str, kind: str) -> str:
    return " or ".join(f"{group}/{v}" if group else v for v in VERSIONS[(group, kind)])


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
