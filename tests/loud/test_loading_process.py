"""Loading mistakes users make, through a real ``mirrorgate`` process: Istio's API instead of the
Gateway API, a near miss of a kind or group, a repeated YAML key, the same object in two files."""

import re
from pathlib import Path

from tests.loud.test_errors import mirrorgate
from tests.runtime.conftest import Starter, get

GW = "gateway.networking.k8s.io"
ISTIO = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin}
spec:
  hosts: [httpbin]
  http:
  - route: [{destination: {host: httpbin, subset: v1}, weight: 100}]
    mirror: {host: httpbin, subset: v2}
    mirrorPercentage: {value: 100.0}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
"""
ROUTE = """apiVersion: {api}
kind: {kind}
metadata: {{name: r}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{backendRefs: [{{name: b, port: 80}}]}}]
"""


def test_validate_warns_about_istio_kinds_and_says_nothing_would_be_served(tmp_path: Path) -> None:
    path = tmp_path / "istio.yaml"
    path.write_text(ISTIO)
    proc = mirrorgate("validate", "-f", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert (
        f"warning: {path}: skipping VirtualService httpbin (networking.istio.io/v1): Istio networking APIs are not "
        "loaded; the Gateway API equivalent is an HTTPRoute (mirroring: a RequestMirror filter; in a mesh the "
        "HTTPRoute's parentRef is the Service, as in examples/istio-mesh-mirror.yaml)"
    ) in lines, proc.stderr
    assert any(line.startswith(f"warning: {path}: skipping DestinationRule httpbin") for line in lines), proc.stderr
    assert "warning: no listener is served: the configuration has no Gateway (0 object(s) loaded)" in lines
    assert "Traceback" not in proc.stderr


async def test_run_with_istio_kinds_is_not_ready_and_says_why(tmp_path: Path, gateways: Starter) -> None:
    path = tmp_path / "istio.yaml"
    path.write_text(ISTIO)
    gw = await gateways(path, "--no-watch")
    admin = await gw.admin_port()
    await gw.wait_line(r"warning: .*skipping VirtualService httpbin .*examples/istio-mesh-mirror\.yaml")
    r = await get(admin, "/readyz", host="127.0.0.1")
    assert (r.status, r.body.decode()) == (
        503,
        "not ready: no listener is served: the configuration has no Gateway (0 object(s) loaded)\n",
    )
    assert await gw.stop() == 0
    assert not any("Traceback" in line for line in gw.lines)


NEAR_MISSES = {
    (f"{GW}/v1", "HTTPRout"): f'kind: no matches for kind "HTTPRout" in version "{GW}/v1": did you mean HTTPRoute?',
    (f"{GW}/v1", "httproute"): f'kind: no matches for kind "httproute" in version "{GW}/v1": did you mean HTTPRoute?',
    ("v1", "Servcie"): 'kind: no matches for kind "Servcie" in version "v1": did you mean Service?',
    ("gateway.networking.k8s.oi/v1", "HTTPRoute"): 'apiVersion: no matches for kind "HTTPRoute" in version '
    f'"gateway.networking.k8s.oi/v1": did you mean {GW}?',
}


def test_near_misses_of_kinds_and_groups_are_errors(tmp_path: Path) -> None:
    for (api, kind), message in NEAR_MISSES.items():
        path = tmp_path / "typo.yaml"
        path.write_text(ROUTE.format(api=api, kind=kind))
        proc = mirrorgate("validate", "-f", str(path))
        assert proc.returncode == 1, (kind, proc.stdout, proc.stderr)
        assert proc.stdout.splitlines() == [f"{path}: {kind} default/r: {message}"], (kind, proc.stdout)
        assert "Traceback" not in proc.stderr


def test_a_repeated_key_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(
        ROUTE.format(api=f"{GW}/v1", kind="HTTPRoute").replace(
            "rules:",
            "rules:\n  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}, "
            "percent: 42, percent: 7}}]\n    backendRefs: [{name: b, port: 80}]\n  # and",
            1,
        )
    )
    proc = mirrorgate("validate", "-f", str(path))
    assert proc.returncode == 1, proc.stdout
    assert re.fullmatch(
        rf'{re.escape(str(path))}: invalid YAML: line 7: key "percent" already set in map', proc.stdout.strip()
    )


def test_later_files_win_as_with_kubectl_apply(tmp_path: Path) -> None:
    before, after = tmp_path / "before.yaml", tmp_path / "after.yaml"
    before.write_text(ROUTE.format(api=f"{GW}/v1", kind="HTTPRoute"))
    after.write_text(ROUTE.format(api=f"{GW}/v1", kind="HTTPRoute").replace("name: b, port: 80", "name: b2, port: 80"))
    proc = mirrorgate("validate", "-f", str(before), "-f", str(after))
    assert proc.returncode == 0, proc.stdout
    assert f"{after}: HTTPRoute default/r replaces its definition in {before} (later files win)" in proc.stderr
