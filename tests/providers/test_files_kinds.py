"""Which documents the file provider reads, skips, or refuses as near misses of its kinds."""

from pathlib import Path

import pytest

from mirrorgate.providers.files import load_paths
from mirrorgate.providers.kinds import KNOWN_KINDS, classify

GW = "gateway.networking.k8s.io"

ROUTE = """\
apiVersion: {api}
kind: {kind}
metadata: {{name: r, namespace: team}}
spec:
  parentRefs: [{{name: eg}}]
"""


def load(tmp_path: Path, api: str, kind: str) -> tuple[list[str], list[str], list[str]]:
    path = tmp_path / "in.yaml"
    path.write_text(ROUTE.format(api=api, kind=kind))
    result = load_paths([str(path)])
    prefix = f"{path}: "
    errors, notes, warnings = (
        [x.removeprefix(prefix) for x in xs] for xs in (map(str, result.errors), result.notes, result.warnings)
    )
    return errors, notes, warnings


@pytest.mark.parametrize(
    ("api", "kind", "error"),
    [
        pytest.param(
            f"{GW}/v1",
            "HTTPRout",
            f'HTTPRout team/r: kind: no matches for kind "HTTPRout" in version "{GW}/v1": did you mean HTTPRoute?',
            id="kind-typo",
        ),
        pytest.param(
            f"{GW}/v1",
            "httproute",
            f'httproute team/r: kind: no matches for kind "httproute" in version "{GW}/v1": did you mean HTTPRoute?',
            id="kind-case",
        ),
        pytest.param(
            "v1",
            "Servcie",
            'Servcie team/r: kind: no matches for kind "Servcie" in version "v1": did you mean Service?',
            id="core-kind-typo",
        ),
        pytest.param(
            "gateway.networking.k8s.oi/v1",
            "HTTPRoute",
            'HTTPRoute team/r: apiVersion: no matches for kind "HTTPRoute" in version "gateway.networking.k8s.oi/v1": '
            f"did you mean {GW}?",
            id="group-typo",
        ),
        pytest.param(
            "Gateway.Networking.K8s.io/v1",
            "HTTPRoute",
            'HTTPRoute team/r: apiVersion: no matches for kind "HTTPRoute" in version "Gateway.Networking.K8s.io/v1": '
            f"did you mean {GW}?",
            id="group-case",
        ),
        pytest.param(
            "mirrorgate.io/v1",
            "Mirror",
            'Mirror team/r: apiVersion: no matches for kind "Mirror" in version "mirrorgate.io/v1": '
            "did you mean mirrorgate.dev?",
            id="own-group-typo",
        ),
        pytest.param(
            "v1",
            "HTTPRoute",
            'HTTPRoute team/r: kind: no matches for kind "HTTPRoute" in version "v1": '
            f"HTTPRoute is served as {GW}/v1 or {GW}/v1beta1",
            id="kind-without-its-group",
        ),
        pytest.param(
            f"{GW}/v1",
            "Service",
            f'Service team/r: kind: no matches for kind "Service" in version "{GW}/v1": Service is served as v1',
            id="core-kind-in-gateway-group",
        ),
        pytest.param(
            f"{GW}/v1",
            "Frobnicator",
            f'Frobnicator team/r: kind: no matches for kind "Frobnicator" in version "{GW}/v1": mirrorgate serves '
            f"GatewayClass (v1, v1beta1), Gateway (v1, v1beta1), HTTPRoute (v1, v1beta1), "
            f"ReferenceGrant (v1, v1beta1), BackendTLSPolicy (v1) in {GW}",
            id="unknown-gateway-kind",
        ),
        pytest.param(
            "mirrorgate.dev/v1alpha1",
            "MirrorRule",
            'MirrorRule team/r: kind: no matches for kind "MirrorRule" in version "mirrorgate.dev/v1alpha1": '
            "mirrorgate serves MirrorPolicy (v1alpha1), GatewayConfig (v1alpha1) in mirrorgate.dev",
            id="own-group",
        ),
        pytest.param(
            "mirrorgate.dev/v1",
            "MirrorPolicy",
            'MirrorPolicy team/r: apiVersion: Unsupported value: "mirrorgate.dev/v1": '
            "supported values: mirrorgate.dev/v1alpha1",
            id="own-kind-unserved-version",
        ),
    ],
)
def test_near_misses_are_errors(tmp_path: Path, api: str, kind: str, error: str) -> None:
    assert load(tmp_path, api, kind) == ([error], [], [])


def test_unserved_version_of_a_served_kind_lists_the_served_ones(tmp_path: Path) -> None:
    errors, _, _ = load(tmp_path, f"{GW}/v2", "HTTPRoute")
    assert errors == [
        f'HTTPRoute team/r: apiVersion: Unsupported value: "{GW}/v2": supported values: {GW}/v1, {GW}/v1beta1'
    ]


COMMON = [
    ("apps/v1", "Deployment"),
    ("v1", "Pod"),
    ("v1", "ServiceAccount"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "IngressClass"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("v1", "PersistentVolumeClaim"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("apiregistration.k8s.io/v1", "APIService"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ("gateway.networking.x-k8s.io/v1alpha1", "XListenerSet"),
    ("gateway.envoyproxy.io/v1alpha1", "HTTPRouteFilter"),
    ("gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy"),
    ("serving.knative.dev/v1", "Service"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("cert-manager.io/v1", "Certificate"),
    ("security.istio.io/v1", "AuthorizationPolicy"),
    ("example.com/v1", "Widget"),
]


@pytest.mark.parametrize(("api", "kind"), COMMON)
def test_common_kinds_are_skipped_with_a_note(tmp_path: Path, api: str, kind: str) -> None:
    assert load(tmp_path, api, kind) == ([], [f"skipping {kind} r ({api}): not a kind mirrorgate uses"], [])


def test_no_known_kind_is_taken_for_a_near_miss() -> None:
    for kind in sorted(KNOWN_KINDS):
        for api in ("v1", "apps/v1", "example.com/v1"):
            assert classify(api, kind).action == "skip", (api, kind)


@pytest.mark.parametrize(
    ("kind", "equivalent"),
    [
        (
            "VirtualService",
            "an HTTPRoute (mirroring: a RequestMirror filter; in a mesh the HTTPRoute's parentRef is "
            "the Service, as in examples/istio-mesh-mirror.yaml)",
        ),
        ("Gateway", f"a {GW}/v1 Gateway with a GatewayClass"),
        ("DestinationRule", "one Service per subset, referenced by HTTPRoute backendRefs with weights"),
        ("ServiceEntry", "an HTTPRoute (see examples/istio-mesh-mirror.yaml for mirroring in a mesh)"),
    ],
)
def test_istio_networking_kinds_are_skipped_with_a_warning(tmp_path: Path, kind: str, equivalent: str) -> None:
    api = "networking.istio.io/v1"
    warning = (
        f"skipping {kind} r ({api}): Istio networking APIs are not loaded; the Gateway API equivalent is {equivalent}"
    )
    assert load(tmp_path, api, kind) == ([], [], [warning])


def test_the_example_istio_mirror_route_still_loads() -> None:
    result = load_paths(["examples/istio-mesh-mirror.yaml"])
    assert result.errors == ()
    assert result.warnings == ()
    assert [r.metadata.name for r in result.snapshot.http_routes]


@pytest.mark.parametrize(
    ("kind", "meant"),
    [
        ("Gatway", "Gateway"),
        ("HttpRoute", "HTTPRoute"),
        ("HTTPRoutes", "HTTPRoute"),
        ("HTTPRotue", "HTTPRoute"),
        ("Endpoint", "Endpoints"),
        ("EndpointSlices", "EndpointSlice"),
        ("NameSpace", "Namespace"),
        ("RefrenceGrant", "ReferenceGrant"),
        ("GatewayClas", "GatewayClass"),
        ("Sevice", "Service"),
    ],
)
def test_kind_typos_name_the_kind_meant(kind: str, meant: str) -> None:
    for api in ("v1", f"{GW}/v1", "discovery.k8s.io/v1", "example.com/v1"):
        verdict = classify(api, kind)
        assert (verdict.action, verdict.path) == ("error", "kind"), api
        assert verdict.message.endswith(f": did you mean {meant}?")


def test_a_gateway_api_kind_mirrorgate_does_not_serve_is_skipped_with_a_warning(tmp_path: Path) -> None:
    errors, notes, warnings = load(tmp_path, f"{GW}/v1", "GRPCRoute")
    assert (errors, notes) == ([], [])
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"skipping GRPCRoute r ({GW}/v1): a Gateway API kind mirrorgate does not serve (mirrorgate serves GatewayClass"
    )
