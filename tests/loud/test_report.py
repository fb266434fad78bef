"""``serve/report.py``: what a configuration serves and what is wrong, from its statuses and table."""

from mirrorgate.ir.table import RoutingTable
from mirrorgate.model.snapshot import Snapshot
from mirrorgate.providers.files import load_paths
from mirrorgate.serve.report import listener_lines, not_served, problems, report
from mirrorgate.status_view import list_view
from mirrorgate.translate import TranslateOptions, translate

CLASS = """apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: eg}}
spec: {{controllerName: {controller}}}
---
"""
GATEWAY = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg}
spec:
  gatewayClassName: eg
  listeners: [{name: http, protocol: HTTP, port: 8080, hostname: a.example}]
---
"""
HTTPS = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: tls}
spec:
  gatewayClassName: eg
  listeners: [{name: https, protocol: HTTPS, port: 8443}]
---
"""
ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: eg}]
  rules:
  - backendRefs: [{name: primary, port: 80}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}}}]
---
"""
SERVICES = """apiVersion: v1
kind: Service
metadata: {name: primary}
spec: {ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: shadow}
spec: {ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: primary-1, labels: {kubernetes.io/service-name: primary}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{port: 9000}]
"""
OURS = "mirrorgate.dev/gateway-controller"
ENVOY = "gateway.envoyproxy.io/gatewayclass-controller"


def _report(text: str, tmp: str) -> tuple[dict[str, object], RoutingTable]:
    with open(tmp, "w") as f:
        f.write(text)
    result = load_paths([tmp])
    assert not result.errors, result.errors
    translated = translate(result.snapshot)
    return list_view(result.snapshot, translated.statuses), translated.table


def test_a_gateway_of_another_controller_is_named_and_nothing_is_served(tmp_path: object) -> None:
    status, table = _report(CLASS.format(controller=ENVOY) + GATEWAY + ROUTE, f"{tmp_path}/c.yaml")
    lines = problems(status, table)
    assert (
        lines[0]
        == f"Gateway default/eg: not ours, left alone: GatewayClass eg has controllerName {ENVOY}, not ours ({OURS})"
    )
    assert lines[1] == (
        "HTTPRoute default/r: attached to nothing served here: Gateway default/eg is not ours: "
        f"GatewayClass eg has controllerName {ENVOY}, not ours ({OURS})"
    )
    assert not_served(status, table) == (
        f"no listener is served: Gateway default/eg is not ours: GatewayClass eg has controllerName {ENVOY}, "
        f"not ours ({OURS})"
    )


def _translated(text: str, tmp: str, options: TranslateOptions) -> tuple[dict[str, object], RoutingTable]:
    with open(tmp, "w") as f:
        f.write(text)
    result = load_paths([tmp])
    assert not result.errors, result.errors
    translated = translate(result.snapshot, options)
    return list_view(result.snapshot, translated.statuses), translated.table


def test_a_route_to_a_gateway_that_is_not_ours_says_why_in_words_that_do_not_contradict(tmp_path: object) -> None:
    # a class with our default controllerName while the process serves another --controller-name:
    # never "has controllerName X, not ours (X)"
    other = TranslateOptions(controller_name="example.com/other")
    status, table = _translated(CLASS.format(controller=OURS) + GATEWAY + ROUTE, f"{tmp_path}/c.yaml", other)
    why = f"GatewayClass eg has controllerName {OURS}, not the --controller-name this process serves"
    assert problems(status, table)[:2] == [
        f"Gateway default/eg: not ours, left alone: {why}",
        f"HTTPRoute default/r: attached to nothing served here: Gateway default/eg is not ours: {why}",
    ]
    # the Kubernetes source: a Gateway whose class does not exist is not ours
    kube = TranslateOptions(missing_class_is_ours=False)
    status, table = _translated(GATEWAY + ROUTE, f"{tmp_path}/g.yaml", kube)
    why = "its GatewayClass eg does not exist"
    assert problems(status, table)[:2] == [
        f"Gateway default/eg: not ours, left alone: {why}",
        f"HTTPRoute default/r: attached to nothing served here: Gateway default/eg is not ours: {why}",
    ]
    assert not_served(status, table) == f"no listener is served: Gateway default/eg is not ours: {why}"


def test_a_route_without_its_gateway(tmp_path: object) -> None:
    status, table = _report(ROUTE, f"{tmp_path}/r.yaml")
    assert problems(status, table) == [
        "HTTPRoute default/r: attached to nothing served here: Gateway default/eg does not exist"
    ]
    assert not_served(status, table) == (
        "no listener is served: the configuration has no Gateway (HTTPRoute default/r attach to none)"
    )


def test_nothing_at_all() -> None:
    empty = list_view(Snapshot(), {})
    assert problems(empty, RoutingTable()) == []
    assert (
        not_served(empty, RoutingTable())
        == "no listener is served: the configuration has no Gateway (0 object(s) loaded)"
    )


def test_missing_backend_https_listener_and_no_endpoints(tmp_path: object) -> None:
    text = CLASS.format(controller=OURS) + GATEWAY + HTTPS + ROUTE.replace("name: primary", "name: gone")
    status, table = _report(text + SERVICES, f"{tmp_path}/p.yaml")
    lines = problems(status, table)
    assert (
        "Gateway default/tls listener https: ResolvedRefs=False (InvalidCertificateRef): "
        "HTTPS listener has no tls.certificateRefs." in lines
    )
    assert (
        "HTTPRoute default/r (parent Gateway default/eg): ResolvedRefs=False (BackendNotFound): "
        "Service default/gone not found." in lines
    )
    assert lines[-1].startswith("Service default/shadow:80: no endpoints (used by httproute/default/r)")
    assert lines[-1].endswith("--endpoints SERVICE[.NS][:PORT]=ADDR:PORT")
    assert not_served(status, table) is None


def test_a_healthy_configuration_has_no_problem_and_lists_its_listeners(tmp_path: object) -> None:
    text = CLASS.format(controller=OURS) + GATEWAY + ROUTE.replace("    filters:", "    #") + SERVICES
    status, table = _report(text, f"{tmp_path}/ok.yaml")
    assert problems(status, table) == []
    assert listener_lines(table) == [
        "listener gateway/default/eg/listener/http: 0.0.0.0:8080 HTTP, hostname a.example, "
        "1 route(s) attached: httproute/default/r"
    ]
    infos, warnings = report(status, table)
    assert infos == listener_lines(table)
    assert warnings == []


def test_a_mirror_policy_whose_backend_is_missing_is_a_problem(tmp_path: object) -> None:
    policy = """apiVersion: mirrorgate.dev/v1alpha1
kind: MirrorPolicy
metadata: {name: shadow}
spec:
  backendRef: {name: gone, port: 80}
---
"""
    text = CLASS.format(controller=OURS) + GATEWAY + policy + SERVICES
    status, table = _report(text, f"{tmp_path}/mp.yaml")
    assert problems(status, table) == [
        "MirrorPolicy default/shadow: ResolvedRefs=False (BackendNotFound): Service default/gone not found."
    ]
