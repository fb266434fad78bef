"""Lookups over one Snapshot, built once per ``translate()`` call.

Rules:
1. Each lookup returns what a scan of the snapshot's sorted tuples would: the same objects, in
   the same order (keys are unique in a Snapshot, so a dict by key finds the one object a scan
   would find first).
2. An Index belongs to one ``translate()`` call and is dropped with it: translation stays pure,
   and nothing is kept between calls.
3. The ready endpoints of one Service port are computed once per call (many routes send to the
   same Service), and so is the check of one Secret's certificate and key (many listeners name
   the same wildcard certificate).
"""

from collections import defaultdict

from mirrorgate.ir.table import Certificate, UpstreamAddress
from mirrorgate.model.core import Endpoints, EndpointSlice, Namespace, ReferenceGrant, Service, ServicePort
from mirrorgate.model.mirrorpolicy import MirrorPolicy
from mirrorgate.model.snapshot import Snapshot
from mirrorgate.model.tls import ConfigMap, Secret
from mirrorgate.translate.backendtls import Policies
from mirrorgate.translate.status import Reason

SERVICE_NAME_LABEL = "kubernetes.io/service-name"

_NsName = tuple[str, str]


class Index:
    """A snapshot and its objects by (namespace, name)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.services: dict[_NsName, Service] = {(s.metadata.namespace, s.metadata.name): s for s in snap.services}
        self.namespaces: dict[str, Namespace] = {n.metadata.name: n for n in snap.namespaces}
        self.slices: dict[_NsName, list[EndpointSlice]] = defaultdict(list)
        for sl in snap.endpoint_slices:
            owner = sl.metadata.labels.get(SERVICE_NAME_LABEL)
            if owner is not None:
                self.slices[(sl.metadata.namespace, owner)].append(sl)
        self.endpoints: dict[_NsName, list[Endpoints]] = defaultdict(list)
        for ep in snap.endpoints:
            self.endpoints[(ep.metadata.namespace, ep.metadata.name)].append(ep)
        self.grants: dict[str, list[ReferenceGrant]] = defaultdict(list)
        for grant in snap.reference_grants:
            self.grants[grant.metadata.namespace].append(grant)
        self.secrets: dict[_NsName, Secret] = {(s.metadata.namespace, s.metadata.name): s for s in snap.secrets}
        self.config_maps: dict[_NsName, ConfigMap] = {
            (c.metadata.namespace, c.metadata.name): c for c in snap.config_maps
        }
        self.mirror_policies: dict[_NsName, MirrorPolicy] = {
            (p.metadata.namespace, p.metadata.name): p for p in snap.mirror_policies
        }
        self.policies = Policies()  # the BackendTLSPolicies, set by translate() once resolved
        self.pairs: dict[_NsName, Certificate | tuple[Reason, str]] = {}
        self.ready: dict[tuple[_NsName, ServicePort], tuple[UpstreamAddress, ...]] = {}

    def service(self, namespace: str, name: str) -> Service | None:
        return self.services.get((namespace, name))
