"""Core and discovery objects: Namespace, Service, EndpointSlice, legacy Endpoints, ReferenceGrant."""

import msgspec

from mirrorgate.model.meta import Resource, Spec


class Namespace(Resource, frozen=True, kw_only=True):
    """Only ``metadata.labels`` matters (listener ``allowedRoutes`` selectors)."""


class ServicePort(Spec, frozen=True, kw_only=True):
    port: int
    name: str | None = None
    protocol: str = "TCP"
    target_port: int | str | None = None
    app_protocol: str | None = None
    node_port: int | None = None


class ServiceSpec(Spec, frozen=True, kw_only=True):
    ports: tuple[ServicePort, ...] = ()
    selector: dict[str, str] | None = None
    cluster_ip: str | None = msgspec.field(default=None, name="clusterIP")
    cluster_ips: tuple[str, ...] = msgspec.field(default=(), name="clusterIPs")
    type: str = "ClusterIP"
    external_name: str | None = None
    ip_families: tuple[str, ...] = ()
    ip_family_policy: str | None = None
    session_affinity: str | None = None
    external_traffic_policy: str | None = None
    internal_traffic_policy: str | None = None
    publish_not_ready_addresses: bool | None = None
    load_balancer_ip: str | None = msgspec.field(default=None, name="loadBalancerIP")
    external_ips: tuple[str, ...] = msgspec.field(default=(), name="externalIPs")


class Service(Resource, frozen=True, kw_only=True):
    spec: ServiceSpec = msgspec.field(default_factory=ServiceSpec)


class EndpointConditions(Spec, frozen=True, kw_only=True):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class Endpoint(Spec, frozen=True, kw_only=True):
    addresses: tuple[str, ...]
    conditions: EndpointConditions = msgspec.field(default_factory=EndpointConditions)
    hostname: str | None = None
    node_name: str | None = None
    zone: str | None = None
    target_ref: dict[str, str] | None = None
    hints: dict[str, object] | None = None


class EndpointPort(Spec, frozen=True, kw_only=True):
    port: int | None = None
    name: str | None = None
    protocol: str = "TCP"
    app_protocol: str | None = None


class EndpointSlice(Resource, frozen=True, kw_only=True):
    """``discovery.k8s.io/v1``: no ``spec``; the fields are at the top level."""

    address_type: str
    endpoints: tuple[Endpoint, ...] = ()
    ports: tuple[EndpointPort, ...] = ()


class EndpointAddress(Spec, frozen=True, kw_only=True):
    ip: str
    hostname: str | None = None
    node_name: str | None = None
    target_ref: dict[str, str] | None = None


class EndpointsPort(Spec, frozen=True, kw_only=True):
    port: int
    name: str | None = None
    protocol: str = "TCP"
    app_protocol: str | None = None


class EndpointSubset(Spec, frozen=True, kw_only=True):
    addresses: tuple[EndpointAddress, ...] = ()
    not_ready_addresses: tuple[EndpointAddress, ...] = ()
    ports: tuple[EndpointsPort, ...] = ()


class Endpoints(Resource, frozen=True, kw_only=True):
    """Legacy ``v1 Endpoints``: ``subsets`` at the top level."""

    subsets: tuple[EndpointSubset, ...] = ()


class ReferenceGrantFrom(Spec, frozen=True, kw_only=True):
    group: str
    kind: str
    namespace: str


class ReferenceGrantTo(Spec, frozen=True, kw_only=True):
    group: str
    kind: str
    name: str | None = None


class ReferenceGrantSpec(Spec, frozen=True, kw_only=True):
    from_: tuple[ReferenceGrantFrom, ...] = msgspec.field(name="from")
    to: tuple[ReferenceGrantTo, ...]


class ReferenceGrant(Resource, frozen=True, kw_only=True):
    spec: ReferenceGrantSpec
