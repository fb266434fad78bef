"""RoutingTable and its parts, documented field by field.

Names are deterministic hierarchical strings used unchanged in logs, metrics and goldens:
``gateway/<ns>/<name>/listener/<section>``, ``httproute/<ns>/<name>/rule/<i>/match/<j>``,
``httproute/<ns>/<name>/rule/<i>/mirror/<k>``, ``service/<ns>/<name>:<port>``.

Matching a request (what the data plane does with this table):
1. The socket it arrived on selects a ``Server`` (address, port).
2. The most specific ``HTTPListener`` of that server whose ``hostname`` matches the Host header
   (port ignored): exact name, then the longest wildcard, then the empty hostname. Routes of other
   listeners never serve it (listener isolation).
3. The most specific ``VirtualHost`` of that listener for the Host, same order.
4. The first ``Route`` of that virtual host (already in Gateway API precedence order) whose
   ``Match`` matches; none -> the listener's ``default_action`` or a 404.

IR values are frozen trees that cannot form a reference cycle, so they are not tracked by the
cyclic garbage collector (``gc=False``): a table of 10,000 routes is hundreds of thousands of
objects that every full collection would otherwise walk.
"""

from enum import StrEnum

import msgspec

PPM = 1_000_000  # parts per million: the unit of mirror sampling rates


class PathType(StrEnum):
    EXACT = "Exact"
    PREFIX = "PathPrefix"
    REGEX = "RegularExpression"


class Struct(msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True, gc=False):
    """Base of IR values: frozen, camelCase when dumped, defaults omitted from dumps."""


class UpstreamAddress(Struct, frozen=True, kw_only=True):
    """One dialable address of a backend (IPv6 without brackets): what the gateway connects to.

    Named for what it is rather than ``Endpoint``, which is ``model.core.Endpoint`` (one endpoint
    of an EndpointSlice, with its addresses and conditions) from which the translator derives it.
    """

    address: str
    port: int


class HeaderMatch(Struct, frozen=True, kw_only=True):
    """``name`` is lower-cased; ``type`` Exact (case-sensitive) or RegularExpression (``re.search``)."""

    name: str
    value: str
    type: str = "Exact"


class QueryMatch(Struct, frozen=True, kw_only=True):
    """``name`` is case-sensitive; the first occurrence of the param in the query is compared."""

    name: str
    value: str
    type: str = "Exact"


class Match(Struct, frozen=True, kw_only=True):
    """All parts are ANDed. ``path`` for PathPrefix has no trailing ``/`` (``/`` becomes ``""``)."""

    path_type: PathType = PathType.PREFIX
    path: str = ""
    headers: tuple[HeaderMatch, ...] = ()
    query_params: tuple[QueryMatch, ...] = ()
    method: str | None = None


class HeaderModifier(Struct, frozen=True, kw_only=True):
    """RequestHeaderModifier / ResponseHeaderModifier; names as configured, first entry per name wins."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


class PathModifier(Struct, frozen=True, kw_only=True):
    """``type`` ReplaceFullPath or ReplacePrefixMatch; ``prefix`` is the matched PathPrefix (for the latter)."""

    type: str
    value: str
    prefix: str = ""


class Redirect(Struct, frozen=True, kw_only=True):
    """RequestRedirect. ``port`` None: derived as the Gateway API ``HTTPRequestRedirectFilter.port``
    says (the scheme's well-known port, else the listener's)."""

    scheme: str | None = None
    hostname: str | None = None
    path: PathModifier | None = None
    port: int | None = None
    status_code: int = 302


class URLRewrite(Struct, frozen=True, kw_only=True):
    hostname: str | None = None
    path: PathModifier | None = None


class SubjectAltName(Struct, frozen=True, kw_only=True):
    """One ``BackendTLSPolicy.spec.validation.subjectAltNames`` entry: ``type`` Hostname or URI."""

    type: str
    value: str


class BackendTLS(Struct, frozen=True, kw_only=True):
    """TLS to a backend (BackendTLSPolicy, GEP-1897): ``hostname`` is the SNI and, unless
    ``subject_alt_names`` are given, the name the certificate must carry. ``ca_digest`` names the
    CA bundle in ``RoutingTable.trust`` (``None``: the system CA store,
    ``wellKnownCACertificates: System``). ``policy`` is ``backendtlspolicy/<ns>/<name>``."""

    policy: str
    hostname: str
    ca_digest: str | None = None
    subject_alt_names: tuple[SubjectAltName, ...] = ()


class ExternalName(Struct, frozen=True, kw_only=True):
    """A Service of ``type: ExternalName``: ``host`` is resolved by DNS when a request needs it
    (with a cache); ``port`` is the Service port the route names."""

    host: str
    port: int


class SampleBy(Struct, frozen=True, kw_only=True):
    """``MirrorPolicy.spec.sampleBy``: the request's draw is a stable hash of one value of the
    request, so a given user or session is always in or always out of the sample, in every
    worker, replica and restart. ``source`` is ``Header`` (``name`` lower-cased), ``Cookie`` or
    ``QueryParam`` (``name`` case-sensitive). ``missing``: what a request without the key gets,
    ``Random`` (the uniform draw) or ``Skip`` (not mirrored, counted as sampled out)."""

    source: str
    name: str
    missing: str = "Random"


class MirrorHost(Struct, frozen=True, kw_only=True):
    """``MirrorPolicy.spec.host``: the mirrored request's Host. ``type`` ``Original`` (as the
    primary sends it), ``ShadowSuffix`` (``-shadow`` before the port) or ``Literal`` (``value``,
    a hostname with an optional port)."""

    type: str
    value: str = ""


# Response headers a comparison never compares (they differ on every response, or are framing),
# and request/response headers whose values are always redacted in what a comparison keeps:
# the translator puts them first in ``MirrorCompare.ignore_headers``/``redact_headers``, and the
# comparison applies them whatever the IR says.
COMPARE_IGNORED_HEADERS = (
    "date",
    "age",
    "expires",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "x-request-id",
)
COMPARE_REDACTED_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie")


class MirrorCompare(Struct, frozen=True, kw_only=True):
    """``MirrorPolicy.spec.compare``: compare the mirror's response with the primary's.

    ``headers``: lower-case names of the response headers compared (``()``: every header but
    ``ignore_headers``). ``ignore_headers``: lower-case names never compared. ``ignore_paths``:
    JSON paths (``$.id``, ``$.items[*].updatedAt``) left out of a JSON body comparison.
    ``max_body_bytes``: bytes kept of each body (a longer body is compared by its digest and
    length). ``redact_headers``: lower-case names whose values are masked wherever a mismatch is
    kept or shown. ``keep_mismatches``: the size of the ring of latest mismatches."""

    headers: tuple[str, ...] = ()
    ignore_headers: tuple[str, ...] = ()
    ignore_paths: tuple[str, ...] = ()
    max_body_bytes: int = 65_536
    redact_headers: tuple[str, ...] = ("authorization", "cookie", "set-cookie")
    keep_mismatches: int = 20


class Mirror(Struct, frozen=True, kw_only=True):
    """One RequestMirror: sample ``ppm`` of requests (one uniform draw per request) to one endpoint.
    ``tls`` and ``external`` as for ``Backend``.

    A mirror made from a ``MirrorPolicy`` (an ``ExtensionRef`` filter) has ``policy``
    (``mirrorpolicy/<ns>/<name>``) and may have the rest: ``sample_by`` replaces the uniform draw
    with a hash of a request value; ``host`` overrides the gateway's shadow Host rule;
    ``request_headers`` edits the mirrored copy only (after the rule's own edits);
    ``timeout_ms`` and ``max_body_lag`` override the gateway-wide mirror timeout and body lag
    budget; ``compare`` compares its responses with the primary's."""

    name: str
    backend: str
    ppm: int
    endpoints: tuple[UpstreamAddress, ...] = ()
    tls: BackendTLS | None = None
    external: ExternalName | None = None
    policy: str = ""
    sample_by: SampleBy | None = None
    host: MirrorHost | None = None
    request_headers: HeaderModifier | None = None
    timeout_ms: int | None = None
    max_body_lag: int | None = None
    compare: MirrorCompare | None = None


class Filters(Struct, frozen=True, kw_only=True):
    """The filters of a rule or of one backendRef, in the fixed order the data plane applies them:
    request headers, URL rewrite, mirrors (copy taken after both), redirect, response headers."""

    request_headers: HeaderModifier | None = None
    response_headers: HeaderModifier | None = None
    url_rewrite: URLRewrite | None = None
    redirect: Redirect | None = None
    mirrors: tuple[Mirror, ...] = ()


class Backend(Struct, frozen=True, kw_only=True):
    """One weighted destination of a rule.

    ``status`` non-zero means the ref is unusable and its share of traffic gets that local reply:
    500 (invalid ref: not found, wrong kind, not permitted). A valid Service with no ready endpoints
    has ``endpoints == ()`` and the data plane answers 503.
    """

    name: str
    weight: int
    endpoints: tuple[UpstreamAddress, ...] = ()
    status: int = 0
    filters: Filters = msgspec.field(default_factory=Filters)
    app_protocol: str | None = None
    tls: BackendTLS | None = None  # a BackendTLSPolicy targets this Service (port)
    external: ExternalName | None = None  # an ExternalName Service: ``endpoints`` is empty


class Action(Struct, frozen=True, kw_only=True):
    """What a matched rule does. ``status`` non-zero: answer locally with it (e.g. 500 for a rule
    with no usable backendRefs); else ``filters.redirect`` redirects; else forward to ``backends``.
    Timeouts in milliseconds; ``None`` unset, ``0`` disabled."""

    rule: str
    backends: tuple[Backend, ...] = ()
    filters: Filters = msgspec.field(default_factory=Filters)
    status: int = 0
    request_timeout_ms: int | None = None
    backend_request_timeout_ms: int | None = None


class Route(Struct, frozen=True, kw_only=True):
    """One (rule, match) pair; ``name`` is ``httproute/<ns>/<name>/rule/<i>/match/<j>``."""

    name: str
    match: Match
    action: Action


class VirtualHost(Struct, frozen=True, kw_only=True):
    """Routes for one hostname (exact, ``*.suffix`` or ``""`` = any), in precedence order."""

    hostname: str
    routes: tuple[Route, ...] = ()


class ListenerTLS(Struct, frozen=True, kw_only=True):
    """An HTTPS listener's TLS termination: the digests of its certificates in ``RoutingTable.certificates``."""

    certificates: tuple[str, ...]


class HTTPListener(Struct, frozen=True, kw_only=True):
    """One Gateway listener (or a Service port for mesh parents) on a server.

    ``hostname`` "" matches any Host. ``port`` is the listener port (redirect rules use it).
    ``default_action`` serves requests no route matches (a Service's own endpoints); None -> 404.
    """

    name: str
    hostname: str = ""
    port: int
    virtual_hosts: tuple[VirtualHost, ...] = ()
    default_action: Action | None = None
    tls: ListenerTLS | None = None  # HTTPS (tls.mode Terminate); None: plain HTTP

    def actions(self) -> list[Action]:
        """Every action of the listener: its routes' in order, then its default one."""
        actions = [r.action for vh in self.virtual_hosts for r in vh.routes]
        if self.default_action is not None:
            actions.append(self.default_action)
        return actions


class Server(Struct, frozen=True, kw_only=True):
    """One listening socket: ``address`` (IP, "0.0.0.0" or "::") and ``port``."""

    address: str
    port: int
    listeners: tuple[HTTPListener, ...] = ()


class Certificate(Struct, frozen=True, kw_only=True):
    """A certificate chain and its private key (a ``kubernetes.io/tls`` Secret), named by
    ``digest`` (``sha256:<hex>`` over both). ``source`` is ``secret/<ns>/<name>``. The PEM
    travels to worker processes with the table; ``ir.dump`` never writes ``chain_pem`` or
    ``key_pem`` (``/config_dump`` and ``status --routing-table`` show ``digest``, ``source`` and
    ``dnsNames`` only)."""

    digest: str
    source: str
    dns_names: tuple[str, ...] = ()
    not_after: str = ""  # RFC 3339
    chain_pem: str
    key_pem: str

    def __repr__(self) -> str:  # the key never reaches a log line or a traceback through a repr
        return f"Certificate(digest={self.digest!r}, source={self.source!r}, key_pem=<redacted>)"


class TrustBundle(Struct, frozen=True, kw_only=True):
    """A CA bundle (a ConfigMap's ``ca.crt``) named by ``digest``; ``source`` is ``configmap/<ns>/<name>``."""

    digest: str
    source: str
    ca_pem: str


class RoutingTable(Struct, frozen=True, kw_only=True):
    """Everything the data plane serves. Equal tables are interchangeable (no-op reload).
    ``certificates`` and ``trust`` hold the TLS material the listeners and backends name by digest."""

    servers: tuple[Server, ...] = ()
    certificates: tuple[Certificate, ...] = ()
    trust: tuple[TrustBundle, ...] = ()
