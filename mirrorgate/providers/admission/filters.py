"""HTTPRoute filters admission: the ``filters`` lists of rules and backendRefs, and each filter.

Rules (``HTTPRouteFilter`` and its members in ``apis/v1/httproute_types.go``, v1.6 standard channel):
1. A filters list has at most 16 entries; RequestRedirect and URLRewrite exclude each other;
   CORS, RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect and URLRewrite may not
   repeat (CEL rules on the list, in the CRD's order).
2. Each filter: the member named by ``type`` must be set and every other member unset (one CEL
   rule per member, in the CRD's order), then each member's own schema limits and CEL rules
   (header lists as ``listType=map`` on ``name``, mirror percent/fraction, path modifiers,
   CORS wildcards).
3. A Service backend reference (empty group, kind Service) must carry a port.
"""

from collections.abc import Sequence
from typing import Final

from mirrorgate.model.httproute import (
    BackendObjectReference,
    HTTPBackendRef,
    HTTPCORSFilter,
    HTTPHeaderFilter,
    HTTPPathModifier,
    HTTPRequestMirrorFilter,
    HTTPRequestRedirectFilter,
    HTTPRouteFilter,
    HTTPURLRewriteFilter,
)
from mirrorgate.model.mirrorpolicy import MirrorPolicySpec
from mirrorgate.providers.admission.schema import (
    CORS_ORIGIN,
    PRECISE_HOSTNAME,
    Errors,
    check_enum,
    check_group,
    check_header_name,
    check_hostname,
    check_int_range,
    check_items,
    check_kind,
    check_list_map_keys,
    check_list_set,
    check_namespace,
    check_object_name,
    check_port,
    check_string,
)

METHODS: Final = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
FILTER_TYPES: Final = (
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "RequestRedirect",
    "URLRewrite",
    "ExtensionRef",
    "CORS",
)
PATH_MODIFIER_TYPES: Final = ("ReplaceFullPath", "ReplacePrefixMatch")
REDIRECT_SCHEMES: Final = ("http", "https")
REDIRECT_CODES: Final = (301, 302, 303, 307, 308)
CORS_METHODS: Final = (*METHODS, "*")

MSG_REDIRECT_AND_REWRITE: Final = (
    "May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both"
)
MSG_MIRROR_PERCENT_AND_FRACTION: Final = "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter"
MSG_FRACTION: Final = "numerator must be less than or equal to denominator"
MSG_SERVICE_PORT: Final = "Must have port for Service reference"

# (filter type, model attribute, CRD field name) in the CRD's rule order.
_FILTER_FIELDS: Final = (
    ("RequestHeaderModifier", "request_header_modifier", "requestHeaderModifier"),
    ("ResponseHeaderModifier", "response_header_modifier", "responseHeaderModifier"),
    ("RequestMirror", "request_mirror", "requestMirror"),
    ("RequestRedirect", "request_redirect", "requestRedirect"),
    ("URLRewrite", "url_rewrite", "urlRewrite"),
    ("CORS", "cors", "cors"),
    ("ExtensionRef", "extension_ref", "extensionRef"),
)
_NOT_REPEATABLE: Final = ("CORS", "RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite")


def check_filters(e: Errors, path: str, filters: Sequence[HTTPRouteFilter]) -> None:
    """A ``filters`` list of a rule or of a backendRef: limits, list CEL rules, each filter."""
    check_items(e, path, filters, max_items=16)
    types = [f.type for f in filters]
    if "RequestRedirect" in types and "URLRewrite" in types:
        e.rule(path, "array", MSG_REDIRECT_AND_REWRITE)
    for kind in _NOT_REPEATABLE:
        if types.count(kind) > 1:
            e.rule(path, "array", f"{kind} filter cannot be repeated")
    for j, flt in enumerate(filters):
        _filter(e, f"{path}[{j}]", flt)


def _filter(e: Errors, path: str, flt: HTTPRouteFilter) -> None:
    for kind, attr, field in _FILTER_FIELDS:
        present = getattr(flt, attr) is not None
        if present and flt.type != kind:
            e.rule(path, "object", f"filter.{field} must be nil if the filter.type is not {kind}")
        if not present and flt.type == kind:
            e.rule(path, "object", f"filter.{field} must be specified for {kind} filter.type")
    check_enum(e, f"{path}.type", flt.type, FILTER_TYPES)
    if flt.request_header_modifier is not None:
        check_header_filter(e, f"{path}.requestHeaderModifier", flt.request_header_modifier)
    if flt.response_header_modifier is not None:
        check_header_filter(e, f"{path}.responseHeaderModifier", flt.response_header_modifier)
    if flt.request_mirror is not None:
        check_mirror(e, f"{path}.requestMirror", flt.request_mirror)
    if flt.request_redirect is not None:
        _redirect(e, f"{path}.requestRedirect", flt.request_redirect)
    if flt.url_rewrite is not None:
        _rewrite(e, f"{path}.urlRewrite", flt.url_rewrite)
    if flt.extension_ref is not None:
        ref = flt.extension_ref
        check_group(e, f"{path}.extensionRef.group", ref.group)
        check_kind(e, f"{path}.extensionRef.kind", ref.kind)
        check_object_name(e, f"{path}.extensionRef.name", ref.name)
    if flt.cors is not None:
        _cors(e, f"{path}.cors", flt.cors)


def check_header_filter(e: Errors, path: str, hf: HTTPHeaderFilter) -> None:
    """An ``HTTPHeaderFilter`` (``set``/``add`` as ``listType=map`` on ``name``, ``remove`` a set)."""
    for name, headers in (("add", hf.add), ("set", hf.set)):
        p = f"{path}.{name}"
        check_items(e, p, headers, max_items=16)
        check_list_map_keys(e, p, [h.name for h in headers])
        for k, header in enumerate(headers):
            check_header_name(e, f"{p}[{k}].name", header.name)
            check_string(e, f"{p}[{k}].value", header.value, min_len=1, max_len=4096)
    check_items(e, f"{path}.remove", hf.remove, max_items=16)
    check_list_set(e, f"{path}.remove", hf.remove)


def check_backend_object_ref(e: Errors, path: str, ref: BackendObjectReference | HTTPBackendRef) -> None:
    """A ``BackendObjectReference`` (of a mirror filter or an HTTPBackendRef): port rule, then fields."""
    if ref.group == "" and ref.kind == "Service" and ref.port is None:
        e.rule(path, "object", MSG_SERVICE_PORT)
    check_group(e, f"{path}.group", ref.group)
    check_kind(e, f"{path}.kind", ref.kind)
    check_object_name(e, f"{path}.name", ref.name)
    check_namespace(e, f"{path}.namespace", ref.namespace)
    check_port(e, f"{path}.port", ref.port)


def check_mirror(
    e: Errors,
    path: str,
    mirror: HTTPRequestMirrorFilter | MirrorPolicySpec,
    msg_both: str = MSG_MIRROR_PERCENT_AND_FRACTION,
) -> None:
    """A mirror's ``backendRef``, ``percent`` and ``fraction`` (a RequestMirror filter's, or a
    MirrorPolicy's spec with its own message ``msg_both`` for both set), in the apiserver's order."""
    if mirror.percent is not None and mirror.fraction is not None:
        e.rule(path, "object", msg_both)
    check_backend_object_ref(e, f"{path}.backendRef", mirror.backend_ref)
    if mirror.percent is not None:
        check_int_range(e, f"{path}.percent", mirror.percent, 0, 100)
    if mirror.fraction is not None:
        fraction = mirror.fraction
        if fraction.numerator > fraction.denominator:
            e.rule(f"{path}.fraction", "object", MSG_FRACTION)
        check_int_range(e, f"{path}.fraction.denominator", fraction.denominator, 1, None)
        check_int_range(e, f"{path}.fraction.numerator", fraction.numerator, 0, None)


def _redirect(e: Errors, path: str, redirect: HTTPRequestRedirectFilter) -> None:
    check_hostname(e, f"{path}.hostname", redirect.hostname, PRECISE_HOSTNAME)
    if redirect.path is not None:
        _path_modifier(e, f"{path}.path", redirect.path)
    check_port(e, f"{path}.port", redirect.port)
    if redirect.scheme is not None:
        check_enum(e, f"{path}.scheme", redirect.scheme, REDIRECT_SCHEMES)
    check_enum(e, f"{path}.statusCode", redirect.status_code, REDIRECT_CODES)


def _rewrite(e: Errors, path: str, rewrite: HTTPURLRewriteFilter) -> None:
    check_hostname(e, f"{path}.hostname", rewrite.hostname, PRECISE_HOSTNAME)
    if rewrite.path is not None:
        _path_modifier(e, f"{path}.path", rewrite.path)


def _path_modifier(e: Errors, path: str, mod: HTTPPathModifier) -> None:
    pairs = (
        ("ReplaceFullPath", "replaceFullPath", mod.replace_full_path),
        ("ReplacePrefixMatch", "replacePrefixMatch", mod.replace_prefix_match),
    )
    for kind, field, value in pairs:
        if mod.type == kind and value is None:
            e.rule(path, "object", f"{field} must be specified when type is set to '{kind}'")
        if value is not None and mod.type != kind:
            e.rule(path, "object", f"type must be '{kind}' when {field} is set")
    for _kind_name, field, value in pairs:
        if value is not None:
            check_string(e, f"{path}.{field}", value, max_len=1024)
    check_enum(e, f"{path}.type", mod.type, PATH_MODIFIER_TYPES)


def _cors(e: Errors, path: str, cors: HTTPCORSFilter) -> None:
    lists = (
        ("allowOrigins", cors.allow_origins, 64),
        ("allowMethods", cors.allow_methods, 9),
        ("allowHeaders", cors.allow_headers, 64),
        ("exposeHeaders", cors.expose_headers, 64),
    )
    for field, values, max_items in lists:
        p = f"{path}.{field}"
        check_items(e, p, values, max_items=max_items)
        check_list_set(e, p, values)
        for k, value in enumerate(values):
            if field == "allowOrigins":
                check_string(e, f"{p}[{k}]", value, min_len=1, max_len=253, pattern=CORS_ORIGIN)
            elif field == "allowMethods":
                check_enum(e, f"{p}[{k}]", value, CORS_METHODS)
            else:
                check_header_name(e, f"{p}[{k}]", value)
    if "*" in cors.allow_origins and len(cors.allow_origins) > 1:
        e.rule(f"{path}.allowOrigins", "array", "AllowOrigins cannot contain '*' alongside other origins")
    if "*" in cors.allow_methods and len(cors.allow_methods) > 1:
        e.rule(f"{path}.allowMethods", "array", "AllowMethods cannot contain '*' alongside other methods")
    check_int_range(e, f"{path}.maxAge", cors.max_age, 1, None)
