"""HTTPRoute (``gateway.networking.k8s.io/v1`` and ``v1beta1``) with the CRD defaults.

CRD defaults are struct defaults here, so a decoded object is the object the apiserver would
store: ``parentRefs[].group/kind``, ``rules`` and ``matches`` (PathPrefix ``/``), header and query
match ``type: Exact``, ``backendRefs[].group/kind/weight``, ``fraction.denominator`` (100),
``requestRedirect.statusCode`` (302). Fields a CEL rule tests with ``has()`` stay ``X | None``.
"""

import msgspec

from mirrorgate.model.meta import Resource, Spec


class ParentReference(Spec, frozen=True, kw_only=True):
    name: str
    group: str = "gateway.networking.k8s.io"
    kind: str = "Gateway"
    namespace: str | None = None
    section_name: str | None = None
    port: int | None = None


class HTTPPathMatch(Spec, frozen=True, kw_only=True):
    type: str = "PathPrefix"
    value: str = "/"


class HTTPHeaderMatch(Spec, frozen=True, kw_only=True):
    name: str
    value: str
    type: str = "Exact"


class HTTPQueryParamMatch(Spec, frozen=True, kw_only=True):
    name: str
    value: str
    type: str = "Exact"


def _default_path() -> HTTPPathMatch:
    return HTTPPathMatch()


class HTTPRouteMatch(Spec, frozen=True, kw_only=True):
    path: HTTPPathMatch = msgspec.field(default_factory=_default_path)
    headers: tuple[HTTPHeaderMatch, ...] = ()
    query_params: tuple[HTTPQueryParamMatch, ...] = ()
    method: str | None = None


class HTTPHeader(Spec, frozen=True, kw_only=True):
    name: str
    value: str


class HTTPHeaderFilter(Spec, frozen=True, kw_only=True):
    set: tuple[HTTPHeader, ...] = ()
    add: tuple[HTTPHeader, ...] = ()
    remove: tuple[str, ...] = ()


class HTTPPathModifier(Spec, frozen=True, kw_only=True):
    type: str
    replace_full_path: str | None = None
    replace_prefix_match: str | None = None


class HTTPRequestRedirectFilter(Spec, frozen=True, kw_only=True):
    scheme: str | None = None
    hostname: str | None = None
    path: HTTPPathModifier | None = None
    port: int | None = None
    status_code: int = 302


class HTTPURLRewriteFilter(Spec, frozen=True, kw_only=True):
    hostname: str | None = None
    path: HTTPPathModifier | None = None


class BackendObjectReference(Spec, frozen=True, kw_only=True):
    name: str
    group: str = ""
    kind: str = "Service"
    namespace: str | None = None
    port: int | None = None


class Fraction(Spec, frozen=True, kw_only=True):
    numerator: int
    denominator: int = 100


class HTTPRequestMirrorFilter(Spec, frozen=True, kw_only=True):
    backend_ref: BackendObjectReference
    percent: int | None = None
    fraction: Fraction | None = None


class LocalObjectReference(Spec, frozen=True, kw_only=True):
    group: str
    kind: str
    name: str


class HTTPCORSFilter(Spec, frozen=True, kw_only=True):
    allow_origins: tuple[str, ...] = ()
    allow_credentials: bool | None = None
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int = 5


class HTTPRouteFilter(Spec, frozen=True, kw_only=True):
    type: str
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    request_redirect: HTTPRequestRedirectFilter | None = None
    url_rewrite: HTTPURLRewriteFilter | None = None
    extension_ref: LocalObjectReference | None = None
    cors: HTTPCORSFilter | None = None


class HTTPBackendRef(Spec, frozen=True, kw_only=True):
    name: str
    group: str = ""
    kind: str = "Service"
    namespace: str | None = None
    port: int | None = None
    weight: int = 1
    filters: tuple[HTTPRouteFilter, ...] = ()


class HTTPRouteTimeouts(Spec, frozen=True, kw_only=True):
    request: str | None = None
    backend_request: str | None = None


def _default_matches() -> tuple[HTTPRouteMatch, ...]:
    return (HTTPRouteMatch(),)


class HTTPRouteRule(Spec, frozen=True, kw_only=True):
    name: str | None = None
    matches: tuple[HTTPRouteMatch, ...] = msgspec.field(default_factory=_default_matches)
    filters: tuple[HTTPRouteFilter, ...] = ()
    backend_refs: tuple[HTTPBackendRef, ...] = ()
    timeouts: HTTPRouteTimeouts | None = None


def _default_rules() -> tuple[HTTPRouteRule, ...]:
    return (HTTPRouteRule(),)


class HTTPRouteSpec(Spec, frozen=True, kw_only=True):
    parent_refs: tuple[ParentReference, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[HTTPRouteRule, ...] = msgspec.field(default_factory=_default_rules)


class HTTPRoute(Resource, frozen=True, kw_only=True):
    spec: HTTPRouteSpec
