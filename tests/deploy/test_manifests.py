"""Offline checks of the Kubernetes install (deploy/kubernetes), its Prometheus component and the Dockerfile.

Rules this file enforces (``kustomize`` and ``docker`` are not needed):
1. Every manifest parses; every kustomization names only files that exist, and every manifest file is named
   by exactly one kustomization (a file nobody applies, or applied twice, is an error).
2. Every object of a kind Kubernetes itself defines validates, unknown fields included, against the
   Kubernetes 1.32 OpenAPI schemas shipped inside ``kubernetes-validate``; the other kinds are the CRDs
   listed in ``CRD_GROUPS``.
3. The GatewayClass loads through mirrorgate's own loader with the default controllerName.
4. RBAC grants exactly the table below: widening or narrowing it is a change in two places.
5. Probes, ports and flags agree with the admin server and with each other; the pod is non-root with
   the UID the Dockerfile creates.
6. Alert and dashboard expressions use only metric names mirrorgate exports (``METRICS``).
"""

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml
from prometheus_client import CollectorRegistry

from mirrorgate.admin.server import AdminApp
from mirrorgate.ir.table import RoutingTable
from mirrorgate.providers.files import load_paths

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes"
PROMETHEUS = BASE / "components" / "prometheus"
K8S_VERSION = "1.32"
CRD_GROUPS = {"gateway.networking.k8s.io", "monitoring.coreos.com"}
KUSTOMIZE_KINDS = {"Kustomization", "Component"}
CONTROLLER_NAME = "mirrorgate.dev/gateway-controller"
GRACE_FLAG = "--grace="
PRESTOP_SLEEP = ["sleep"]

# (apiGroup, resource, verbs, resourceNames) -- what `mirrorgate run --kubernetes` needs, no more.
READ = ("get", "list", "watch")
CLUSTER_RULES = {
    ("gateway.networking.k8s.io", "gatewayclasses", READ, ()),
    ("gateway.networking.k8s.io", "gateways", READ, ()),
    ("gateway.networking.k8s.io", "httproutes", READ, ()),
    ("gateway.networking.k8s.io", "referencegrants", READ, ()),
    ("", "services", READ, ()),
    ("", "namespaces", READ, ()),
    ("discovery.k8s.io", "endpointslices", READ, ()),
    ("gateway.networking.k8s.io", "backendtlspolicies", READ, ()),
    ("mirrorgate.dev", "gatewayconfigs", READ, ()),
    ("", "secrets", READ, ()),
    ("", "configmaps", READ, ()),
    ("gateway.networking.k8s.io", "gatewayclasses/status", ("patch", "update"), ()),
    ("gateway.networking.k8s.io", "gateways/status", ("patch", "update"), ()),
    ("gateway.networking.k8s.io", "httproutes/status", ("patch", "update"), ()),
    ("gateway.networking.k8s.io", "backendtlspolicies/status", ("patch", "update"), ()),
    ("mirrorgate.dev", "mirrorpolicies", READ, ()),
    ("mirrorgate.dev", "mirrorpolicies/status", ("patch", "update"), ()),
}
LEASE_RULES = {
    ("coordination.k8s.io", "leases", ("create",), ()),
    ("coordination.k8s.io", "leases", ("get", "update"), ("mirrorgate-leader",)),
}

# Every metric mirrorgate exports (counters as exposed, with ``_total``), plus the histogram series.
HISTOGRAMS = {"mirrorgate_mirror_duration_seconds"}
METRICS = {
    "mirrorgate_mirror_sent_total",
    "mirrorgate_mirror_requests_total",
    "mirrorgate_mirror_dropped_total",
    "mirrorgate_mirror_inflight",
    "mirrorgate_mirror_queued",
    "mirrorgate_mirror_breaker_open",
    "mirrorgate_mirror_sampled_out_total",
    "mirrorgate_mirror_buffered_bytes",
    "mirrorgate_connections",
    "mirrorgate_connections_rejected_total",
    "mirrorgate_tasks",
    "mirrorgate_reloads_total",
    "mirrorgate_leader",
    "mirrorgate_kube_watch_connected",
    "mirrorgate_kube_synced",
} | {h + s for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count")}
# The one rule over another exporter (kube-state-metrics) and Prometheus' own `up`.
OTHER_METRICS = {"up", "kube_deployment_status_replicas_ready", "kube_deployment_spec_replicas"}


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _resources(kustomization: Path) -> list[Path]:
    """The resources and components a kustomization names."""
    k = _yaml_docs(kustomization)[0]
    return [(kustomization.parent / n).resolve() for n in (*k.get("resources", ()), *k.get("components", ()))]


def _named(kustomization: Path) -> list[Path]:
    """Every path a kustomization names: resources, components and generator files."""
    generators = _yaml_docs(kustomization)[0].get("configMapGenerator", ())
    files = [f.split("=", 1)[-1] for gen in generators for f in gen.get("files", ())]
    return _resources(kustomization) + [(kustomization.parent / f).resolve() for f in files]


def _kustomizations() -> list[Path]:
    return sorted(BASE.rglob("kustomization.yaml"))


def _manifest_files() -> list[Path]:
    return sorted(p.resolve() for p in BASE.rglob("*") if p.suffix in (".yaml", ".json") and p.stem != "kustomization")


def _generated(kustomization: Path) -> list[dict[str, Any]]:
    """The ConfigMaps a configMapGenerator makes (name suffix hash disabled)."""
    out = []
    for gen in _yaml_docs(kustomization)[0].get("configMapGenerator", ()):
        data = {}
        for f in gen.get("files", ()):
            key, _, name = f.rpartition("=")
            data[key or Path(name).name] = (kustomization.parent / name).read_text()
        meta = {"name": gen["name"], "namespace": gen["namespace"], "labels": gen["options"]["labels"]}
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
    return out


def _build(directory: Path) -> list[dict[str, Any]]:
    """What ``kustomize build`` of a directory emits (no transformers are used here)."""
    kustomization = directory / "kustomization.yaml"
    objects = _generated(kustomization)
    for path in _resources(kustomization):
        objects += _build(path) if path.is_dir() else _yaml_docs(path)
    return objects


@cache
def _all_objects() -> list[dict[str, Any]]:
    """Base and component, built once (tests only read them)."""
    return _build(BASE) + _build(PROMETHEUS)


def _one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in _all_objects() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def _container() -> dict[str, Any]:
    containers: list[dict[str, Any]] = _one("Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def test_every_manifest_parses() -> None:
    for path in _manifest_files():
        if path.suffix == ".json":
            assert isinstance(json.loads(path.read_text()), dict), path
            continue
        for doc in _yaml_docs(path):
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path
            assert doc["metadata"].get("name"), path


def test_kustomizations_name_only_existing_files() -> None:
    for kustomization in _kustomizations():
        for path in _named(kustomization):
            assert path.exists(), f"{kustomization}: {path} does not exist"
            if path.is_dir():
                assert (path / "kustomization.yaml").is_file(), path


def test_every_manifest_file_is_named_by_exactly_one_kustomization() -> None:
    named = Counter(p for k in _kustomizations() for p in _named(k) if p.is_file())
    assert {p: n for p, n in named.items() if n != 1} == {}
    assert sorted(named) == _manifest_files()


def test_the_component_is_not_part_of_the_base() -> None:
    base = _yaml_docs(BASE / "kustomization.yaml")[0]
    assert base["kind"] == "Kustomization"
    assert "components" not in base
    assert _yaml_docs(PROMETHEUS / "kustomization.yaml")[0]["kind"] == "Component"


def test_object_names_are_unique() -> None:
    keys = Counter((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in _all_objects())
    assert [k for k, n in keys.items() if n > 1] == []


def test_kubernetes_objects_validate_against_the_schema() -> None:
    failures = []
    for obj in _all_objects():
        if _group(obj["apiVersion"]) not in CRD_GROUPS:
            try:
                kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {e.message}")
    assert failures == []


def test_objects_of_other_kinds_are_known_crds() -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in _all_objects() if _group(o["apiVersion"]) in CRD_GROUPS}
    assert kinds == {
        ("gateway.networking.k8s.io/v1", "GatewayClass"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
    }


def test_the_gateway_class_loads_through_mirrorgate() -> None:
    base_files = [str(p) for p in _named(BASE / "kustomization.yaml") if p.is_file()]
    result = load_paths(base_files)
    assert result.errors == ()
    assert result.warnings == ()
    [gc] = result.snapshot.gateway_classes
    assert (gc.metadata.name, gc.spec.controller_name) == ("mirrorgate", CONTROLLER_NAME)
    assert not any(a.startswith("--controller-name") for a in _container()["args"])


def _rules(kind: str) -> set[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    out = set()
    for rule in _one(kind)["rules"]:
        names = tuple(sorted(rule.get("resourceNames", ())))
        for group in rule["apiGroups"]:
            out |= {(group, r, tuple(sorted(rule["verbs"])), names) for r in rule["resources"]}
    return out


def test_cluster_role_grants_exactly_what_the_code_needs() -> None:
    assert _rules("ClusterRole") == CLUSTER_RULES


def test_lease_role_grants_exactly_what_leader_election_needs() -> None:
    assert _rules("Role") == LEASE_RULES
    assert _one("Role")["metadata"]["namespace"] == _one("Deployment")["metadata"]["namespace"]


def test_bindings_name_the_deployments_service_account() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    account = _one("ServiceAccount")["metadata"]
    assert pod["serviceAccountName"] == account["name"]
    assert pod["automountServiceAccountToken"] is True
    for kind, role in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = _one(kind)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role,
            "name": _one(role)["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
        ]


def _flag(name: str) -> str:
    [value] = [a.split("=", 1)[1] for a in _container()["args"] if a.startswith(f"--{name}=")]
    return str(value)


def _container_port(name: str) -> int:
    [port] = [p["containerPort"] for p in _container()["ports"] if p["name"] == name]
    return int(port)


def test_probes_hit_admin_routes_on_the_admin_port() -> None:
    app = AdminApp(registry=CollectorRegistry(), table=RoutingTable, status=dict, ready=lambda: False)
    ready, live = _container()["readinessProbe"]["httpGet"], _container()["livenessProbe"]["httpGet"]
    assert app.handle(b"GET", ready["path"].encode())[0] == 503, "readiness must follow AdminApp.ready"
    assert app.handle(b"GET", live["path"].encode())[0] == 200, "liveness must answer while the process runs"
    assert ready["port"] == live["port"] == "admin"
    assert _flag("admin") == f"0.0.0.0:{_container_port('admin')}"


def test_services_target_the_container_ports() -> None:
    listeners = _one("Service", "mirrorgate")
    assert listeners["spec"]["type"] == "LoadBalancer"
    container_ports = {p["containerPort"] for p in _container()["ports"]}
    for port in listeners["spec"]["ports"]:
        assert port["port"] == port["targetPort"] in container_ports, port
    assert {80, 8080} <= {p["port"] for p in listeners["spec"]["ports"]}
    meta = listeners["metadata"]
    assert _flag("publish-service") == f"{meta['namespace']}/{meta['name']}"
    [metrics] = _one("Service", "mirrorgate-metrics")["spec"]["ports"]
    assert (metrics["port"], metrics["targetPort"]) == (_container_port("admin"), "admin")


def test_the_network_policy_opens_every_port_but_admin() -> None:
    rules = _one("NetworkPolicy")["spec"]["ingress"]
    admin = _container_port("admin")
    open_ranges = [(p["port"], p["endPort"]) for r in rules if "from" not in r for p in r["ports"]]
    assert all(not lo <= admin <= hi for lo, hi in open_ranges)
    for port in _one("Service", "mirrorgate")["spec"]["ports"]:
        assert any(lo <= port["targetPort"] <= hi for lo, hi in open_ranges), port


def test_the_pod_is_locked_down() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    ctx, cctx = pod["securityContext"], _container()["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] > 0
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert cctx == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"} in ctx["sysctls"]


def test_termination_outlasts_prestop_and_grace() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    command = _container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[:1] == PRESTOP_SLEEP
    assert pod["terminationGracePeriodSeconds"] > int(command[1]) + float(_flag("grace"))


def test_dockerfile_user_is_the_pods_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    [user] = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", dockerfile, re.MULTILINE)
    ctx = _one("Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert (int(user[0]), int(user[1] or user[0])) == (ctx["runAsUser"], ctx["runAsGroup"])
    assert re.search(rf"useradd\b.*--uid {ctx['runAsUser']}\b", dockerfile)


def _expressions() -> list[str]:
    rule = _one("PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    dashboard = json.loads(_one("ConfigMap", "mirrorgate-dashboard")["data"]["mirrorgate.json"])
    return exprs + [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_expressions_use_only_exported_metrics() -> None:
    used = {m for e in _expressions() for m in re.findall(r"\bmirrorgate_[a-z_]+", e)}
    assert used - METRICS == set()
    others = {m for e in _expressions() for m in re.findall(r"\b(?:kube_[a-z_]+|up)\b(?=\{)", e)}
    assert others - OTHER_METRICS == set()


def test_the_dashboard_is_picked_up_by_the_grafana_sidecar() -> None:
    assert _one("ConfigMap", "mirrorgate-dashboard")["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_the_gatewayconfig_crd_has_every_field_with_its_type_minimum_and_pattern() -> None:
    from mirrorgate.model.gwconfig import FIELDS
    from mirrorgate.providers.admission.gwconfig import BYTES, BYTES_POSITIVE
    from mirrorgate.providers.admission.schema import DURATION

    (crd,) = yaml.safe_load_all((BASE / "crds" / "mirrorgate.dev_gatewayconfigs.yaml").read_text())
    kubernetes_validate.validate(crd, K8S_VERSION, strict=True)  # raises when invalid
    (version,) = crd["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    listed = {f"{s}.{a}" for s, body in spec.items() for a in body["properties"]}
    assert listed == {f.name for f in FIELDS}
    for f in FIELDS:
        section, attr = f.name.split(".")
        prop = spec[section]["properties"][attr]
        if f.type == "int":
            assert (prop["type"], prop["minimum"]) == ("integer", f.minimum), f.name
        elif f.type == "bytes":
            integer, string = prop["anyOf"]
            assert integer["minimum"] == f.minimum, f.name
            assert string["pattern"] == (BYTES_POSITIVE if f.minimum else BYTES).source, f.name
        elif f.type == "duration":
            assert prop["pattern"] == DURATION.source, f.name
            assert ("x-kubernetes-validations" in prop) == bool(f.minimum), f.name


def _gatewayconfig_samples() -> list[dict[str, Any]]:
    """One spec per (field, value): the least value, one below it, and a string of each shape."""
    from mirrorgate.model.gwconfig import FIELDS

    values: dict[str, list[object]] = {
        "bool": [True, "yes"],
        "format": ["json", "yaml"],
        "string": ["-", ""],
        "duration": ["2s", "1h30m", "0s", "0ms", "2", "1.5s", "-1s"],
    }
    samples: list[dict[str, Any]] = []
    for f in FIELDS:
        section, attr = f.name.split(".")
        candidates = values.get(f.type, [f.minimum, f.minimum - 1, "64Ki", "0", "1.5Mi", "12x"])
        if f.type == "int":
            candidates = [f.minimum, f.minimum - 1, "5"]
        samples.extend({section: {attr: v}} for v in candidates)
    return samples


def test_the_gatewayconfig_crd_schema_and_admission_agree() -> None:
    """What the API server's OpenAPI check (jsonschema here) and CEL rules (celpy) refuse,
    mirrorgate's admission refuses too, and the other way round, field by field."""
    import celpy
    import jsonschema  # type: ignore[import-untyped]  # kubernetes-validate's dependency
    import msgspec
    from celpy.adapter import json_to_cel

    from mirrorgate.model.gwconfig import GatewayConfig
    from mirrorgate.providers.admission import admit

    (crd,) = yaml.safe_load_all((BASE / "crds" / "mirrorgate.dev_gatewayconfigs.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    outcomes = Counter[bool]()
    for spec in _gatewayconfig_samples():
        body = {
            "apiVersion": "mirrorgate.dev/v1alpha1",
            "kind": "GatewayConfig",
            "metadata": {"name": "cfg", "namespace": "ns"},
            "spec": spec,
        }
        schema_ok = jsonschema.Draft4Validator(schema).is_valid(body)
        if schema_ok:  # then the CEL rules, as the API server evaluates them
            ((section, fields),) = spec.items()
            ((attr, value),) = fields.items()
            node = schema["properties"]["spec"]["properties"][section]["properties"][attr]
            for rule in node.get("x-kubernetes-validations", ()):
                env = celpy.Environment()
                result = env.program(env.compile(rule["rule"])).evaluate({"self": json_to_cel(value)})
                schema_ok = schema_ok and bool(result)
        try:
            obj = msgspec.convert(body, GatewayConfig)
        except msgspec.ValidationError:
            admitted = False
        else:
            admitted = admit(obj) == []
        assert schema_ok == admitted, spec
        outcomes[admitted] += 1
    assert outcomes[True] > 40  # both sides of every field were tried
    assert outcomes[False] > 40
