"""Manifest builders: YAML text for the Gateway API objects the tests load; and readers of the translated result.

Every builder returns one or more YAML documents, each starting with ``---``, so results can be
concatenated in any order. Services point at ``127.0.0.1`` through an EndpointSlice, so a
translated table routes to a real loopback port.
"""

from mirrorgate.ir.table import Route
from mirrorgate.providers.files import load_paths
from mirrorgate.translate import TranslateResult, translate
from mirrorgate.translate.status import RouteStatus

GATEWAY_CLASS = """---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: mirrorgate}
spec: {controllerName: mirrorgate.dev/gateway-controller}
"""


def gateway_doc(
    namespace: str = "infra", listeners: str = "{name: http, port: 80, protocol: HTTP}", name: str = "gw"
) -> str:
    """The GatewayClass and one Gateway; ``listeners`` is the flow-style list body."""
    return f"""{GATEWAY_CLASS}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  gatewayClassName: mirrorgate
  listeners: [{listeners}]
"""


def service_docs(name: str, port: int | str, namespace: str = "infra") -> str:
    """A Service (port 8080 -> ``port``) and its EndpointSlice on 127.0.0.1:``port`` (``port`` may be
    a ``$name`` placeholder substituted later)."""
    return f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{ports: [{{port: 8080, targetPort: {port}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}, namespace: {namespace}, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
endpoints: [{{addresses: [127.0.0.1]}}]
ports: [{{port: {port}}}]
"""


def route_doc(rules: str, name: str = "route", namespace: str = "infra", parent: str = "gw") -> str:
    """An HTTPRoute attached to Gateway ``parent``; ``rules`` is the block-style list of rules,
    each line indented by two spaces (``  - backendRefs: [...]``)."""
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  parentRefs: [{{name: {parent}}}]
  rules:
{rules.rstrip()}
"""


def grant_doc(
    namespace: str,
    from_namespace: str,
    *,
    from_kind: str = "HTTPRoute",
    to_kind: str = "Service",
    to_name: str = "",
    from_group: str = "gateway.networking.k8s.io",
) -> str:
    """A ReferenceGrant in ``namespace`` letting ``from_kind`` objects (of ``from_group``) of
    ``from_namespace`` refer to ``to_kind`` objects (all of them, or the one named ``to_name``)."""
    name = f", name: {to_name}" if to_name else ""
    return f"""---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: grant-{from_namespace}-{from_kind.lower()}, namespace: {namespace}}}
spec:
  from: [{{group: {from_group}, kind: {from_kind}, namespace: {from_namespace}}}]
  to: [{{group: "", kind: {to_kind}{name}}}]
"""


def mirror_policy_doc(name: str, spec: str, namespace: str = "infra") -> str:
    """A MirrorPolicy; ``spec`` is the block-style body of ``spec``, each line indented by two spaces."""
    return f"""---
apiVersion: mirrorgate.dev/v1alpha1
kind: MirrorPolicy
metadata: {{name: {name}, namespace: {namespace}}}
spec:
{spec.rstrip()}
"""


def translate_text(text: str) -> TranslateResult:
    """Load ``text`` as one file and translate it; every document must load."""
    result = load_paths(["-"], stdin_text=text)
    assert result.errors == (), [str(e) for e in result.errors]
    return translate(result.snapshot)


def only_route(result: TranslateResult) -> Route:
    """The one route of the one virtual host of the one listener of the one server."""
    [server] = result.table.servers
    [listener] = server.listeners
    [vhost] = listener.virtual_hosts
    [r] = vhost.routes
    return r


def route_condition(result: TranslateResult, kind: str = "ResolvedRefs") -> tuple[str, str, str]:
    """(status, reason, message) of the ``kind`` condition of HTTPRoute infra/route (one parent)."""
    status = result.statuses["HTTPRoute infra/route"]
    assert isinstance(status, RouteStatus)
    [parent] = status.parents
    [c] = [c for c in parent.conditions if c.type == kind]
    return c.status, c.reason, c.message
