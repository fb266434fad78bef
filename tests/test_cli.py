"""The `validate` and `status` commands: exit codes, error lines, output shape."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mirrorgate.cli import main

VALID = """\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: mg}
spec: {controllerName: mirrorgate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, generation: 4}
spec:
  gatewayClassName: mg
  listeners: [{name: http, port: 8080, protocol: HTTP}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: backend}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, generation: 2}
spec:
  parentRefs: [{name: eg}]
  rules:
  - backendRefs: [{name: backend, port: 3000}]
"""

BOTH = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: http-mirror, namespace: team}
spec:
  parentRefs: [{name: eg}]
  rules:
  - backendRefs: [{name: backend, port: 3000}]
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef: {name: backend-2, port: 3000}
        percent: 42
        fraction: {numerator: 5, denominator: 1000}
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_validate_valid_exits_0_and_notes_skipped_kinds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ok.yaml", VALID)
    assert main(["validate", "-f", path]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}: skipping ServiceAccount backend (v1): not a kind mirrorgate uses" in err


def test_validate_invalid_prints_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bad.yaml", BOTH)
    assert main(["validate", "-f", path]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f'{path}: HTTPRoute team/http-mirror: spec.rules[0].filters[0].requestMirror: Invalid value: "object": '
        "Only one of percent or fraction may be specified in HTTPRequestMirrorFilter"
    ]


def test_validate_unknown_field_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "typo.yaml", VALID.replace("backendRefs: [{name: backend", "backendRef: [{name: backend"))
    assert main(["validate", "-f", path]) == 1
    out = capsys.readouterr().out
    assert 'HTTPRoute default/r: spec.rules[0].backendRef: unknown field "spec.rules[0].backendRef"' in out


def test_validate_broken_yaml_reports_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "broken.yaml", VALID + "---\nkind: [\n  x: y\n")
    assert main(["validate", "-f", path]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: invalid YAML: line ")


def test_directory_loads_yaml_files_in_name_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "b.yml", BOTH)
    write(tmp_path, "a.yaml", VALID)
    write(tmp_path, "c.txt", "not: yaml: at: all: [")
    assert main(["validate", "-f", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    assert out[0].startswith(str(tmp_path / "b.yml"))


def test_status_json_is_a_kubectl_list_with_computed_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ok.yaml", VALID)
    assert main(["status", "-f", path, "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["apiVersion"], doc["kind"]) == ("v1", "List")
    by_kind = {item["kind"]: item for item in doc["items"]}
    gw = by_kind["Gateway"]["status"]
    assert gw["addresses"] == [{"type": "IPAddress", "value": "0.0.0.0"}]
    assert {c["type"]: c["status"] for c in gw["conditions"]} == {"Accepted": "True", "Programmed": "True"}
    assert all(c["observedGeneration"] == 4 and "lastTransitionTime" in c for c in gw["conditions"])
    assert gw["listeners"][0]["attachedRoutes"] == 1
    parent = by_kind["HTTPRoute"]["status"]["parents"][0]
    conds = {c["type"]: (c["status"], c["reason"], c["observedGeneration"]) for c in parent["conditions"]}
    assert conds["Accepted"] == ("True", "Accepted", 2)
    assert conds["ResolvedRefs"] == ("False", "BackendNotFound", 2)
    assert parent["controllerName"] == "mirrorgate.dev/gateway-controller"
    assert parent["parentRef"] == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "eg"}
    # CRD defaults are applied, as the apiserver stores them
    assert by_kind["HTTPRoute"]["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]


def test_status_reads_stdin_and_yaml_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(VALID))
    assert main(["status", "-f", "-"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    assert [i["kind"] for i in doc["items"]] == ["GatewayClass", "Gateway", "HTTPRoute"]


def test_status_routing_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "ok.yaml", VALID)
    assert main(["status", "-f", path, "--routing-table", "--bind", "127.0.0.1"]) == 0
    table = yaml.safe_load(capsys.readouterr().out)
    assert table["servers"][0]["address"] == "127.0.0.1"
    assert table["servers"][0]["port"] == 8080


def test_status_shows_a_mirror_policy_with_its_conditions_and_its_mirror(capsys: pytest.CaptureFixture[str]) -> None:
    example = str(Path(__file__).parent.parent / "examples" / "mirrorpolicy-checkout.yaml")
    assert main(["status", "-f", example, "-o", "json"]) == 0
    [policy] = [i for i in json.loads(capsys.readouterr().out)["items"] if i["kind"] == "MirrorPolicy"]
    assert policy["spec"]["sampleBy"] == {"header": "x-user-id", "missing": "Skip"}
    conditions = {c["type"]: (c["status"], c["reason"]) for c in policy["status"]["conditions"]}
    assert conditions == {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}
    assert main(["status", "-f", example, "--routing-table", "-o", "json"]) == 0
    table = json.loads(capsys.readouterr().out)
    [route] = table["servers"][0]["listeners"][0]["virtualHosts"][0]["routes"]
    [mirror] = route["action"]["filters"]["mirrors"]
    assert (mirror["policy"], mirror["ppm"], mirror["timeoutMs"]) == ("mirrorpolicy/shop/checkout-v2", 500_000, 2000)


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BOTH)
    proc = subprocess.run(
        [sys.executable, "-m", "mirrorgate", "validate", "-f", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "Only one of percent or fraction" in proc.stdout
    assert "Traceback" not in proc.stderr
