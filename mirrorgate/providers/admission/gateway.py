"""GatewayClass, Gateway and ReferenceGrant admission (``apis/v1``, v1.6 standard channel).

Rules:
1. GatewayClass: controllerName is a domain-prefixed path, description at most 64 characters,
   parametersRef a typed reference. Its CRD has a transition rule, so the CEL gate applies.
2. Gateway listeners: 1 to 64, ``listType=map`` on name; the listener-list CEL rules in the
   CRD's order (no TLS for HTTP/TCP/UDP, HTTPS mode Terminate, TLS needs a mode, no hostname for
   TCP/UDP, unique names, unique (port, protocol, hostname)); Terminate needs certificateRefs or
   options.
3. Gateway addresses: at most 16, IPAddress and Hostname values unique; an IPAddress value must
   be an IPv4 or IPv6 address (the CRD's ``oneOf``, reported with kube-openapi's three errors);
   a Hostname value matches the hostname pattern.
4. Gateway infrastructure: at most 8 labels and 8 annotations; keys are an optional DNS
   subdomain prefix and a name of up to 63 characters, the prefix shorter than 253 characters
   (the CRD's CEL rule is ``< 253``); label values are label values, annotation values at most
   4096 characters; parametersRef needs group, kind and name.
5. ReferenceGrant (v1 and v1beta1 share the schema; no CEL): 1 to 16 ``from`` and ``to`` entries.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Final

from mirrorgate.errors import FieldError
from mirrorgate.gocompat import parse_ip, quote
from mirrorgate.model.core import ReferenceGrant
from mirrorgate.model.gateway import (
    Gateway,
    GatewayClass,
    GatewayInfrastructure,
    GatewaySpecAddress,
    GatewayTLSConfig,
    Listener,
)
from mirrorgate.providers.admission.meta import check_metadata, is_dns1123_subdomain
from mirrorgate.providers.admission.schema import (
    ADDRESS_TYPE,
    CONTROLLER_NAME,
    HOSTNAME,
    LABEL_VALUE,
    PROTOCOL,
    QUALIFIED_KEY,
    Errors,
    check_enum,
    check_group,
    check_hostname,
    check_items,
    check_kind,
    check_list_map_keys,
    check_max_properties,
    check_namespace,
    check_object_name,
    check_port,
    check_section_name,
    check_string,
    is_empty,
)

LISTENER_FROM: Final = ("All", "Selector", "Same")
TLS_MODES: Final = ("Terminate", "Passthrough")
MSG_LISTENER_TLS_FORBIDDEN: Final = "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']"
MSG_LISTENER_HTTPS_MODE: Final = "tls mode must be Terminate for protocol HTTPS"
MSG_LISTENER_TLS_MODE: Final = "tls mode must be set for protocol TLS"
MSG_LISTENER_HOSTNAME: Final = "hostname must not be specified for protocols ['TCP', 'UDP']"
MSG_LISTENER_NAME_UNIQUE: Final = "Listener name must be unique within the Gateway"
MSG_LISTENER_COMBINATION: Final = "Combination of port, protocol and hostname must be unique for each listener"
MSG_TLS_CERTS: Final = "certificateRefs or options must be specified when mode is Terminate"
MSG_IP_UNIQUE: Final = "IPAddress values must be unique"
MSG_HOSTNAME_UNIQUE: Final = "Hostname values must be unique"
MSG_ADDRESS_HOSTNAME: Final = (
    f"Hostname value must be empty or contain only valid characters (matching {HOSTNAME.source})"
)


def admit_gateway_class(gc: GatewayClass) -> list[FieldError]:
    """GatewayClass (rule 1)."""
    e = Errors(has_cel=True)  # the CRD has a transition rule, so the CEL gate applies
    check_metadata(e, gc, is_dns1123_subdomain, namespaced=False)
    spec = gc.spec
    check_string(e, "spec.controllerName", spec.controller_name, min_len=1, max_len=253, pattern=CONTROLLER_NAME)
    if spec.description is not None:
        check_string(e, "spec.description", spec.description, max_len=64)
    if spec.parameters_ref is not None:
        ref = spec.parameters_ref
        check_group(e, "spec.parametersRef.group", ref.group)
        check_kind(e, "spec.parametersRef.kind", ref.kind)
        check_object_name(e, "spec.parametersRef.name", ref.name)
        check_namespace(e, "spec.parametersRef.namespace", ref.namespace)
    return e.result()


def admit_gateway(gw: Gateway) -> list[FieldError]:
    """Gateway (rules 2 to 4)."""
    e = Errors(has_cel=True)
    check_metadata(e, gw, is_dns1123_subdomain)
    spec = gw.spec
    check_object_name(e, "spec.gatewayClassName", spec.gateway_class_name)
    _listeners(e, "spec.listeners", spec.listeners)
    _addresses(e, "spec.addresses", spec.addresses)
    if spec.infrastructure is not None:
        _infrastructure(e, "spec.infrastructure", spec.infrastructure)
    return e.result()


def _listeners(e: Errors, path: str, listeners: Sequence[Listener]) -> None:
    check_items(e, path, listeners, min_items=1, max_items=64)
    check_list_map_keys(e, path, [ln.name for ln in listeners])
    for message in _listener_list_violations(listeners):
        e.rule(path, "array", message)
    for i, listener in enumerate(listeners):
        _listener(e, f"{path}[{i}]", listener)


def _listener_list_violations(listeners: Sequence[Listener]) -> list[str]:
    """The listener-list CEL rules in CRD order."""
    out = []
    if any(ln.protocol in ("HTTP", "TCP", "UDP") and ln.tls is not None for ln in listeners):
        out.append(MSG_LISTENER_TLS_FORBIDDEN)
    if any(ln.protocol == "HTTPS" and ln.tls is not None and ln.tls.mode not in ("", "Terminate") for ln in listeners):
        out.append(MSG_LISTENER_HTTPS_MODE)
    if any(ln.protocol == "TLS" and (ln.tls is None or ln.tls.mode == "") for ln in listeners):
        out.append(MSG_LISTENER_TLS_MODE)
    if any(ln.protocol in ("TCP", "UDP") and not is_empty(ln.hostname) for ln in listeners):
        out.append(MSG_LISTENER_HOSTNAME)
    if not all(sum(a.name == b.name for b in listeners) == 1 for a in listeners):
        out.append(MSG_LISTENER_NAME_UNIQUE)
    if not all(sum(_same_listener_slot(a, b) for b in listeners) == 1 for a in listeners):
        out.append(MSG_LISTENER_COMBINATION)
    return out


def _same_listener_slot(a: Listener, b: Listener) -> bool:
    same_host = (
        a.hostname == b.hostname
        if a.hostname is not None and b.hostname is not None
        else (a.hostname is None and b.hostname is None)
    )
    return a.port == b.port and a.protocol == b.protocol and same_host


def _listener(e: Errors, path: str, listener: Listener) -> None:
    check_hostname(e, f"{path}.hostname", listener.hostname)
    check_section_name(e, f"{path}.name", listener.name)
    check_port(e, f"{path}.port", listener.port)
    check_string(e, f"{path}.protocol", listener.protocol, min_len=1, max_len=255, pattern=PROTOCOL)
    if listener.tls is not None:
        _listener_tls(e, f"{path}.tls", listener.tls)
    routes = listener.allowed_routes
    check_enum(e, f"{path}.allowedRoutes.namespaces.from", routes.namespaces.from_, LISTENER_FROM)
    check_items(e, f"{path}.allowedRoutes.kinds", routes.kinds, max_items=8)
    for k, kind in enumerate(routes.kinds):
        check_group(e, f"{path}.allowedRoutes.kinds[{k}].group", kind.group)
        check_kind(e, f"{path}.allowedRoutes.kinds[{k}].kind", kind.kind)


def _listener_tls(e: Errors, path: str, tls: GatewayTLSConfig) -> None:
    if tls.mode == "Terminate" and not tls.certificate_refs and not tls.options:
        # size(self.certificateRefs) on an absent field is a CEL evaluation error.
        e.rule(path, "object", f"no such key: certificateRefs evaluating rule: {MSG_TLS_CERTS}")
    check_items(e, f"{path}.certificateRefs", tls.certificate_refs, max_items=64)
    for k, ref in enumerate(tls.certificate_refs):
        p = f"{path}.certificateRefs[{k}]"
        check_group(e, f"{p}.group", ref.group)
        check_kind(e, f"{p}.kind", ref.kind)
        check_object_name(e, f"{p}.name", ref.name)
        check_namespace(e, f"{p}.namespace", ref.namespace)
    check_enum(e, f"{path}.mode", tls.mode, TLS_MODES)
    check_max_properties(e, f"{path}.options", tls.options, 16)
    for key in sorted(tls.options):
        check_string(e, f"{path}.options.{key}", tls.options[key], max_len=4096)


def _addresses(e: Errors, path: str, addresses: Sequence[GatewaySpecAddress]) -> None:
    check_items(e, path, addresses, max_items=16)
    for kind, message in (("IPAddress", MSG_IP_UNIQUE), ("Hostname", MSG_HOSTNAME_UNIQUE)):
        values = [a.value for a in addresses if a.type == kind]
        if len(values) != len(set(values)):
            e.rule(path, "array", message)
    for i, address in enumerate(addresses):
        _address(e, f"{path}[{i}]", address)


def _address(e: Errors, path: str, address: GatewaySpecAddress) -> None:
    if address.type == "Hostname" and not HOSTNAME.search(address.value):
        e.rule(path, "object", MSG_ADDRESS_HOSTNAME)
    if address.type == "IPAddress" and not (_is_format_ipv4(address.value) or _is_format_ipv6(address.value)):
        # oneOf[{type: enum [IPAddress], value: anyOf [ipv4, ipv6]}, {type: not enum [IPAddress]}]
        e.invalid("<nil>", "", f'"{path}" must validate one and only one schema (oneOf). Found none valid')
        e.invalid("<nil>", "", f'"{path}.value" must validate at least one schema (anyOf)')
        e.type_invalid(
            f"{path}.value", address.value, f"{path}.value in body must be of type ipv4: {quote(address.value)}"
        )
    check_string(e, f"{path}.type", address.type, min_len=1, max_len=253, pattern=ADDRESS_TYPE)
    check_string(e, f"{path}.value", address.value, max_len=253)


def _is_format_ipv4(value: str) -> bool:
    """kube-openapi ``ipv4`` format: ParseIPSloppy accepts it and it contains a dot."""
    return parse_ip(value) is not None and "." in value


def _is_format_ipv6(value: str) -> bool:
    return parse_ip(value) is not None and ":" in value


def _is_qualified_key(key: str) -> bool:
    return QUALIFIED_KEY.search(key)


def _short_key_prefix(key: str) -> bool:
    return len(key.split("/")[0]) < 253


_KEY_RULES: Final[tuple[tuple[Callable[[str], bool], str], ...]] = (
    (
        _is_qualified_key,
        "{Kind} keys must be in the form of an optional DNS subdomain prefix followed by a required name segment of "
        "up to 63 characters.",
    ),
    (
        _short_key_prefix,
        "If specified, the {kind} key's prefix must be a DNS subdomain not longer than 253 characters in total.",
    ),
)


def _infrastructure(e: Errors, path: str, infra: GatewayInfrastructure) -> None:
    for field, mapping, kind in (("annotations", infra.annotations, "annotation"), ("labels", infra.labels, "label")):
        p = f"{path}.{field}"
        check_max_properties(e, p, mapping, 8)
        for check, message in _KEY_RULES:
            if not all(check(key) for key in mapping):
                e.rule(p, "object", message.format(Kind=kind.capitalize(), kind=kind))
        for key in sorted(mapping):
            if kind == "label":
                check_string(e, f"{p}.{key}", mapping[key], max_len=63, pattern=LABEL_VALUE)
            else:
                check_string(e, f"{p}.{key}", mapping[key], max_len=4096)
    if infra.parameters_ref is not None:
        _local_parameters_ref(e, f"{path}.parametersRef", infra.parameters_ref)


def _local_parameters_ref(e: Errors, path: str, ref: Mapping[str, str]) -> None:
    for field, check in (("group", check_group), ("kind", check_kind), ("name", check_object_name)):
        value = ref.get(field)
        if value is None:
            e.required(f"{path}.{field}")
        else:
            check(e, f"{path}.{field}", value)


# ---------------------------------------------------------------------------------------------
# ReferenceGrant (apis/v1/referencegrant_types.go; v1 and v1beta1 share the schema; no CEL).
# ---------------------------------------------------------------------------------------------


def admit_reference_grant(grant: ReferenceGrant) -> list[FieldError]:
    """ReferenceGrant (rule 5)."""
    e = Errors(has_cel=False)
    check_metadata(e, grant, is_dns1123_subdomain)
    check_items(e, "spec.from", grant.spec.from_, min_items=1, max_items=16)
    for i, src in enumerate(grant.spec.from_):
        check_group(e, f"spec.from[{i}].group", src.group)
        check_kind(e, f"spec.from[{i}].kind", src.kind)
        check_namespace(e, f"spec.from[{i}].namespace", src.namespace)
    check_items(e, "spec.to", grant.spec.to, min_items=1, max_items=16)
    for i, dst in enumerate(grant.spec.to):
        check_group(e, f"spec.to[{i}].group", dst.group)
        check_kind(e, f"spec.to[{i}].kind", dst.kind)
        if dst.name is not None:
            check_object_name(e, f"spec.to[{i}].name", dst.name)
    return e.result()
