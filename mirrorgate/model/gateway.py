"""GatewayClass and Gateway (``gateway.networking.k8s.io/v1``, standard channel v1.6)."""

from typing import Any

import msgspec

from mirrorgate.model.meta import LabelSelector, Resource, Spec


class ParametersReference(Spec, frozen=True, kw_only=True):
    group: str
    kind: str
    name: str
    namespace: str | None = None


class GatewayClassSpec(Spec, frozen=True, kw_only=True):
    controller_name: str
    description: str | None = None
    parameters_ref: ParametersReference | None = None


class GatewayClass(Resource, frozen=True, kw_only=True):
    spec: GatewayClassSpec


class RouteNamespaces(Spec, frozen=True, kw_only=True):
    from_: str = msgspec.field(default="Same", name="from")
    selector: LabelSelector | None = None


class RouteGroupKind(Spec, frozen=True, kw_only=True):
    kind: str
    group: str = "gateway.networking.k8s.io"


class AllowedRoutes(Spec, frozen=True, kw_only=True):
    namespaces: RouteNamespaces = msgspec.field(default_factory=RouteNamespaces)
    kinds: tuple[RouteGroupKind, ...] = ()


class SecretObjectReference(Spec, frozen=True, kw_only=True):
    name: str
    group: str = ""
    kind: str = "Secret"
    namespace: str | None = None


class GatewayTLSConfig(Spec, frozen=True, kw_only=True):
    mode: str = "Terminate"
    certificate_refs: tuple[SecretObjectReference, ...] = ()
    options: dict[str, str] = msgspec.field(default_factory=dict)


class Listener(Spec, frozen=True, kw_only=True):
    name: str
    port: int
    protocol: str
    hostname: str | None = None
    tls: GatewayTLSConfig | None = None
    allowed_routes: AllowedRoutes = msgspec.field(default_factory=AllowedRoutes)


class GatewaySpecAddress(Spec, frozen=True, kw_only=True):
    value: str
    type: str = "IPAddress"


class GatewayInfrastructure(Spec, frozen=True, kw_only=True):
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    annotations: dict[str, str] = msgspec.field(default_factory=dict)
    parameters_ref: dict[str, str] | None = None


class GatewaySpec(Spec, frozen=True, kw_only=True):
    gateway_class_name: str
    listeners: tuple[Listener, ...]
    addresses: tuple[GatewaySpecAddress, ...] = ()
    infrastructure: GatewayInfrastructure | None = None
    # Gateway-level TLS (backend client certificates / frontend validation); accepted, not used.
    tls: dict[str, Any] | None = None
    allowed_listeners: dict[str, Any] | None = None


class Gateway(Resource, frozen=True, kw_only=True):
    spec: GatewaySpec
