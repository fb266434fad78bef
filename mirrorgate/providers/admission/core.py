"""Core-kind admission: Namespace, Service, EndpointSlice and Endpoints.

Rules (``k8s.io/kubernetes/pkg/apis/{core,discovery}/validation``):
1. Service: ports required unless headless or ExternalName, names required when there are two
   or more and unique, port and targetPort in 1..65535 (targetPort defaults to port, a named
   targetPort is an IANA service name), protocol TCP/UDP/SCTP, type one of the four, an
   ExternalName needs a DNS-1123 ``externalName``, clusterIPs are IPs or a lone ``None``.
2. EndpointSlice: addressType FQDN/IPv4/IPv6; at most 1000 endpoints of 1 to 100 addresses each,
   matching the address type; at most 20000 ports, with unique names.
3. Endpoints: each subset has addresses or notReadyAddresses, IPs, DNS-1123 hostnames and
   nodeNames, ports named when there are two or more.
4. Deliberate deviations: loopback, link-local and unspecified addresses are accepted (the
   apiserver rejects them; a local gateway needs ``127.0.0.1``), and IPs use Go's legacy
   (non-strict) parser, as with the ``StrictIPCIDRValidation`` feature gate off.
"""

import re
from collections.abc import Sequence
from typing import Final

from mirrorgate.errors import FieldError
from mirrorgate.gocompat import ip_to4, parse_ip
from mirrorgate.model.core import (
    Endpoint,
    EndpointPort,
    Endpoints,
    EndpointSlice,
    EndpointSubset,
    Namespace,
    Service,
    ServicePort,
)
from mirrorgate.providers.admission.meta import (
    byte_len,
    check_metadata,
    invalid_each,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    max_len_error,
)
from mirrorgate.providers.admission.schema import Errors, Json, check_enum

PORT_PROTOCOLS: Final = ("SCTP", "TCP", "UDP")
SERVICE_TYPES: Final = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
ADDRESS_TYPES: Final = ("FQDN", "IPv4", "IPv6")
_VALID_IP_MSG: Final = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_PORT_RANGE_MSG: Final = "must be between 1 and 65535, inclusive"
_PORT_NAME_CHARS: Final = re.compile(r"[-a-z0-9]+\Z")
_PORT_NAME_LETTER: Final = re.compile(r"[a-z]")


def is_valid_port_name(port: str) -> list[str]:
    """apimachinery ``IsValidPortName`` (IANA_SVC_NAME)."""
    errs = [max_len_error(15)] if byte_len(port) > 15 else []
    if not _PORT_NAME_CHARS.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_LETTER.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _port_number(e: Errors, path: str, value: int) -> None:
    if not 1 <= value <= 65535:
        e.invalid(path, value, _PORT_RANGE_MSG)


def _protocol(e: Errors, path: str, value: str) -> None:
    if not value:
        e.required(path)
    elif value not in PORT_PROTOCOLS:
        e.not_supported(path, value, PORT_PROTOCOLS)


def admit_namespace(ns: Namespace) -> list[FieldError]:
    """Namespace: metadata only (name a DNS-1123 label)."""
    e = Errors(has_cel=False)
    check_metadata(e, ns, is_dns1123_label, namespaced=False)
    return e.result()


def admit_service(svc: Service) -> list[FieldError]:
    """Service (rule 1)."""
    e = Errors(has_cel=False)
    check_metadata(e, svc, is_dns1035_label)
    spec = svc.spec
    # The registry fills an unset clusterIP from clusterIPs[0] before validation.
    headless = (spec.cluster_ip or (spec.cluster_ips[0] if spec.cluster_ips else "")) == "None"
    if not spec.ports and not headless and spec.type != "ExternalName":
        e.required("spec.ports")
    names: set[str] = set()
    for i, port in enumerate(spec.ports):
        _service_port(e, f"spec.ports[{i}]", port, require_name=len(spec.ports) > 1, names=names)
    check_enum(e, "spec.type", spec.type, SERVICE_TYPES)
    if spec.type == "ExternalName":
        _external_name(e, spec.external_name)
    _cluster_ips(e, spec.cluster_ip, spec.cluster_ips)
    return e.result()


def _service_port(e: Errors, path: str, port: ServicePort, *, require_name: bool, names: set[str]) -> None:
    name = port.name or ""
    if require_name and not name:
        e.required(f"{path}.name")
    elif name:
        invalid_each(e, f"{path}.name", name, is_dns1123_label(name))
        if name in names:
            e.duplicate(f"{path}.name", name)
        names.add(name)
    _port_number(e, f"{path}.port", port.port)
    _protocol(e, f"{path}.protocol", port.protocol)
    target = port.target_port
    if target is None or target in (0, ""):  # SetDefaults_Service: targetPort defaults to port
        target = port.port
    if isinstance(target, int):
        _port_number(e, f"{path}.targetPort", target)
    else:
        invalid_each(e, f"{path}.targetPort", target, is_valid_port_name(target))
    if port.app_protocol is not None:
        invalid_each(e, f"{path}.appProtocol", port.app_protocol, is_qualified_name(port.app_protocol))


def _external_name(e: Errors, external_name: str | None) -> None:
    cname = (external_name or "").removesuffix(".")
    if cname:
        invalid_each(e, "spec.externalName", cname, is_dns1123_subdomain(cname))
    else:
        e.required("spec.externalName")


def _cluster_ips(e: Errors, cluster_ip: str | None, cluster_ips: Sequence[str]) -> None:
    ips = list(cluster_ips) or ([cluster_ip] if cluster_ip else [])
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                e.invalid("spec.clusterIPs", ips, "'None' must be the first and only value")
            continue
        if parse_ip(ip) is None:
            e.invalid(f"spec.clusterIPs[{i}]", ip, _VALID_IP_MSG)


def admit_endpoint_slice(eps: EndpointSlice) -> list[FieldError]:
    """EndpointSlice (rule 2)."""
    e = Errors(has_cel=False)
    check_metadata(e, eps, is_dns1123_subdomain)
    if not eps.address_type:
        e.required("addressType")
    elif eps.address_type not in ADDRESS_TYPES:
        e.not_supported("addressType", eps.address_type, ADDRESS_TYPES)
    if len(eps.endpoints) > 1000:
        e.too_many("endpoints", len(eps.endpoints), 1000)
    else:
        for i, endpoint in enumerate(eps.endpoints):
            _slice_endpoint(e, f"endpoints[{i}]", endpoint, eps.address_type)
    _slice_ports(e, eps.ports)
    return e.result()


def _slice_endpoint(e: Errors, path: str, endpoint: Endpoint, address_type: str) -> None:
    p = f"{path}.addresses"
    if not endpoint.addresses:
        e.required(p, "must contain at least 1 address")
    elif len(endpoint.addresses) > 100:
        e.too_many(p, len(endpoint.addresses), 100)
    for k, address in enumerate(endpoint.addresses):
        _slice_address(e, f"{p}[{k}]", address, address_type)
    if endpoint.node_name is not None:
        invalid_each(e, f"{path}.nodeName", endpoint.node_name, is_dns1123_subdomain(endpoint.node_name))
    if endpoint.hostname is not None:
        invalid_each(e, f"{path}.hostname", endpoint.hostname, is_dns1123_label(endpoint.hostname))


def _slice_address(e: Errors, path: str, address: str, address_type: str) -> None:
    ip = parse_ip(address)
    if address_type == "IPv4" and (ip is None or ip_to4(ip) is None):
        e.invalid(path, address, "must be a valid IPv4 address")
    elif address_type == "IPv6" and (ip is None or ip_to4(ip) is not None):
        e.invalid(path, address, "must be a valid IPv6 address")
    elif address_type == "FQDN":
        _fqdn(e, path, address)


def _fqdn(e: Errors, path: str, name: str) -> None:
    """apimachinery ``IsFullyQualifiedDomainName``."""
    if not name:
        e.required(path)
        return
    name = name.removesuffix(".")
    errs = is_dns1123_subdomain(name)
    if errs:
        e.invalid(path, name, ",".join(errs))
    elif len(name.split(".")) < 2:
        e.invalid(path, name, "should be a domain with at least two segments separated by dots")
    else:
        for label in name.split("."):
            label_errs = is_dns1123_label(label)
            if label_errs:
                e.invalid(path, label, ",".join(label_errs))
                return


def _slice_ports(e: Errors, ports: Sequence[EndpointPort]) -> None:
    if len(ports) > 20000:
        e.too_many("ports", len(ports), 20000)
        return
    names: set[str] = set()
    for i, port in enumerate(ports):
        name = port.name or ""
        if name:
            invalid_each(e, f"ports[{i}].name", name, is_dns1123_label(name))
        if name in names:
            e.duplicate(f"ports[{i}].name", Json(name))
        names.add(name)
        _protocol(e, f"ports[{i}].protocol", port.protocol)
        if port.app_protocol is not None:
            invalid_each(e, f"ports[{i}].appProtocol", port.app_protocol, is_qualified_name(port.app_protocol))


def admit_endpoints(eps: Endpoints) -> list[FieldError]:
    """Endpoints (rule 3)."""
    e = Errors(has_cel=False)
    check_metadata(e, eps, is_dns1123_subdomain)
    for i, subset in enumerate(eps.subsets):
        _endpoint_subset(e, f"subsets[{i}]", subset)
    return e.result()


def _endpoint_subset(e: Errors, path: str, subset: EndpointSubset) -> None:
    if not subset.addresses and not subset.not_ready_addresses:
        e.required(path, "must specify `addresses` or `notReadyAddresses`")
    for field, addresses in (("addresses", subset.addresses), ("notReadyAddresses", subset.not_ready_addresses)):
        for k, address in enumerate(addresses):
            p = f"{path}.{field}[{k}]"
            if parse_ip(address.ip) is None:
                e.invalid(f"{p}.ip", address.ip, _VALID_IP_MSG)
            if address.hostname:
                invalid_each(e, f"{p}.hostname", address.hostname, is_dns1123_label(address.hostname))
            if address.node_name is not None:
                invalid_each(e, f"{p}.nodeName", address.node_name, is_dns1123_subdomain(address.node_name))
    for k, port in enumerate(subset.ports):
        p = f"{path}.ports[{k}]"
        name = port.name or ""
        if len(subset.ports) > 1 and not name:
            e.required(f"{p}.name")
        elif name:
            invalid_each(e, f"{p}.name", name, is_dns1123_label(name))
        _port_number(e, f"{p}.port", port.port)
        _protocol(e, f"{p}.protocol", port.protocol)
        if port.app_protocol is not None:
            invalid_each(e, f"{p}.appProtocol", port.app_protocol, is_qualified_name(port.app_protocol))
