"""HTTPRoute (``gateway.networking.k8s.io/v1`` and ``v1beta1``) with the CRD defaults.

CRD defaults are struct defaults here, so a decoded object is the object the apiserver would
store: ``parentRefs[].group/kind``, ``rules`` and ``matches`` (PathPrefix ``/``), header and query
match ``type: Exact``, ``backendRefs[].group/kind/weight``, ``fraction.denominator`` (100),
``requestRedirect.statusCode`` (302). Fields a CEL rule tests with ``has()`` stay ``X | None``.
"""

import msgspec

from mirrorgate.model.meta import Resource, Spec


class ParentReference(Spec):
    name: str
    group: str = "gateway.networking.k8s.io"
    kind: str = "Gateway"
    namespace: str | None = None
    section_name: str | None = None
    port: int | None = None


class HTTPPathMatch(Spec):
    type: str = "PathPrefix"
    value: str = "/"


class HTTPHeaderMatch(Spec):
    name: str
    value: str
    type: str = "Exact"


class HTTPQueryParamMatch(Spec):
    name: str
    value: str
    type: str = "Exact"


def _default_path() -> HTTPPathMatch:
    return HTTPPathMatch()


class HTTPRouteMatch(Spec):
    path: HTTPPathMatch = msgspec.field(default_factory=_default_path)
    headers: tuple[HTTPHeaderMatch, ...] = ()
    query_params: tuple[HTTPQueryParamMatch, ...] = ()
    method: str | None = None


class HTTPHeader(Spec):
    name: str
    value: str


class HTTPHeaderFilter(Spec):
    set: tuple[HTTPHeader, ...] = ()
    add: tuple[HTTPHeader, ...] = ()
    remove: tuple[str, ...] = ()


class HTTPPathModifier(Spec):
    type: str
    replace_full_path: str | None = None
    replace_prefix_match: str | None = None


class HTTPRequestRedirectFilter(Spec):
    scheme: str | None = None
    hostname: str | None = None
    path: HTTPPathModifier | None = None
    port: int | None = None
    status_code: int = 302


class HTTPURLRewriteFilter(Spec):
    hostname: str | None = None
    path: HTTPPathModifier | None = None


class BackendObjectReference(Spec):
    name: str
    group: str = ""
    kind: str = "Service"
    namespace: str | None = None
    port: int | None = None


class Fraction(Spec):
    numerator: int
    denominator: int = 100


class HTTPRequestMirrorFilter(Spec):
    backend_ref: BackendObjectReference
    percent: int | None = None
    fraction: Fraction | None = None


class LocalObjectReference(Spec):
    group: str
    kind: str
    name: str


class HTTPCORSFilter(Spec):
    allow_origins: tuple[str, ...] = ()
    allow_credentials: bool | None = None
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int = 5


class HTTPRouteFilter(Spec):
    type: str
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    request_redirect: HTTPRequestRedirectFilter | None = None
    url_rewrite: HTTPURLRewriteFilter | None = None
    extension_ref: LocalObjectReference | None = None
    cors: HTTPCORSFilter | None = None


class HTTPBackendRef(Spec):
    name: str
    group: str = ""
    kind: str = "Service"
    namespace: str | None = None
    port: int | None = None
    weight: int = 1
    filters: tuple[HTTPRouteFilter, ...] = ()


class HTTPRouteTimeouts(Spec):
    request: str | None = None
    backend_request: str | None = None


def _default_matches() -> tuple[HTTPRouteMatch, ...]:
    return (HTTPRouteMatch(),)


class HTTPRouteRule(Spec):
    name: str | None = None
    matches: tuple[HTTPRouteMatch, ...] = msgspec.field(default_factory=_default_matches)
    filters: tuple[HTTPRouteFilter, ...] = ()
    backend_refs: tuple[HTTPBackendRef, ...] = ()
    timeouts: HTTPRouteTimeouts | None = None


def _default_rules() -> tuple[HTTPRouteRule, ...]:
    return (HTTPRouteRule(),)


class HTTPRouteSpec(Spec):
    parent_refs: tuple[ParentReference, ...] = ()
    hostnames: tuple[str, ...] = ()
    rules: tuple[HTTPRouteRule, ...] = msgspec.field(default_factory=_default_rules)


class HTTPRoute(Resource, frozen=True, kw_only=True):
    spec: HTTPRouteSpec
