"""Snapshot: every object the translator may read, sorted by key, frozen."""

from collections.abc import Iterable, Sequence
from typing import TypeVar

import msgspec

from mirrorgate.model.core import Endpoints, EndpointSlice, Namespace, ReferenceGrant, Service
from mirrorgate.model.gateway import Gateway, GatewayClass
from mirrorgate.model.gwconfig import GatewayConfig
from mirrorgate.model.httproute import HTTPRoute
from mirrorgate.model.meta import Resource
from mirrorgate.model.mirrorpolicy import MirrorPolicy
from mirrorgate.model.tls import BackendTLSPolicy, ConfigMap, Secret

# kind -> model class, for the kinds mirrorgate reads, keyed by (API group, kind).
KINDS: dict[tuple[str, str], type[Resource]] = {
    ("gateway.networking.k8s.io", "GatewayClass"): GatewayClass,
    ("gateway.networking.k8s.io", "Gateway"): Gateway,
    ("gateway.networking.k8s.io", "HTTPRoute"): HTTPRoute,
    ("gateway.networking.k8s.io", "ReferenceGrant"): ReferenceGrant,
    ("gateway.networking.k8s.io", "BackendTLSPolicy"): BackendTLSPolicy,
    ("", "Service"): Service,
    ("", "Endpoints"): Endpoints,
    ("", "Namespace"): Namespace,
    ("discovery.k8s.io", "EndpointSlice"): EndpointSlice,
    ("", "Secret"): Secret,
    ("", "ConfigMap"): ConfigMap,
    ("mirrorgate.dev", "MirrorPolicy"): MirrorPolicy,
    ("mirrorgate.dev", "GatewayConfig"): GatewayConfig,
}

# Served versions per group and kind (what an apiserver with the v1.6 standard CRDs and
# deploy/kubernetes/crds accepts).
VERSIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("gateway.networking.k8s.io", "GatewayClass"): ("v1", "v1beta1"),
    ("gateway.networking.k8s.io", "Gateway"): ("v1", "v1beta1"),
    ("gateway.networking.k8s.io", "HTTPRoute"): ("v1", "v1beta1"),
    ("gateway.networking.k8s.io", "ReferenceGrant"): ("v1", "v1beta1"),
    ("gateway.networking.k8s.io", "BackendTLSPolicy"): ("v1",),
    ("", "Service"): ("v1",),
    ("", "Endpoints"): ("v1",),
    ("", "Namespace"): ("v1",),
    ("discovery.k8s.io", "EndpointSlice"): ("v1",),
    ("", "Secret"): ("v1",),
    ("", "ConfigMap"): ("v1",),
    ("mirrorgate.dev", "MirrorPolicy"): ("v1alpha1",),
    ("mirrorgate.dev", "GatewayConfig"): ("v1alpha1",),
}

CLUSTER_SCOPED = frozenset({"GatewayClass", "Namespace"})


class Snapshot(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The frozen input of ``translate()``; each tuple sorted by ``ObjectKey``."""

    gateway_classes: tuple[GatewayClass, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    http_routes: tuple[HTTPRoute, ...] = ()
    reference_grants: tuple[ReferenceGrant, ...] = ()
    services: tuple[Service, ...] = ()
    endpoint_slices: tuple[EndpointSlice, ...] = ()
    endpoints: tuple[Endpoints, ...] = ()
    namespaces: tuple[Namespace, ...] = ()
    secrets: tuple[Secret, ...] = ()
    config_maps: tuple[ConfigMap, ...] = ()
    backend_tls_policies: tuple[BackendTLSPolicy, ...] = ()
    mirror_policies: tuple[MirrorPolicy, ...] = ()
    gateway_configs: tuple[GatewayConfig, ...] = ()

    @classmethod
    def of(cls, objects: Iterable[Resource]) -> "Snapshot":
        """Build a snapshot from objects in any order (later duplicates of a key win)."""
        by_key = {o.key: o for o in objects}
        ordered = [by_key[k] for k in sorted(by_key)]

        return cls(
            gateway_classes=_pick(ordered, GatewayClass),
            gateways=_pick(ordered, Gateway),
            http_routes=_pick(ordered, HTTPRoute),
            reference_grants=_pick(ordered, ReferenceGrant),
            services=_pick(ordered, Service),
            endpoint_slices=_pick(ordered, EndpointSlice),
            endpoints=_pick(ordered, Endpoints),
            namespaces=_pick(ordered, Namespace),
            secrets=_pick(ordered, Secret),
            config_maps=_pick(ordered, ConfigMap),
            backend_tls_policies=_pick(ordered, BackendTLSPolicy),
            mirror_policies=_pick(ordered, MirrorPolicy),
            gateway_configs=_pick(ordered, GatewayConfig),
        )

    def objects(self) -> tuple[Resource, ...]:
        return (
            *self.gateway_classes,
            *self.gateways,
            *self.http_routes,
            *self.reference_grants,
            *self.services,
            *self.endpoint_slices,
            *self.endpoints,
            *self.namespaces,
            *self.secrets,
            *self.config_maps,
            *self.backend_tls_policies,
            *self.mirror_policies,
            *self.gateway_configs,
        )


_R = TypeVar("_R", bound=Resource)


def _pick(objects: Sequence[Resource], kind: type[_R]) -> tuple[_R, ...]:
    return tuple(o for o in objects if isinstance(o, kind) and type(o) is kind)
