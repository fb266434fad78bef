"""Admission: every rule of ``mirrorgate.providers.admission`` with its exact path and message.

Each table row is a small object (decoded with ``msgspec.convert`` as the file provider does) and
the complete list of ``(path, message)`` pairs the apiserver would report for it. Messages are
written out literally here, not imported, so that a drift in the module shows up as a failure.
"""

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mirrorgate.errors import FieldError
from mirrorgate.model.core import Endpoints, EndpointSlice, Namespace, ReferenceGrant, Service
from mirrorgate.model.gateway import Gateway, GatewayClass
from mirrorgate.model.httproute import HTTPRoute
from mirrorgate.model.meta import Resource
from mirrorgate.providers.admission import admit

GW = "gateway.networking.k8s.io/v1"
Errors = list[tuple[str, str]]

GATE = (
    "<nil>",
    "Invalid value: null: some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation",
)
HOSTNAME_RE = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
PRECISE_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
GROUP_RE = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
KIND_RE = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$"
NS_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HEADER_RE = r"^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$"
DURATION_RE = r"^([0-9]{1,5}(h|m|s|ms)){1,4}$"
CORS_ORIGIN_RE = r"(^\*$)|(^([a-zA-Z][a-zA-Z0-9+\-.]+):\/\/([^:/?#]+)(:([0-9]{1,5}))?$)"
CONTROLLER_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$"
ADDRESS_TYPE_RE = (
    r"^Hostname|IPAddress|NamedAddress|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
    r"\/[A-Za-z0-9\/\-._~%!$&'()*+,;=:]+$"
)
PROTOCOL_RE = (
    r"^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$|"
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]+$"
)
LABEL_VALUE_RE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    r"is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
VALID_IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
R0 = "spec.rules[0]"
F0 = "spec.rules[0].filters[0]"
OBJ = 'Invalid value: "object": '
ARR = 'Invalid value: "array": '


# --- builders -----------------------------------------------------------------------------------


def convert(doc: dict[str, Any], cls: type[Resource]) -> Resource:
    return msgspec.convert(doc, cls)


def route(spec: dict[str, Any], *, name: str = "r", namespace: str = "default") -> Resource:
    doc = {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    return convert(doc, HTTPRoute)


def rule_route(**rule: Any) -> Resource:
    """A route with one rule (keys in CRD camelCase)."""
    return route({"rules": [rule]})


def filters_route(*filters: dict[str, Any]) -> Resource:
    return rule_route(filters=list(filters))


def backend_filters_route(*filters: dict[str, Any]) -> Resource:
    return rule_route(backendRefs=[{"name": "s", "port": 80, "filters": list(filters)}])


def match_route(**match: Any) -> Resource:
    return rule_route(matches=[match])


def path_route(kind: str, value: str) -> Resource:
    return match_route(path={"type": kind, "value": value})


FILTER_FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    "RequestHeaderModifier": ("requestHeaderModifier", {"set": [{"name": "a", "value": "b"}]}),
    "ResponseHeaderModifier": ("responseHeaderModifier", {"add": [{"name": "a", "value": "b"}]}),
    "RequestMirror": ("requestMirror", {"backendRef": {"name": "m", "port": 80}}),
    "RequestRedirect": ("requestRedirect", {"statusCode": 301}),
    "URLRewrite": ("urlRewrite", {"hostname": "a.example.com"}),
    "CORS": ("cors", {"allowOrigins": ["https://a.example.com"]}),
    "ExtensionRef": ("extensionRef", {"group": "example.com", "kind": "Filter", "name": "f"}),
}


def flt(kind: str, **extra: Any) -> dict[str, Any]:
    field, value = FILTER_FIELDS[kind]
    return {"type": kind, field: {**value, **extra}}


def mirror(**fields: Any) -> dict[str, Any]:
    return {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 80}, **fields}}


def rewrite_path(**path: Any) -> dict[str, Any]:
    return {"type": "URLRewrite", "urlRewrite": {"path": path}}


def redirect(**fields: Any) -> dict[str, Any]:
    return {"type": "RequestRedirect", "requestRedirect": fields}


def header_filter(**fields: Any) -> Resource:
    return filters_route({"type": "RequestHeaderModifier", "requestHeaderModifier": fields})


def cors(**fields: Any) -> Resource:
    return filters_route({"type": "CORS", "cors": fields})


def listener(name: str = "http", port: int = 80, protocol: str = "HTTP", **extra: Any) -> dict[str, Any]:
    return {"name": name, "port": port, "protocol": protocol, **extra}


def gateway(*listeners: dict[str, Any], **spec: Any) -> Resource:
    body = {"gatewayClassName": "mg", "listeners": list(listeners) or [listener()], **spec}
    return convert(
        {"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "g", "namespace": "default"}, "spec": body}, Gateway
    )


def gateway_class(**spec: Any) -> Resource:
    body = {"controllerName": "mirrorgate.dev/gateway-controller", **spec}
    return convert(
        {"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "mg", "namespace": ""}, "spec": body},
        GatewayClass,
    )


def grant(**spec: Any) -> Resource:
    body = {
        "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "default"}],
        "to": [{"group": "", "kind": "Service"}],
        **spec,
    }
    return convert(
        {"apiVersion": GW, "kind": "ReferenceGrant", "metadata": {"name": "rg", "namespace": "backends"}, "spec": body},
        ReferenceGrant,
    )


def service(*ports: dict[str, Any], name: str = "svc", **spec: Any) -> Resource:
    body = {"ports": list(ports), **spec}
    return convert(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"}, "spec": body},
        Service,
    )


def slice_(
    address_type: str = "IPv4", endpoints: list[dict[str, Any]] | None = None, ports: list[dict[str, Any]] | None = None
) -> Resource:
    doc = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "svc-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "svc"}},
        "addressType": address_type,
        "endpoints": endpoints if endpoints is not None else [],
        "ports": ports if ports is not None else [],
    }
    return convert(doc, EndpointSlice)


def endpoints(*subsets: dict[str, Any]) -> Resource:
    doc = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "svc", "namespace": "default"},
        "subsets": list(subsets),
    }
    return convert(doc, Endpoints)


def namespace(name: str) -> Resource:
    return convert({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "namespace": ""}}, Namespace)


def errs(obj: Resource) -> Errors:
    return [(e.path, e.message) for e in admit(obj)]


def check(obj: Resource, expected: Errors) -> None:
    assert errs(obj) == expected


# --- valid objects ------------------------------------------------------------------------------

VALID_ROUTE = route(
    {
        "parentRefs": [
            {"name": "gw", "sectionName": "http"},
            {"name": "gw", "sectionName": "https", "port": 443},
            {"name": "gw", "namespace": "other"},
        ],
        "hostnames": ["example.com", "*.example.com"],
        "rules": [
            {
                "name": "primary",
                "matches": [
                    {
                        "path": {"type": "PathPrefix", "value": "/api"},
                        "headers": [
                            {"name": "x-version", "value": "2"},
                            {"name": "x-re", "type": "RegularExpression", "value": "^a.*$"},
                        ],
                        "queryParams": [{"name": "animal", "value": "whale"}],
                        "method": "GET",
                    }
                ],
                "filters": [
                    flt("RequestHeaderModifier"),
                    flt("ResponseHeaderModifier"),
                    mirror(percent=20),
                    mirror(fraction={"numerator": 1, "denominator": 3}),
                    {
                        "type": "URLRewrite",
                        "urlRewrite": {
                            "hostname": "b.example.com",
                            "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/v2"},
                        },
                    },
                    {
                        "type": "CORS",
                        "cors": {
                            "allowOrigins": ["https://a.example.com", "http://b.example.com:8080"],
                            "allowMethods": ["GET", "POST"],
                            "allowHeaders": ["x-a"],
                            "exposeHeaders": ["x-b"],
                            "allowCredentials": True,
                            "maxAge": 60,
                        },
                    },
                    flt("ExtensionRef"),
                    flt("ExtensionRef"),
                ],
                "backendRefs": [
                    {"name": "v1", "port": 8080, "weight": 70},
                    {
                        "name": "v2",
                        "port": 8080,
                        "weight": 0,
                        "namespace": "other",
                        "filters": [mirror(), mirror(percent=100), flt("RequestHeaderModifier")],
                    },
                    {"group": "example.com", "kind": "Bucket", "name": "b"},
                ],
                "timeouts": {"request": "10s", "backendRequest": "1s500ms"},
            },
            {
                "matches": [
                    {"path": {"type": "Exact", "value": "/exact/path-1_~!$&'()*+,;=:@%2A"}},
                    {"path": {"type": "RegularExpression", "value": "/re/(a|b)+"}},
                ],
                "filters": [
                    redirect(
                        scheme="https",
                        hostname="c.example.com",
                        port=8443,
                        statusCode=308,
                        path={"type": "ReplaceFullPath", "replaceFullPath": "/new"},
                    )
                ],
            },
        ],
    }
)

VALID_GATEWAY = gateway(
    listener(),
    listener(
        "https",
        443,
        "HTTPS",
        hostname="*.example.com",
        tls={"certificateRefs": [{"name": "cert"}, {"name": "c2", "namespace": "certs"}]},
    ),
    listener("https-opts", 8443, "HTTPS", tls={"mode": "Terminate", "options": {"example.com/cert-map": "m"}}),
    listener("tls", 443, "TLS", hostname="tls.example.com", tls={"mode": "Passthrough"}),
    listener("tcp", 9000, "TCP"),
    listener("custom", 9001, "example.com/proto"),
    listener(
        "sel",
        8080,
        "HTTP",
        allowedRoutes={
            "namespaces": {"from": "Selector", "selector": {"matchLabels": {"a": "b"}}},
            "kinds": [{"kind": "HTTPRoute"}],
        },
    ),
    addresses=[
        {"value": "10.0.0.1"},
        {"type": "IPAddress", "value": "1111:2222:3333:4444::"},
        {"type": "Hostname", "value": "lb.example.com"},
        {"type": "example.com/custom", "value": "x"},
    ],
    infrastructure={
        "labels": {"example.com/team": "a", "tier": ""},
        "annotations": {"example.com/note": "n"},
        "parametersRef": {"group": "example.com", "kind": "Params", "name": "p"},
    },
)


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(VALID_ROUTE, id="httproute"),
        pytest.param(route({}), id="httproute-defaults"),
        pytest.param(VALID_GATEWAY, id="gateway"),
        pytest.param(
            gateway_class(
                description="the mirrorgate class",
                parametersRef={"group": "", "kind": "ConfigMap", "name": "c", "namespace": "default"},
            ),
            id="gatewayclass",
        ),
        pytest.param(grant(to=[{"group": "", "kind": "Service", "name": "web"}]), id="referencegrant"),
        pytest.param(
            service(
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "admin", "port": 9000, "targetPort": "admin-port", "appProtocol": "kubernetes.io/h2c"},
                clusterIP="10.96.0.10",
            ),
            id="service",
        ),
        pytest.param(service(clusterIP="None"), id="service-headless-no-ports"),
        pytest.param(service(clusterIPs=["None"]), id="service-headless-via-cluster-ips"),
        pytest.param(service({"port": 80, "targetPort": 0}), id="service-targetport-defaults-to-port"),
        pytest.param(service(type="ExternalName", externalName="db.example.com."), id="service-externalname"),
        pytest.param(
            slice_(
                endpoints=[{"addresses": ["10.1.2.3"], "hostname": "pod-a", "nodeName": "node-1"}],
                ports=[{"name": "http", "port": 8080}, {"name": "admin", "port": 9000}],
            ),
            id="endpointslice",
        ),
        pytest.param(
            slice_(endpoints=[{"addresses": ["127.0.0.1"]}], ports=[{"port": 8080}]),
            id="endpointslice-loopback-accepted",
        ),
        pytest.param(slice_("IPv6", [{"addresses": ["2001:db8::1"]}]), id="endpointslice-ipv6"),
        pytest.param(slice_("FQDN", [{"addresses": ["backend.example.com"]}]), id="endpointslice-fqdn"),
        pytest.param(
            endpoints(
                {
                    "addresses": [{"ip": "10.0.0.5"}],
                    "notReadyAddresses": [{"ip": "2001:db8::2"}],
                    "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
                }
            ),
            id="endpoints",
        ),
        pytest.param(namespace("team-a"), id="namespace"),
    ],
)
def test_valid_object_is_admitted(obj: Resource) -> None:
    assert admit(obj) == []


# Mirroring specifics (GEP-3171, PR #2199: RequestMirror may repeat since v0.8.0).
@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(
            filters_route(mirror(), mirror(percent=5), mirror(fraction={"numerator": 1})), id="several-mirrors-in-rule"
        ),
        pytest.param(backend_filters_route(mirror(), mirror()), id="mirror-repeated-in-backendref-filters"),
        pytest.param(filters_route(mirror(percent=0)), id="percent-0"),
        pytest.param(filters_route(mirror(percent=100)), id="percent-100"),
        pytest.param(filters_route(mirror(fraction={"numerator": 100, "denominator": 100})), id="fraction-100-of-100"),
        pytest.param(filters_route(mirror(fraction={"numerator": 0, "denominator": 7})), id="fraction-0-of-7"),
        pytest.param(filters_route(mirror(fraction={"numerator": 100})), id="fraction-denominator-defaults-100"),
        pytest.param(
            filters_route(
                {
                    "type": "RequestMirror",
                    "requestMirror": {"backendRef": {"group": "example.com", "kind": "Bucket", "name": "b"}},
                }
            ),
            id="non-service-mirror-no-port",
        ),
        pytest.param(
            rule_route(timeouts={"request": "0s", "backendRequest": "1s"}), id="backendrequest-with-request-0s"
        ),
        pytest.param(rule_route(timeouts={"request": "1s", "backendRequest": "1s"}), id="equal-timeouts"),
        pytest.param(rule_route(timeouts={"request": "1h", "backendRequest": "59m59s999ms"}), id="units-compared"),
        pytest.param(filters_route(flt("ExtensionRef"), flt("ExtensionRef")), id="extensionref-repeats"),
        pytest.param(
            filters_route(redirect(path={"type": "ReplacePrefixMatch", "replacePrefixMatch": "/x"})),
            id="replaceprefix-with-default-pathprefix-match",
        ),
    ],
)
def test_allowed(obj: Resource) -> None:
    assert admit(obj) == []


# --- HTTPRoute: parentRefs and hostnames ----------------------------------------------------------

PR = "spec.parentRefs"

PARENT_REF_CASES = [
    pytest.param(
        route({"parentRefs": [{"name": f"g{i}"} for i in range(33)]}),
        [(PR, "Too many: 33: must have at most 32 items"), GATE],
        id="max-32",
    ),
    pytest.param(
        route({"parentRefs": [{"name": ""}]}),
        [(f"{PR}[0].name", f'Invalid value: "": {PR}[0].name in body should be at least 1 chars long')],
        id="name-min-length",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "n" * 254}]}),
        [(f"{PR}[0].name", "Too long: may not be more than 253 bytes"), GATE],
        id="name-max-length",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "g", "group": "Gateway.io"}]}),
        [(f"{PR}[0].group", f"Invalid value: \"Gateway.io\": {PR}[0].group in body should match '{GROUP_RE}'")],
        id="group",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "g", "kind": "1Gateway"}]}),
        [(f"{PR}[0].kind", f"Invalid value: \"1Gateway\": {PR}[0].kind in body should match '{KIND_RE}'")],
        id="kind-pattern",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "g", "kind": "K" * 64}]}),
        [(f"{PR}[0].kind", "Too long: may not be more than 63 bytes"), GATE],
        id="kind-max-length",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "g", "namespace": "Infra"}]}),
        [(f"{PR}[0].namespace", f"Invalid value: \"Infra\": {PR}[0].namespace in body should match '{NS_RE}'")],
        id="namespace",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "g", "sectionName": "Http"}]}),
        [(f"{PR}[0].sectionName", f"Invalid value: \"Http\": {PR}[0].sectionName in body should match '{PRECISE_RE}'")],
        id="section-name",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "g", "port": 0}]}),
        [(f"{PR}[0].port", f"Invalid value: 0: {PR}[0].port in body should be greater than or equal to 1")],
        id="port-min",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "g", "port": 65536}]}),
        [(f"{PR}[0].port", f"Invalid value: 65536: {PR}[0].port in body should be less than or equal to 65535")],
        id="port-max",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "g"}, {"name": "g", "sectionName": "a"}]}),
        [(PR, ARR + "sectionName must be specified when parentRefs includes 2 or more references to the same parent")],
        id="section-name-specified",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "g", "sectionName": "a"}, {"name": "g", "sectionName": "a"}]}),
        [(PR, ARR + "sectionName must be unique when parentRefs includes 2 or more references to the same parent")],
        id="section-name-unique",
    ),
    pytest.param(
        route({"parentRefs": [{"name": "g"}, {"name": "g"}]}),
        [(PR, ARR + "sectionName must be unique when parentRefs includes 2 or more references to the same parent")],
        id="same-parent-twice",
    ),
    pytest.param(
        route(
            {
                "parentRefs": [
                    {"name": "g"},
                    {"name": "g", "namespace": "other"},
                    {"name": "g", "kind": "Service", "group": ""},
                ]
            }
        ),
        [],
        id="distinct-parents",
    ),
    pytest.param(
        route({"hostnames": [f"h{i}.example.com" for i in range(17)]}),
        [("spec.hostnames", "Too many: 17: must have at most 16 items"), GATE],
        id="hostnames-max-16",
    ),
    pytest.param(
        route({"hostnames": ["Foo.com"]}),
        [("spec.hostnames[0]", f"Invalid value: \"Foo.com\": spec.hostnames[0] in body should match '{HOSTNAME_RE}'")],
        id="hostname-pattern",
    ),
    pytest.param(
        route({"hostnames": ["foo.*.com"]}),
        [
            (
                "spec.hostnames[0]",
                f"Invalid value: \"foo.*.com\": spec.hostnames[0] in body should match '{HOSTNAME_RE}'",
            )
        ],
        id="hostname-inner-wildcard",
    ),
    pytest.param(
        route({"hostnames": ["a" * 254]}),
        [("spec.hostnames[0]", "Too long: may not be more than 253 bytes"), GATE],
        id="hostname-max-length",
    ),
    pytest.param(
        route({"hostnames": ["example.com\n"]}),
        [
            (
                "spec.hostnames[0]",
                f"Invalid value: \"example.com\\n\": spec.hostnames[0] in body should match '{HOSTNAME_RE}'",
            )
        ],
        id="hostname-trailing-newline-go-dollar",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), PARENT_REF_CASES)
def test_parent_refs_and_hostnames(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


# --- HTTPRoute: rules and matches ---------------------------------------------------------------

M0 = "spec.rules[0].matches[0]"
P0 = f"{M0}.path"
WHEN = "when type one of ['Exact', 'PathPrefix']"
PATH_CHARS = (
    "must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$) "
    "for types ['Exact', 'PathPrefix']"
)
TOTAL = (
    "While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a "
    "route must be less than 128"
)


def many_matches(n: int) -> list[dict[str, Any]]:
    return [{"path": {"type": "Exact", "value": f"/p{i}"}} for i in range(n)]


RULE_CASES = [
    pytest.param(
        route({"rules": []}),
        [("spec.rules", "Invalid value: 0: spec.rules in body should have at least 1 items")],
        id="rules-min-1",
    ),
    pytest.param(
        route({"rules": [{}] * 17}),
        [("spec.rules", "Too many: 17: must have at most 16 items"), GATE],
        id="rules-max-16",
    ),
    pytest.param(
        route({"rules": [{"matches": many_matches(43)}] * 3}), [("spec.rules", ARR + TOTAL)], id="total-matches-129"
    ),
    pytest.param(route({"rules": [{"matches": many_matches(64)}] * 2}), [], id="total-matches-128-allowed"),
    pytest.param(
        rule_route(matches=many_matches(65)),
        [("spec.rules[0].matches", "Too many: 65: must have at most 64 items"), GATE],
        id="matches-max-64",
    ),
    pytest.param(
        rule_route(name="Primary"),
        [(f"{R0}.name", f"Invalid value: \"Primary\": {R0}.name in body should match '{PRECISE_RE}'")],
        id="rule-name-pattern",
    ),
    pytest.param(
        rule_route(name="r" * 254),
        [(f"{R0}.name", "Too long: may not be more than 253 bytes"), GATE],
        id="rule-name-max-length",
    ),
    pytest.param(
        match_route(path={"type": "Foo"}),
        [
            (f"{P0}.type", 'Unsupported value: "Foo": supported values: "Exact", "PathPrefix", "RegularExpression"'),
            GATE,
        ],
        id="path-type-enum",
    ),
    pytest.param(
        path_route("PathPrefix", "/" + "a" * 1024),
        [(f"{P0}.value", "Too long: may not be more than 1024 bytes"), GATE],
        id="path-value-max-1024",
    ),
    pytest.param(
        path_route("Exact", "foo"),
        [(P0, OBJ + f"value must be an absolute path and start with '/' {WHEN}")],
        id="path-absolute",
    ),
    pytest.param(
        path_route("PathPrefix", "/a//b"), [(P0, OBJ + f"must not contain '//' {WHEN}")], id="path-double-slash"
    ),
    pytest.param(path_route("Exact", "/a/./b"), [(P0, OBJ + f"must not contain '/./' {WHEN}")], id="path-dot"),
    pytest.param(path_route("Exact", "/a/../b"), [(P0, OBJ + f"must not contain '/../' {WHEN}")], id="path-dotdot"),
    pytest.param(path_route("Exact", "/a%2fb"), [(P0, OBJ + f"must not contain '%2f' {WHEN}")], id="path-%2f"),
    pytest.param(path_route("Exact", "/a%2Fb"), [(P0, OBJ + f"must not contain '%2F' {WHEN}")], id="path-%2F"),
    pytest.param(
        path_route("Exact", "/a#b"),
        [(P0, OBJ + f"must not contain '#' {WHEN}"), (P0, OBJ + PATH_CHARS)],
        id="path-hash",
    ),
    pytest.param(
        path_route("PathPrefix", "/a/.."), [(P0, OBJ + f"must not end with '/..' {WHEN}")], id="path-ends-dotdot"
    ),
    pytest.param(path_route("PathPrefix", "/a/."), [(P0, OBJ + f"must not end with '/.' {WHEN}")], id="path-ends-dot"),
    pytest.param(path_route("Exact", "/a b"), [(P0, OBJ + PATH_CHARS)], id="path-chars"),
    pytest.param(path_route("Exact", "/a%zz"), [(P0, OBJ + PATH_CHARS)], id="path-bad-percent-escape"),
    pytest.param(path_route("RegularExpression", "^/a b#$"), [], id="path-regex-unchecked"),
    pytest.param(
        match_route(headers=[{"name": f"h{i}", "value": "v"} for i in range(17)]),
        [(f"{M0}.headers", "Too many: 17: must have at most 16 items"), GATE],
        id="headers-max-16",
    ),
    pytest.param(
        match_route(headers=[{"name": "x-a", "value": "1"}, {"name": "x-a", "value": "2"}]),
        [(f"{M0}.headers[1]", 'Duplicate value: {"name":"x-a"}')],
        id="headers-duplicate-name",
    ),
    pytest.param(
        match_route(headers=[{"name": "x-a", "value": "1"}, {"name": "X-A", "value": "2"}]),
        [],
        id="headers-names-differ-in-case",
    ),
    pytest.param(
        match_route(headers=[{"name": "x a", "value": "1"}]),
        [(f"{M0}.headers[0].name", f"Invalid value: \"x a\": {M0}.headers[0].name in body should match '{HEADER_RE}'")],
        id="header-name-pattern",
    ),
    pytest.param(
        match_route(headers=[{"name": "h" * 257, "value": "1"}]),
        [(f"{M0}.headers[0].name", "Too long: may not be more than 256 bytes"), GATE],
        id="header-name-len",
    ),
    pytest.param(
        match_route(headers=[{"name": "x", "value": ""}]),
        [
            (
                f"{M0}.headers[0].value",
                f'Invalid value: "": {M0}.headers[0].value in body should be at least 1 chars long',
            )
        ],
        id="header-value-min-1",
    ),
    pytest.param(
        match_route(headers=[{"name": "x", "value": "v" * 4097}]),
        [(f"{M0}.headers[0].value", "Too long: may not be more than 4096 bytes"), GATE],
        id="header-value-max-4096",
    ),
    pytest.param(
        match_route(headers=[{"name": "x", "value": "1", "type": "Prefix"}]),
        [
            (f"{M0}.headers[0].type", 'Unsupported value: "Prefix": supported values: "Exact", "RegularExpression"'),
            GATE,
        ],
        id="header-type-enum",
    ),
    pytest.param(
        match_route(queryParams=[{"name": f"q{i}", "value": "v"} for i in range(17)]),
        [(f"{M0}.queryParams", "Too many: 17: must have at most 16 items"), GATE],
        id="query-max-16",
    ),
    pytest.param(
        match_route(
            queryParams=[{"name": "a", "value": "1"}, {"name": "a", "value": "2"}, {"name": "a", "value": "3"}]
        ),
        [(f"{M0}.queryParams[1]", 'Duplicate value: {"name":"a"}')],
        id="query-duplicate-reported-once",
    ),
    pytest.param(
        match_route(queryParams=[{"name": "a/b", "value": "1"}]),
        [
            (
                f"{M0}.queryParams[0].name",
                f"Invalid value: \"a/b\": {M0}.queryParams[0].name in body should match '{HEADER_RE}'",
            )
        ],
        id="query-name-pattern",
    ),
    pytest.param(
        match_route(queryParams=[{"name": "a", "value": ""}]),
        [
            (
                f"{M0}.queryParams[0].value",
                f'Invalid value: "": {M0}.queryParams[0].value in body should be at least 1 chars long',
            )
        ],
        id="query-value-min-1",
    ),
    pytest.param(
        match_route(queryParams=[{"name": "a", "value": "v" * 1025}]),
        [(f"{M0}.queryParams[0].value", "Too long: may not be more than 1024 bytes"), GATE],
        id="query-value-max-1024",
    ),
    pytest.param(
        match_route(queryParams=[{"name": "a", "value": "1", "type": "Contains"}]),
        [
            (
                f"{M0}.queryParams[0].type",
                'Unsupported value: "Contains": supported values: "Exact", "RegularExpression"',
            ),
            GATE,
        ],
        id="query-type-enum",
    ),
    pytest.param(
        match_route(method="get"),
        [
            (
                f"{M0}.method",
                'Unsupported value: "get": supported values: "GET", "HEAD", "POST", "PUT", '
                '"DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"',
            ),
            GATE,
        ],
        id="method-enum",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), RULE_CASES)
def test_rules_and_matches(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


# --- HTTPRoute: filters -------------------------------------------------------------------------

FS = "spec.rules[0].filters"
BF = "spec.rules[0].backendRefs[0].filters"


def guard_missing_cases() -> list[Any]:
    return [
        pytest.param(
            filters_route({"type": kind}),
            [(F0, OBJ + f"filter.{field} must be specified for {kind} filter.type")],
            id=f"missing-{field}",
        )
        for kind, (field, _value) in FILTER_FIELDS.items()
    ]


def guard_extra_cases() -> list[Any]:
    cases = []
    for kind, (field, value) in FILTER_FIELDS.items():
        host = "RequestHeaderModifier" if kind == "ExtensionRef" else "ExtensionRef"
        cases.append(
            pytest.param(
                filters_route({**flt(host), field: value}),
                [(F0, OBJ + f"filter.{field} must be nil if the filter.type is not {kind}")],
                id=f"extra-{field}",
            )
        )
    return cases


FILTER_CASES = [
    pytest.param(
        filters_route(*[flt("ExtensionRef")] * 17),
        [(FS, "Too many: 17: must have at most 16 items"), GATE],
        id="filters-max-16",
    ),
    pytest.param(
        filters_route({"type": "ExternalAuth"}),
        [
            (
                f"{F0}.type",
                'Unsupported value: "ExternalAuth": supported values: "RequestHeaderModifier", '
                '"ResponseHeaderModifier", "RequestMirror", "RequestRedirect", "URLRewrite", '
                '"ExtensionRef", "CORS"',
            ),
            GATE,
        ],
        id="filter-type-enum",
    ),
    pytest.param(
        filters_route({"type": "RequestMirror"}),
        [(F0, OBJ + "filter.requestMirror must be specified for RequestMirror filter.type")],
        id="mirror-must-be-specified",
    ),
    pytest.param(
        filters_route({**flt("RequestHeaderModifier"), "requestMirror": {"backendRef": {"name": "m", "port": 80}}}),
        [(F0, OBJ + "filter.requestMirror must be nil if the filter.type is not RequestMirror")],
        id="mirror-must-be-nil",
    ),
    *guard_missing_cases(),
    *guard_extra_cases(),
    pytest.param(
        filters_route(redirect(), flt("URLRewrite")),
        [
            (
                FS,
                ARR + "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but "
                "not both",
            )
        ],
        id="redirect-and-rewrite",
    ),
    pytest.param(
        backend_filters_route(redirect(), flt("URLRewrite")),
        [
            (
                BF,
                ARR + "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but "
                "not both",
            )
        ],
        id="backend-redirect-and-rewrite",
    ),
    *[
        pytest.param(
            filters_route(flt(kind), flt(kind)), [(FS, ARR + f"{kind} filter cannot be repeated")], id=f"repeat-{kind}"
        )
        for kind in ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "CORS")
    ],
    *[
        pytest.param(
            backend_filters_route(flt(kind), flt(kind)),
            [(BF, ARR + f"{kind} filter cannot be repeated")],
            id=f"backend-repeat-{kind}",
        )
        for kind in ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite", "CORS")
    ],
    pytest.param(
        backend_filters_route(*[mirror()] * 17),
        [(BF, "Too many: 17: must have at most 16 items"), GATE],
        id="backend-filters-max-16",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), FILTER_CASES)
def test_filters(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


# --- HTTPRoute: rule-level CEL (redirect with backends, replacePrefixMatch) ------------------------

PREFIX = {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/new"}
EXACT = [{"path": {"type": "Exact", "value": "/old"}}]
TWO_PREFIXES = [{"path": {"value": "/a"}}, {"path": {"value": "/b"}}]
REDIRECT_MSG = (
    "When using RequestRedirect filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"
)
REWRITE_MSG = (
    "When using URLRewrite filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified"
)

RULE_CEL_CASES = [
    pytest.param(
        rule_route(filters=[redirect()], backendRefs=[{"name": "s", "port": 80}]),
        [(R0, OBJ + "RequestRedirect filter must not be used together with backendRefs")],
        id="redirect-with-backendrefs",
    ),
    pytest.param(
        rule_route(backendRefs=[{"name": "s", "port": 80, "filters": [redirect()]}]),
        [],
        id="redirect-inside-backendref-allowed",
    ),
    pytest.param(
        rule_route(filters=[redirect(path=PREFIX)], matches=EXACT),
        [(R0, OBJ + REDIRECT_MSG)],
        id="redirect-prefix-exact-match",
    ),
    pytest.param(
        rule_route(filters=[redirect(path=PREFIX)], matches=TWO_PREFIXES),
        [(R0, OBJ + REDIRECT_MSG)],
        id="redirect-prefix-two-matches",
    ),
    pytest.param(
        rule_route(filters=[{"type": "URLRewrite", "urlRewrite": {"path": PREFIX}}], matches=EXACT),
        [(R0, OBJ + REWRITE_MSG)],
        id="rewrite-prefix-exact-match",
    ),
    pytest.param(
        rule_route(backendRefs=[{"name": "s", "port": 80, "filters": [redirect(path=PREFIX)]}], matches=EXACT),
        [
            (
                R0,
                OBJ + "Within backendRefs, when using RequestRedirect filter with path.replacePrefixMatch, "
                "exactly one PathPrefix match must be specified",
            )
        ],
        id="backend-redirect-prefix",
    ),
    pytest.param(
        rule_route(
            backendRefs=[
                {"name": "s", "port": 80, "filters": [{"type": "URLRewrite", "urlRewrite": {"path": PREFIX}}]}
            ],
            matches=TWO_PREFIXES,
        ),
        [
            (
                R0,
                OBJ + "Within backendRefs, When using URLRewrite filter with path.replacePrefixMatch, exactly "
                "one PathPrefix match must be specified",
            )
        ],
        id="backend-rewrite-prefix-capital-when",
    ),
    pytest.param(
        rule_route(filters=[redirect(path=PREFIX), redirect(path=PREFIX)], matches=EXACT),
        [(FS, ARR + "RequestRedirect filter cannot be repeated")],
        id="exists-one-semantics",
    ),
    pytest.param(
        rule_route(filters=[redirect(path={"type": "ReplaceFullPath", "replaceFullPath": "/x"})], matches=EXACT),
        [],
        id="replace-full-path-any-match",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), RULE_CEL_CASES)
def test_rule_cel(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


# --- HTTPRoute: filter bodies -------------------------------------------------------------------

RH = f"{F0}.requestHeaderModifier"
MI = f"{F0}.requestMirror"
RD = f"{F0}.requestRedirect"
UP = f"{F0}.urlRewrite.path"
CO = f"{F0}.cors"

FILTER_BODY_CASES = [
    pytest.param(
        header_filter(set=[{"name": f"h{i}", "value": "v"} for i in range(17)]),
        [(f"{RH}.set", "Too many: 17: must have at most 16 items"), GATE],
        id="header-set-max-16",
    ),
    pytest.param(
        header_filter(add=[{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]),
        [(f"{RH}.add[1]", 'Duplicate value: {"name":"a"}')],
        id="header-add-duplicate",
    ),
    pytest.param(
        header_filter(remove=["a", "b", "a"]), [(f"{RH}.remove[2]", 'Duplicate value: "a"')], id="header-remove-set"
    ),
    pytest.param(
        header_filter(remove=[f"h{i}" for i in range(17)]),
        [(f"{RH}.remove", "Too many: 17: must have at most 16 items"), GATE],
        id="header-remove-max-16",
    ),
    pytest.param(
        header_filter(set=[{"name": ":authority", "value": "v"}]),
        [(f"{RH}.set[0].name", f"Invalid value: \":authority\": {RH}.set[0].name in body should match '{HEADER_RE}'")],
        id="header-set-name-pattern",
    ),
    pytest.param(
        header_filter(add=[{"name": "a", "value": ""}]),
        [(f"{RH}.add[0].value", f'Invalid value: "": {RH}.add[0].value in body should be at least 1 chars long')],
        id="header-add-value-min-1",
    ),
    pytest.param(
        header_filter(set=[{"name": "a", "value": "v" * 4097}]),
        [(f"{RH}.set[0].value", "Too long: may not be more than 4096 bytes"), GATE],
        id="header-set-value-max-4096",
    ),
    pytest.param(
        filters_route(mirror(percent=101)),
        [(f"{MI}.percent", f"Invalid value: 101: {MI}.percent in body should be less than or equal to 100")],
        id="percent-max-100",
    ),
    pytest.param(
        filters_route(mirror(percent=-1)),
        [(f"{MI}.percent", f"Invalid value: -1: {MI}.percent in body should be greater than or equal to 0")],
        id="percent-min-0",
    ),
    pytest.param(
        filters_route(mirror(fraction={"numerator": 0, "denominator": 0})),
        [
            (
                f"{MI}.fraction.denominator",
                f"Invalid value: 0: {MI}.fraction.denominator in body should be greater than or equal to 1",
            )
        ],
        id="denominator-min-1",
    ),
    pytest.param(
        filters_route(mirror(fraction={"numerator": -1, "denominator": 10})),
        [
            (
                f"{MI}.fraction.numerator",
                f"Invalid value: -1: {MI}.fraction.numerator in body should be greater than or equal to 0",
            )
        ],
        id="numerator-min-0",
    ),
    pytest.param(
        filters_route(mirror(fraction={"numerator": 8, "denominator": 7})),
        [(f"{MI}.fraction", OBJ + "numerator must be less than or equal to denominator")],
        id="numerator-le-denominator",
    ),
    pytest.param(
        filters_route(mirror(fraction={"numerator": 101})),
        [(f"{MI}.fraction", OBJ + "numerator must be less than or equal to denominator")],
        id="numerator-le-default-denominator",
    ),
    pytest.param(
        filters_route(mirror(percent=50, fraction={"numerator": 1})),
        [(MI, OBJ + "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter")],
        id="percent-and-fraction",
    ),
    pytest.param(
        filters_route({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m"}}}),
        [(f"{MI}.backendRef", OBJ + "Must have port for Service reference")],
        id="mirror-needs-port",
    ),
    pytest.param(
        filters_route(
            {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "m", "port": 0, "namespace": "A"}}}
        ),
        [
            (
                f"{MI}.backendRef.namespace",
                f"Invalid value: \"A\": {MI}.backendRef.namespace in body should match '{NS_RE}'",
            ),
            (
                f"{MI}.backendRef.port",
                f"Invalid value: 0: {MI}.backendRef.port in body should be greater than or equal to 1",
            ),
        ],
        id="mirror-backendref-fields",
    ),
    pytest.param(
        filters_route(redirect(scheme="ftp")),
        [(f"{RD}.scheme", 'Unsupported value: "ftp": supported values: "http", "https"'), GATE],
        id="redirect-scheme-enum",
    ),
    pytest.param(
        filters_route(redirect(hostname="*.example.com")),
        [(f"{RD}.hostname", f"Invalid value: \"*.example.com\": {RD}.hostname in body should match '{PRECISE_RE}'")],
        id="redirect-hostname-precise",
    ),
    pytest.param(
        filters_route(redirect(port=70000)),
        [(f"{RD}.port", f"Invalid value: 70000: {RD}.port in body should be less than or equal to 65535")],
        id="redirect-port",
    ),
    pytest.param(
        filters_route(redirect(statusCode=304)),
        [(f"{RD}.statusCode", 'Unsupported value: 304: supported values: "301", "302", "303", "307", "308"'), GATE],
        id="redirect-status-enum",
    ),
    pytest.param(
        filters_route({"type": "URLRewrite", "urlRewrite": {"hostname": "Example.com"}}),
        [
            (
                f"{F0}.urlRewrite.hostname",
                f"Invalid value: \"Example.com\": {F0}.urlRewrite.hostname in body should match '{PRECISE_RE}'",
            )
        ],
        id="rewrite-hostname",
    ),
    pytest.param(
        filters_route(rewrite_path(type="ReplaceFullPath")),
        [(UP, OBJ + "replaceFullPath must be specified when type is set to 'ReplaceFullPath'")],
        id="modifier-full-path-missing",
    ),
    pytest.param(
        filters_route(rewrite_path(type="ReplacePrefixMatch")),
        [(UP, OBJ + "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'")],
        id="modifier-prefix-missing",
    ),
    pytest.param(
        filters_route(rewrite_path(type="ReplaceFullPath", replaceFullPath="/a", replacePrefixMatch="/b")),
        [(UP, OBJ + "type must be 'ReplacePrefixMatch' when replacePrefixMatch is set")],
        id="modifier-prefix-with-wrong-type",
    ),
    pytest.param(
        filters_route(rewrite_path(type="ReplacePrefixMatch", replaceFullPath="/a")),
        [
            (UP, OBJ + "type must be 'ReplaceFullPath' when replaceFullPath is set"),
            (UP, OBJ + "replacePrefixMatch must be specified when type is set to 'ReplacePrefixMatch'"),
        ],
        id="modifier-full-with-wrong-type",
    ),
    pytest.param(
        filters_route(rewrite_path(type="ReplaceFullPath", replaceFullPath="/" * 1025)),
        [(f"{UP}.replaceFullPath", "Too long: may not be more than 1024 bytes"), GATE],
        id="modifier-full-path-max-1024",
    ),
    pytest.param(
        filters_route(rewrite_path(type="Replace", replaceFullPath="/a")),
        [
            (f"{UP}.type", 'Unsupported value: "Replace": supported values: "ReplaceFullPath", "ReplacePrefixMatch"'),
            GATE,
        ],
        id="modifier-type-enum",
    ),
    pytest.param(
        filters_route({**flt("ExtensionRef"), "extensionRef": {"group": "Ex", "kind": "-F", "name": ""}}),
        [
            (
                f"{F0}.extensionRef.group",
                f"Invalid value: \"Ex\": {F0}.extensionRef.group in body should match '{GROUP_RE}'",
            ),
            (
                f"{F0}.extensionRef.kind",
                f"Invalid value: \"-F\": {F0}.extensionRef.kind in body should match '{KIND_RE}'",
            ),
            (
                f"{F0}.extensionRef.name",
                f'Invalid value: "": {F0}.extensionRef.name in body should be at least 1 chars long',
            ),
        ],
        id="extensionref-fields",
    ),
    pytest.param(
        cors(allowOrigins=[f"https://h{i}.example.com" for i in range(65)]),
        [(f"{CO}.allowOrigins", "Too many: 65: must have at most 64 items"), GATE],
        id="cors-origins-max-64",
    ),
    pytest.param(
        cors(allowOrigins=["example.com"]),
        [
            (
                f"{CO}.allowOrigins[0]",
                f"Invalid value: \"example.com\": {CO}.allowOrigins[0] in body should match '{CORS_ORIGIN_RE}'",
            )
        ],
        id="cors-origin-pattern",
    ),
    pytest.param(
        cors(allowOrigins=["*", "https://a.example.com"]),
        [(f"{CO}.allowOrigins", ARR + "AllowOrigins cannot contain '*' alongside other origins")],
        id="cors-origin-wildcard-alone",
    ),
    pytest.param(
        cors(allowOrigins=["https://a.example.com", "https://a.example.com"]),
        [(f"{CO}.allowOrigins[1]", 'Duplicate value: "https://a.example.com"')],
        id="cors-origins-set",
    ),
    pytest.param(
        cors(allowMethods=["GET", "*"]),
        [(f"{CO}.allowMethods", ARR + "AllowMethods cannot contain '*' alongside other methods")],
        id="cors-method-wildcard-alone",
    ),
    pytest.param(
        cors(allowMethods=["FETCH"]),
        [
            (
                f"{CO}.allowMethods[0]",
                'Unsupported value: "FETCH": supported values: "GET", "HEAD", "POST", '
                '"PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "*"',
            ),
            GATE,
        ],
        id="cors-method-enum",
    ),
    pytest.param(
        cors(allowMethods=["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "*"]),
        [(f"{CO}.allowMethods", "Too many: 10: must have at most 9 items"), GATE],
        id="cors-methods-max-9",
    ),
    pytest.param(
        cors(allowHeaders=["x a"]),
        [(f"{CO}.allowHeaders[0]", f"Invalid value: \"x a\": {CO}.allowHeaders[0] in body should match '{HEADER_RE}'")],
        id="cors-allow-header-pattern",
    ),
    pytest.param(
        cors(exposeHeaders=["x-a", "x-a"]),
        [(f"{CO}.exposeHeaders[1]", 'Duplicate value: "x-a"')],
        id="cors-expose-headers-set",
    ),
    pytest.param(
        cors(exposeHeaders=[f"x-{i}" for i in range(65)]),
        [(f"{CO}.exposeHeaders", "Too many: 65: must have at most 64 items"), GATE],
        id="cors-expose-max-64",
    ),
    pytest.param(
        cors(maxAge=0),
        [(f"{CO}.maxAge", f"Invalid value: 0: {CO}.maxAge in body should be greater than or equal to 1")],
        id="cors-max-age-min-1",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), FILTER_BODY_CASES)
def test_filter_bodies(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


# --- HTTPRoute: backendRefs and timeouts --------------------------------------------------------

B0 = "spec.rules[0].backendRefs[0]"
TO = "spec.rules[0].timeouts"
TIMEOUT_MSG = "backendRequest timeout cannot be longer than request timeout"


def backend_route(**ref: Any) -> Resource:
    return rule_route(backendRefs=[{"name": "s", "port": 80, **ref}])


BACKEND_CASES = [
    pytest.param(
        rule_route(backendRefs=[{"name": f"s{i}", "port": 80} for i in range(17)]),
        [("spec.rules[0].backendRefs", "Too many: 17: must have at most 16 items"), GATE],
        id="backendrefs-max-16",
    ),
    pytest.param(
        rule_route(backendRefs=[{"name": "s"}]),
        [(B0, OBJ + "Must have port for Service reference")],
        id="service-needs-port",
    ),
    pytest.param(
        backend_route(weight=-1),
        [(f"{B0}.weight", f"Invalid value: -1: {B0}.weight in body should be greater than or equal to 0")],
        id="weight-min-0",
    ),
    pytest.param(
        backend_route(weight=1000001),
        [(f"{B0}.weight", f"Invalid value: 1000001: {B0}.weight in body should be less than or equal to 1000000")],
        id="weight-max",
    ),
    pytest.param(
        backend_route(port=65536),
        [(f"{B0}.port", f"Invalid value: 65536: {B0}.port in body should be less than or equal to 65535")],
        id="port-max",
    ),
    pytest.param(
        backend_route(name=""),
        [(f"{B0}.name", f'Invalid value: "": {B0}.name in body should be at least 1 chars long')],
        id="name-min-1",
    ),
    pytest.param(
        backend_route(group="Apps", kind="Svc_1"),
        [
            (f"{B0}.group", f"Invalid value: \"Apps\": {B0}.group in body should match '{GROUP_RE}'"),
            (f"{B0}.kind", f"Invalid value: \"Svc_1\": {B0}.kind in body should match '{KIND_RE}'"),
        ],
        id="group-kind",
    ),
    pytest.param(
        backend_route(namespace="n" * 64),
        [(f"{B0}.namespace", "Too long: may not be more than 63 bytes"), GATE],
        id="namespace-max-63",
    ),
    pytest.param(
        rule_route(timeouts={"request": "1.5s"}),
        [(f"{TO}.request", f"Invalid value: \"1.5s\": {TO}.request in body should match '{DURATION_RE}'")],
        id="duration-pattern",
    ),
    pytest.param(
        rule_route(timeouts={"backendRequest": "100000s"}),
        [
            (
                f"{TO}.backendRequest",
                f"Invalid value: \"100000s\": {TO}.backendRequest in body should match '{DURATION_RE}'",
            )
        ],
        id="duration-max-5-digits",
    ),
    pytest.param(
        rule_route(timeouts={"request": "1s", "backendRequest": "2s"}),
        [(TO, OBJ + TIMEOUT_MSG)],
        id="backend-longer-than-request",
    ),
    pytest.param(
        rule_route(timeouts={"request": "1m", "backendRequest": "1m1ms"}),
        [(TO, OBJ + TIMEOUT_MSG)],
        id="compared-as-durations",
    ),
    pytest.param(
        rule_route(timeouts={"request": "10x", "backendRequest": "1s"}),
        [
            (f"{TO}.request", f"Invalid value: \"10x\": {TO}.request in body should match '{DURATION_RE}'"),
            (TO, OBJ + f'time: unknown unit "x" in duration "10x" evaluating rule: {TIMEOUT_MSG}'),
        ],
        id="cel-evaluation-error",
    ),
    pytest.param(
        rule_route(timeouts={"request": "1s", "backendRequest": "1"}),
        [
            (f"{TO}.backendRequest", f"Invalid value: \"1\": {TO}.backendRequest in body should match '{DURATION_RE}'"),
            (TO, OBJ + f'time: missing unit in duration "1" evaluating rule: {TIMEOUT_MSG}'),
        ],
        id="cel-evaluation-error-missing-unit",
    ),
    pytest.param(
        rule_route(timeouts={"request": "0s", "backendRequest": "bogus"}),
        [
            (
                f"{TO}.backendRequest",
                f"Invalid value: \"bogus\": {TO}.backendRequest in body should match '{DURATION_RE}'",
            )
        ],
        id="request-0s-short-circuits",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), BACKEND_CASES)
def test_backend_refs_and_timeouts(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


# --- Gateway and GatewayClass -------------------------------------------------------------------

LS = "spec.listeners"
L0 = "spec.listeners[0]"
AD = "spec.addresses"
INF = "spec.infrastructure"

GATEWAY_CASES = [
    pytest.param(
        convert(
            {
                "apiVersion": GW,
                "kind": "Gateway",
                "metadata": {"name": "g"},
                "spec": {"gatewayClassName": "mg", "listeners": []},
            },
            Gateway,
        ),
        [(LS, f"Invalid value: 0: {LS} in body should have at least 1 items")],
        id="listeners-min-1",
    ),
    pytest.param(
        gateway(*[listener(f"l{i}", 1000 + i) for i in range(65)]),
        [(LS, "Too many: 65: must have at most 64 items"), GATE],
        id="listeners-max-64",
    ),
    pytest.param(
        gateway(listener("Http")),
        [(f"{L0}.name", f"Invalid value: \"Http\": {L0}.name in body should match '{PRECISE_RE}'")],
        id="listener-name-pattern",
    ),
    pytest.param(
        gateway(listener("a", 80), listener("a", 81)),
        [(f"{LS}[1]", 'Duplicate value: {"name":"a"}'), (LS, ARR + "Listener name must be unique within the Gateway")],
        id="listener-name-unique",
    ),
    pytest.param(
        gateway(listener("a", 80), listener("b", 80)),
        [(LS, ARR + "Combination of port, protocol and hostname must be unique for each listener")],
        id="listener-combination-unique",
    ),
    pytest.param(
        gateway(
            listener("a", 80, hostname="a.example.com"), listener("b", 80, hostname="b.example.com"), listener("c", 80)
        ),
        [],
        id="listener-hostnames-distinguish",
    ),
    pytest.param(
        gateway(listener(port=0)),
        [(f"{L0}.port", f"Invalid value: 0: {L0}.port in body should be greater than or equal to 1")],
        id="listener-port",
    ),
    pytest.param(
        gateway(listener(protocol="http_2")),
        [(f"{L0}.protocol", f"Invalid value: \"http_2\": {L0}.protocol in body should match '{PROTOCOL_RE}'")],
        id="listener-protocol-pattern",
    ),
    pytest.param(
        gateway(listener(hostname="*")),
        [(f"{L0}.hostname", f"Invalid value: \"*\": {L0}.hostname in body should match '{HOSTNAME_RE}'")],
        id="listener-hostname-pattern",
    ),
    pytest.param(
        gateway(listener(tls={"certificateRefs": [{"name": "c"}]})),
        [(LS, ARR + "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']")],
        id="tls-on-http",
    ),
    pytest.param(
        gateway(listener("h", 443, "HTTPS", tls={"mode": "Passthrough"})),
        [(LS, ARR + "tls mode must be Terminate for protocol HTTPS")],
        id="https-passthrough",
    ),
    pytest.param(
        gateway(listener("t", 443, "TLS")),
        [(LS, ARR + "tls mode must be set for protocol TLS")],
        id="tls-protocol-needs-mode",
    ),
    pytest.param(
        gateway(listener("u", 53, "UDP", hostname="dns.example.com")),
        [(LS, ARR + "hostname must not be specified for protocols ['TCP', 'UDP']")],
        id="hostname-on-udp",
    ),
    pytest.param(
        gateway(listener("h", 443, "HTTPS", tls={})),
        [
            (
                f"{L0}.tls",
                OBJ + "no such key: certificateRefs evaluating rule: certificateRefs or options must "
                "be specified when mode is Terminate",
            )
        ],
        id="terminate-needs-certificates",
    ),
    pytest.param(
        gateway(listener("h", 443, "HTTPS", tls={"mode": "Reencrypt", "certificateRefs": [{"name": "c"}]})),
        [(f"{L0}.tls.mode", 'Unsupported value: "Reencrypt": supported values: "Terminate", "Passthrough"'), GATE],
        id="tls-mode-enum",
    ),
    pytest.param(
        gateway(listener("h", 443, "HTTPS", tls={"certificateRefs": [{"name": f"c{i}"} for i in range(65)]})),
        [(f"{L0}.tls.certificateRefs", "Too many: 65: must have at most 64 items"), GATE],
        id="certificate-refs-max-64",
    ),
    pytest.param(
        gateway(listener("h", 443, "HTTPS", tls={"options": {f"example.com/o{i}": "v" for i in range(17)}})),
        [(f"{L0}.tls.options", "Too many: 17: must have at most 16 items"), GATE],
        id="tls-options-max-16",
    ),
    pytest.param(
        gateway(listener(allowedRoutes={"namespaces": {"from": "None"}})),
        [
            (
                f"{L0}.allowedRoutes.namespaces.from",
                'Unsupported value: "None": supported values: "All", "Selector", "Same"',
            ),
            GATE,
        ],
        id="allowed-routes-from-enum",
    ),
    pytest.param(
        gateway(listener(allowedRoutes={"kinds": [{"kind": f"K{i}"} for i in range(9)]})),
        [(f"{L0}.allowedRoutes.kinds", "Too many: 9: must have at most 8 items"), GATE],
        id="kinds-max-8",
    ),
    pytest.param(
        gateway(listener(allowedRoutes={"kinds": [{"kind": "HTTP Route"}]})),
        [
            (
                f"{L0}.allowedRoutes.kinds[0].kind",
                f"Invalid value: \"HTTP Route\": {L0}.allowedRoutes.kinds[0].kind in body should match '{KIND_RE}'",
            )
        ],
        id="kinds-kind-pattern",
    ),
    pytest.param(
        gateway(addresses=[{"value": f"10.0.0.{i}"} for i in range(17)]),
        [(AD, "Too many: 17: must have at most 16 items"), GATE],
        id="addresses-max-16",
    ),
    pytest.param(
        gateway(addresses=[{"value": "10.0.0.1"}, {"value": "10.0.0.1"}]),
        [(AD, ARR + "IPAddress values must be unique")],
        id="ip-addresses-unique",
    ),
    pytest.param(
        gateway(
            addresses=[{"type": "Hostname", "value": "a.example.com"}, {"type": "Hostname", "value": "a.example.com"}]
        ),
        [(AD, ARR + "Hostname values must be unique")],
        id="hostname-addresses-unique",
    ),
    pytest.param(
        gateway(addresses=[{"type": "Hostname", "value": "*foo/bar"}]),
        [(f"{AD}[0]", OBJ + f"Hostname value must be empty or contain only valid characters (matching {HOSTNAME_RE})")],
        id="hostname-address-characters",
    ),
    pytest.param(
        gateway(addresses=[{"value": "1.2.3.4:8080"}]),
        [
            (
                "<nil>",
                'Invalid value: "": "spec.addresses[0]" must validate one and only one schema (oneOf). '
                "Found none valid",
            ),
            ("<nil>", 'Invalid value: "": "spec.addresses[0].value" must validate at least one schema (anyOf)'),
            (
                f"{AD}[0].value",
                f'Invalid value: "1.2.3.4:8080": {AD}[0].value in body must be of type ipv4: "1.2.3.4:8080"',
            ),
            GATE,
        ],
        id="ip-address-format",
    ),
    pytest.param(
        gateway(addresses=[{"value": "::ffff:10.0.0.1"}, {"value": "010.0.0.2"}]), [], id="ip-address-legacy-parser"
    ),
    pytest.param(
        gateway(addresses=[{"type": "ip", "value": "x"}]),
        [(f"{AD}[0].type", f"Invalid value: \"ip\": {AD}[0].type in body should match '{ADDRESS_TYPE_RE}'")],
        id="address-type-pattern",
    ),
    pytest.param(
        gateway(addresses=[{"type": "Hostname", "value": "a" * 254}]),
        [(f"{AD}[0].value", "Too long: may not be more than 253 bytes"), GATE],
        id="address-value-max",
    ),
    pytest.param(
        convert(
            {
                "apiVersion": GW,
                "kind": "Gateway",
                "metadata": {"name": "g"},
                "spec": {"gatewayClassName": "", "listeners": [listener()]},
            },
            Gateway,
        ),
        [("spec.gatewayClassName", 'Invalid value: "": spec.gatewayClassName in body should be at least 1 chars long')],
        id="gateway-class-name",
    ),
    pytest.param(
        gateway(infrastructure={"labels": {f"l{i}": "v" for i in range(9)}}),
        [(f"{INF}.labels", "Too many: 9: must have at most 8 items"), GATE],
        id="infra-labels-max-8",
    ),
    pytest.param(
        gateway(infrastructure={"labels": {"-bad": "v"}}),
        [
            (
                f"{INF}.labels",
                OBJ + "Label keys must be in the form of an optional DNS subdomain prefix followed "
                "by a required name segment of up to 63 characters.",
            )
        ],
        id="infra-label-key",
    ),
    pytest.param(
        gateway(infrastructure={"annotations": {"a" * 253 + "/b": "v"}}),
        [
            (
                f"{INF}.annotations",
                OBJ + "If specified, the annotation key's prefix must be a DNS subdomain not "
                "longer than 253 characters in total.",
            )
        ],
        id="infra-annotation-prefix",
    ),
    pytest.param(
        gateway(infrastructure={"labels": {"a": "-v"}}),
        [(f"{INF}.labels.a", f"Invalid value: \"-v\": {INF}.labels.a in body should match '{LABEL_VALUE_RE}'")],
        id="infra-label-value",
    ),
    pytest.param(
        gateway(infrastructure={"parametersRef": {"group": "", "kind": "ConfigMap"}}),
        [(f"{INF}.parametersRef.name", "Required value"), GATE],
        id="infra-parameters-ref-required",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), GATEWAY_CASES)
def test_gateway(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


GATEWAY_CLASS_CASES = [
    pytest.param(
        gateway_class(controllerName="example.com"),
        [
            (
                "spec.controllerName",
                f"Invalid value: \"example.com\": spec.controllerName in body should match '{CONTROLLER_RE}'",
            )
        ],
        id="controller-name-needs-path",
    ),
    pytest.param(
        gateway_class(controllerName=""),
        [("spec.controllerName", 'Invalid value: "": spec.controllerName in body should be at least 1 chars long')],
        id="controller-name-min-1",
    ),
    pytest.param(
        gateway_class(controllerName="example.com/" + "c" * 242),
        [("spec.controllerName", "Too long: may not be more than 253 bytes"), GATE],
        id="controller-name-max-253",
    ),
    pytest.param(
        gateway_class(description="d" * 65),
        [("spec.description", "Too long: may not be more than 64 bytes"), GATE],
        id="description-max-64",
    ),
    pytest.param(
        gateway_class(parametersRef={"group": "", "kind": "Config Map", "name": "c"}),
        [
            (
                "spec.parametersRef.kind",
                f"Invalid value: \"Config Map\": spec.parametersRef.kind in body should match '{KIND_RE}'",
            )
        ],
        id="parameters-ref-kind",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), GATEWAY_CLASS_CASES)
def test_gateway_class(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


# --- ReferenceGrant (no CEL rules in its CRD, so no gate error) -----------------------------------

FROM0 = "spec.from[0]"
GRANT_CASES = [
    pytest.param(
        grant(**{"from": []}),
        [("spec.from", "Invalid value: 0: spec.from in body should have at least 1 items")],
        id="from-min-1",
    ),
    pytest.param(
        grant(to=[{"group": "", "kind": "Service"}] * 17),
        [("spec.to", "Too many: 17: must have at most 16 items")],
        id="to-max-16",
    ),
    pytest.param(
        grant(**{"from": [{"group": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "namespace": "default"}]}),
        [
            (
                f"{FROM0}.group",
                f"Invalid value: \"gateway.networking.k8s.io/v1\": {FROM0}.group in body should match '{GROUP_RE}'",
            )
        ],
        id="from-group",
    ),
    pytest.param(
        grant(**{"from": [{"group": "", "kind": "", "namespace": "Default"}]}),
        [
            (f"{FROM0}.kind", f'Invalid value: "": {FROM0}.kind in body should be at least 1 chars long'),
            (f"{FROM0}.namespace", f"Invalid value: \"Default\": {FROM0}.namespace in body should match '{NS_RE}'"),
        ],
        id="from-kind-namespace",
    ),
    pytest.param(
        grant(to=[{"group": "", "kind": "Service", "name": ""}]),
        [("spec.to[0].name", 'Invalid value: "": spec.to[0].name in body should be at least 1 chars long')],
        id="to-name",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), GRANT_CASES)
def test_reference_grant(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


# --- Core kinds ---------------------------------------------------------------------------------

SP0 = "spec.ports[0]"
PORT_RANGE = "must be between 1 and 65535, inclusive"

SERVICE_CASES = [
    pytest.param(
        service({"port": 0, "targetPort": 8080}), [(f"{SP0}.port", f"Invalid value: 0: {PORT_RANGE}")], id="port-0"
    ),
    pytest.param(
        service({"port": 0}),
        [(f"{SP0}.port", f"Invalid value: 0: {PORT_RANGE}"), (f"{SP0}.targetPort", f"Invalid value: 0: {PORT_RANGE}")],
        id="port-0-defaulted-target-port",
    ),
    pytest.param(
        service({"port": 65536, "targetPort": 80}),
        [(f"{SP0}.port", f"Invalid value: 65536: {PORT_RANGE}")],
        id="port-65536",
    ),
    pytest.param(
        service({"port": 80, "targetPort": 70000}),
        [(f"{SP0}.targetPort", f"Invalid value: 70000: {PORT_RANGE}")],
        id="target-port-number",
    ),
    pytest.param(
        service({"port": 80, "targetPort": "HTTP"}),
        [
            (
                f"{SP0}.targetPort",
                'Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
            ),
            (f"{SP0}.targetPort", 'Invalid value: "HTTP": must contain at least one letter (a-z)'),
        ],
        id="target-port-name-charset",
    ),
    pytest.param(
        service({"port": 80, "targetPort": "8080"}),
        [(f"{SP0}.targetPort", 'Invalid value: "8080": must contain at least one letter (a-z)')],
        id="target-port-numeric-string",
    ),
    pytest.param(
        service({"port": 80, "targetPort": "a--b"}),
        [(f"{SP0}.targetPort", 'Invalid value: "a--b": must not contain consecutive hyphens')],
        id="target-port-consecutive-hyphens",
    ),
    pytest.param(
        service({"port": 80, "targetPort": "-ab"}),
        [(f"{SP0}.targetPort", 'Invalid value: "-ab": must not begin or end with a hyphen')],
        id="target-port-hyphen-edge",
    ),
    pytest.param(
        service({"port": 80, "targetPort": "abcdefghijklmnop"}),
        [(f"{SP0}.targetPort", 'Invalid value: "abcdefghijklmnop": must be no more than 15 characters')],
        id="target-port-name-max-15",
    ),
    pytest.param(
        service({"name": "http", "port": 80}, {"port": 81}),
        [("spec.ports[1].name", "Required value")],
        id="port-names-required",
    ),
    pytest.param(
        service({"name": "http", "port": 80}, {"name": "http", "port": 81}),
        [("spec.ports[1].name", 'Duplicate value: "http"')],
        id="port-names-unique",
    ),
    pytest.param(
        service({"name": "Web", "port": 80}),
        [(f"{SP0}.name", f'Invalid value: "Web": {LABEL_MSG}')],
        id="port-name-label",
    ),
    pytest.param(
        service({"port": 80, "protocol": "HTTP"}),
        [(f"{SP0}.protocol", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"')],
        id="protocol-enum",
    ),
    pytest.param(
        service({"port": 80}, clusterIP="10.0.0.300"),
        [("spec.clusterIPs[0]", f'Invalid value: "10.0.0.300": {VALID_IP_MSG}')],
        id="cluster-ip",
    ),
    pytest.param(
        service({"port": 80}, clusterIPs=["None", "10.0.0.1"]),
        [("spec.clusterIPs", 'Invalid value: ["None","10.0.0.1"]: \'None\' must be the first and only value')],
        id="cluster-ips-none-alone",
    ),
    pytest.param(service(), [("spec.ports", "Required value")], id="ports-required"),
    pytest.param(
        service({"port": 80}, type="Internal"),
        [
            (
                "spec.type",
                'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", '
                '"LoadBalancer", "NodePort"',
            )
        ],
        id="type-enum",
    ),
    pytest.param(service(type="ExternalName"), [("spec.externalName", "Required value")], id="external-name-required"),
    pytest.param(
        service({"port": 80}, name="1-svc"),
        [("metadata.name", f'Invalid value: "1-svc": {DNS1035_MSG}')],
        id="name-dns-1035",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), SERVICE_CASES)
def test_service(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


ENDPOINT_CASES = [
    pytest.param(
        slice_("IP"),
        [("addressType", 'Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"')],
        id="slice-address-type",
    ),
    pytest.param(
        slice_("IPv4", [{"addresses": ["::1"]}]),
        [("endpoints[0].addresses[0]", 'Invalid value: "::1": must be a valid IPv4 address')],
        id="slice-ipv4",
    ),
    pytest.param(slice_("IPv4", [{"addresses": ["::ffff:10.0.0.1"]}]), [], id="slice-ipv4-mapped-is-ipv4"),
    pytest.param(
        slice_("IPv6", [{"addresses": ["10.0.0.1"]}]),
        [("endpoints[0].addresses[0]", 'Invalid value: "10.0.0.1": must be a valid IPv6 address')],
        id="slice-ipv6",
    ),
    pytest.param(
        slice_("FQDN", [{"addresses": ["backend"]}]),
        [
            (
                "endpoints[0].addresses[0]",
                'Invalid value: "backend": should be a domain with at least two segments separated by dots',
            )
        ],
        id="slice-fqdn-segments",
    ),
    pytest.param(
        slice_("FQDN", [{"addresses": ["Backend.example.com"]}]),
        [("endpoints[0].addresses[0]", f'Invalid value: "Backend.example.com": {SUBDOMAIN_MSG}')],
        id="slice-fqdn-subdomain",
    ),
    pytest.param(
        slice_("IPv4", [{"addresses": []}]),
        [("endpoints[0].addresses", "Required value: must contain at least 1 address")],
        id="slice-endpoint-needs-address",
    ),
    pytest.param(
        slice_("IPv4", [{"addresses": ["10.0.0.1"]}] * 1001),
        [("endpoints", "Too many: 1001: must have at most 1000 items")],
        id="slice-max-1000-endpoints",
    ),
    pytest.param(
        slice_(ports=[{"port": 80}, {"port": 81}]),
        [("ports[1].name", 'Duplicate value: ""')],
        id="slice-unnamed-ports-duplicate",
    ),
    pytest.param(
        slice_(ports=[{"name": "HTTP", "port": 80}]),
        [("ports[0].name", f'Invalid value: "HTTP": {LABEL_MSG}')],
        id="slice-port-name",
    ),
    pytest.param(
        slice_(ports=[{"name": "h", "port": 80, "protocol": "QUIC"}]),
        [("ports[0].protocol", 'Unsupported value: "QUIC": supported values: "SCTP", "TCP", "UDP"')],
        id="slice-port-protocol",
    ),
    pytest.param(
        endpoints({"addresses": [{"ip": "abc"}], "ports": [{"port": 80}]}),
        [("subsets[0].addresses[0].ip", f'Invalid value: "abc": {VALID_IP_MSG}')],
        id="endpoints-ip",
    ),
    pytest.param(
        endpoints({"ports": [{"port": 80}]}),
        [("subsets[0]", "Required value: must specify `addresses` or `notReadyAddresses`")],
        id="endpoints-subset-needs-addresses",
    ),
    pytest.param(
        endpoints({"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 0}]}),
        [("subsets[0].ports[0].port", f"Invalid value: 0: {PORT_RANGE}")],
        id="endpoints-port",
    ),
    pytest.param(
        endpoints({"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "a", "port": 80}, {"port": 81}]}),
        [("subsets[0].ports[1].name", "Required value")],
        id="endpoints-port-names",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), ENDPOINT_CASES)
def test_endpoints(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


# --- Metadata -----------------------------------------------------------------------------------

METADATA_CASES = [
    pytest.param(
        route({}, name="My_Route"),
        [("metadata.name", f'Invalid value: "My_Route": {SUBDOMAIN_MSG}')],
        id="route-name-subdomain",
    ),
    pytest.param(
        route({}, name="r" * 254),
        [("metadata.name", 'Invalid value: "' + "r" * 254 + '": must be no more than 253 characters')],
        id="route-name-length",
    ),
    pytest.param(
        route({}, namespace="Team"),
        [("metadata.namespace", f'Invalid value: "Team": {LABEL_MSG}')],
        id="namespace-label",
    ),
    pytest.param(
        namespace("team.a"),
        [("metadata.name", 'Invalid value: "team.a": must not contain dots')],
        id="namespace-name-no-dots",
    ),
    pytest.param(
        namespace("Team"), [("metadata.name", f'Invalid value: "Team": {LABEL_MSG}')], id="namespace-name-label"
    ),
    pytest.param(
        convert(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "a", "namespace": "", "labels": {"a/b/c": "x y"}},
            },
            Namespace,
        ),
        [
            (
                "metadata.labels",
                'Invalid value: "a/b/c": a qualified name must consist of alphanumeric '
                "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
                "subdomain prefix and '/' (e.g. 'example.com/MyName')",
            ),
            (
                "metadata.labels",
                'Invalid value: "x y": a valid label must be an empty string or consist of '
                "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
                "used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
        ],
        id="labels",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), METADATA_CASES)
def test_metadata(obj: Resource, expected: Errors) -> None:
    check(obj, expected)


def test_errors_are_field_errors_and_render_like_kubectl() -> None:
    [err] = admit(filters_route(mirror(percent=50, fraction={"numerator": 1})))
    assert isinstance(err, FieldError)
    assert str(err) == (
        'spec.rules[0].filters[0].requestMirror: Invalid value: "object": Only one of percent or '
        "fraction may be specified in HTTPRequestMirrorFilter"
    )


def test_go_quoting_of_bad_values() -> None:
    obj = route({"hostnames": ['a"b\\c\tä\x01']})
    [(path, message)] = errs(obj)
    assert path == "spec.hostnames[0]"
    assert message.startswith('Invalid value: "a\\"b\\\\c\\tä\\x01": ')


# --- Property: admit() never raises on a decodable HTTPRoute --------------------------------------

TEXT = st.one_of(
    st.sampled_from(
        [
            "",
            "/",
            "/a",
            "a",
            "x-y",
            "Foo",
            "*.a.com",
            "a.com",
            "1s",
            "0s",
            "10x",
            "-1s",
            "1.5h",
            "%2f",
            "//",
            "/.",
            "#",
            "GET",
            "*",
            "Exact",
            "PathPrefix",
            "Service",
            "RequestMirror",
            "URLRewrite",
            "ReplacePrefixMatch",
            "ReplaceFullPath",
            "CORS",
        ]
    ),
    st.text(max_size=8),
)
INT = st.one_of(st.integers(-3, 3), st.integers(-(2**70), 2**70), st.sampled_from([100, 128, 302, 65535, 65536]))
FILTER_KINDS = st.sampled_from([*FILTER_FIELDS, "Bogus"])


@st.composite
def any_filter(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"type": draw(FILTER_KINDS)}
    if draw(st.booleans()):
        out["requestMirror"] = {
            "backendRef": {
                "name": draw(TEXT),
                "group": draw(TEXT),
                "kind": draw(TEXT),
                **({"port": draw(INT)} if draw(st.booleans()) else {}),
            },
            **({"percent": draw(INT)} if draw(st.booleans()) else {}),
            **({"fraction": {"numerator": draw(INT), "denominator": draw(INT)}} if draw(st.booleans()) else {}),
        }
    if draw(st.booleans()):
        path = {
            "type": draw(TEXT),
            **({"replacePrefixMatch": draw(TEXT)} if draw(st.booleans()) else {}),
            **({"replaceFullPath": draw(TEXT)} if draw(st.booleans()) else {}),
        }
        key = draw(st.sampled_from(["requestRedirect", "urlRewrite"]))
        out[key] = {"path": path, "hostname": draw(TEXT)}
        if key == "requestRedirect":
            out[key] |= {"statusCode": draw(INT), "port": draw(INT), "scheme": draw(TEXT)}
    if draw(st.booleans()):
        out["requestHeaderModifier"] = {
            "set": draw(st.lists(st.fixed_dictionaries({"name": TEXT, "value": TEXT}), max_size=3)),
            "remove": draw(st.lists(TEXT, max_size=3)),
        }
    if draw(st.booleans()):
        out["cors"] = {
            "allowOrigins": draw(st.lists(TEXT, max_size=3)),
            "allowMethods": draw(st.lists(TEXT, max_size=3)),
            "maxAge": draw(INT),
        }
    return out


@st.composite
def any_route(draw: st.DrawFn) -> dict[str, Any]:
    rules = []
    for _ in range(draw(st.integers(0, 3))):
        matches = [
            {
                "path": {"type": draw(TEXT), "value": draw(TEXT)},
                "headers": draw(
                    st.lists(st.fixed_dictionaries({"name": TEXT, "value": TEXT, "type": TEXT}), max_size=2)
                ),
                "method": draw(TEXT),
            }
            for _ in range(draw(st.integers(0, 2)))
        ]
        rule: dict[str, Any] = {
            "matches": matches,
            "filters": draw(st.lists(any_filter(), max_size=3)),
            "backendRefs": [
                {
                    "name": draw(TEXT),
                    "weight": draw(INT),
                    "filters": draw(st.lists(any_filter(), max_size=2)),
                    **({"port": draw(INT)} if draw(st.booleans()) else {}),
                }
                for _ in range(draw(st.integers(0, 2)))
            ],
        }
        if draw(st.booleans()):
            rule["timeouts"] = {"request": draw(TEXT), "backendRequest": draw(TEXT)}
        if draw(st.booleans()):
            rule["name"] = draw(TEXT)
        rules.append(rule)
    spec: dict[str, Any] = {
        "parentRefs": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": TEXT}, optional={"sectionName": TEXT, "namespace": TEXT, "port": INT, "group": TEXT}
                ),
                max_size=3,
            )
        ),
        "hostnames": draw(st.lists(TEXT, max_size=3)),
    }
    if draw(st.booleans()):
        spec["rules"] = rules
    return {
        "apiVersion": GW,
        "kind": "HTTPRoute",
        "metadata": {"name": draw(TEXT) or "r", "namespace": "default"},
        "spec": spec,
    }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_route())
def test_admit_never_raises_on_decodable_routes(doc: dict[str, Any]) -> None:
    try:
        obj = msgspec.convert(doc, HTTPRoute)
    except msgspec.ValidationError:
        return
    result = admit(obj)
    assert all(isinstance(e, FieldError) and e.path and e.message for e in result)
