"""GatewayConfig through GatewayClass.spec.parametersRef: values from YAML, flags winning,
sources shown by ``mirrorgate status`` and ``/status``, InvalidParameters, the one-config rule,
and a real gateway whose mirror backend sees the Host the GatewayConfig asked for, before and
after a reload."""

import json
from pathlib import Path
from typing import Any

import pytest

from mirrorgate.cli import main
from tests.runtime.conftest import (
    Backend,
    HostRecorder,
    Starter,
    admin_json,
    gateway_yaml,
    get,
    wait_hosts,
    write_atomically,
)
from tests.support.backends import free_port

CLASS = "mirrorgate"  # the class tests/support/manifests.py's Gateways use


def class_doc(
    name: str = CLASS, ref: str = "{group: mirrorgate.dev, kind: GatewayConfig, name: cfg, namespace: ns}"
) -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: {name}}}
spec:
  controllerName: mirrorgate.dev/gateway-controller
  parametersRef: {ref}
"""


def config_doc(spec: str, name: str = "cfg") -> str:
    return f"""---
apiVersion: mirrorgate.dev/v1alpha1
kind: GatewayConfig
metadata: {{name: {name}, namespace: ns}}
spec:
{spec}"""


GATEWAY = """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: mirrorgate
  listeners: [{name: http, port: 8080, protocol: HTTP}]
"""


def status_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["status", "-o", "json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def class_condition(doc: dict[str, Any], name: str = CLASS) -> dict[str, Any]:
    (item,) = [i for i in doc["items"] if i["kind"] == "GatewayClass" and i["metadata"]["name"] == name]
    (condition,) = item["status"]["conditions"]
    return dict(condition)


def test_yaml_sets_values_a_flag_overrides_one_and_status_says_where_each_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "all.yaml"
    spec = (
        "  mirror: {shadowHostSuffix: false, maxConcurrentPerBackend: 64, timeout: 2s, bodyLagBudget: 64Ki}\n"
        "  limits: {maxBodyBytes: 1Mi, keepaliveTimeout: 1m30s}\n"
        "  accessLog: {format: json}\n"
        "  shutdown: {grace: 3s}\n"
    )
    path.write_text(class_doc() + config_doc(spec) + GATEWAY)
    code, doc, err = status_json(capsys, "-f", str(path), "--mirror-limit", "timeout=7", "--grace", "1")
    assert code == 0, err
    assert class_condition(doc)["status"] == "True"
    section = doc["gatewayConfig"]
    assert (section["ref"], section["gatewayClass"]) == ("ns/cfg", CLASS)
    got = {name: (f["value"], f["source"]) for name, f in section["settings"].items()}
    ours = "GatewayConfig ns/cfg"
    assert got["mirror.shadowHostSuffix"] == (False, ours)
    assert got["mirror.maxConcurrentPerBackend"] == (64, ours)
    assert got["mirror.bodyLagBudget"] == (65536, ours)
    assert got["limits.maxBodyBytes"] == (1 << 20, ours)
    assert got["limits.keepaliveTimeout"] == (90.0, ours)
    assert got["accessLog.format"] == ("json", ours)
    assert got["mirror.timeout"] == (7.0, "flag")  # the flag wins over the GatewayConfig's 2s
    assert got["shutdown.grace"] == (1.0, "flag")
    assert got["mirror.maxQueuePerBackend"] == (64, "default")
    assert section["settings"]["accessLog.destination"]["reload"] == "restart"
    assert section["settings"]["mirror.timeout"]["reload"] == "applies"

    code = main(["status", "-f", str(path)])  # the text (YAML) output has the same section
    out, _ = capsys.readouterr()
    assert code == 0
    assert "source: GatewayConfig ns/cfg" in out
    assert "ref: ns/cfg" in out


def test_an_invalid_gatewayconfig_is_an_error_naming_the_field_and_the_class_is_invalid_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(class_doc() + config_doc("  mirror: {timeout: 0s, maxQueuePerBackend: -1}\n") + GATEWAY)
    assert main(["validate", "-f", str(path)]) == 1
    out, _ = capsys.readouterr()
    assert f"{path}: GatewayConfig ns/cfg: spec.mirror.maxQueuePerBackend: Invalid value: -1: " in out
    assert "should be greater than or equal to 0" in out
    code, doc, err = status_json(capsys, "-f", str(path))
    assert code == 1
    assert "spec.mirror.maxQueuePerBackend" in err
    condition = class_condition(doc)
    assert (condition["status"], condition["reason"]) == ("False", "InvalidParameters")
    assert condition["message"].startswith("GatewayConfig ns/cfg is invalid: spec.mirror.maxQueuePerBackend")
    assert condition["message"].endswith("; serving with the defaults.")
    (gateway,) = [i for i in doc["items"] if i["kind"] == "Gateway"]  # still ours, still served
    assert [(c["type"], c["status"]) for c in gateway["status"]["conditions"]] == [
        ("Accepted", "True"),
        ("Programmed", "True"),
    ]
    assert doc["gatewayConfig"]["ref"] is None

    path.write_text(class_doc() + config_doc("  mirror: {timeout: 0s}\n") + GATEWAY)
    assert main(["validate", "-f", str(path)]) == 1
    out, _ = capsys.readouterr()
    assert 'spec.mirror.timeout: Invalid value: "string": must be greater than 0s' in out


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "{group: mirrorgate.dev, kind: GatewayConfig, name: other, namespace: ns}",
            "GatewayConfig ns/other not found",
        ),
        ("{group: mirrorgate.dev, kind: GatewayConfig, name: cfg}", "ParametersRef.namespace is required"),
        (
            "{group: '', kind: ConfigMap, name: cfg, namespace: ns}",
            "ParametersRef must name a mirrorgate.dev GatewayConfig",
        ),
    ],
    ids=["missing", "no-namespace", "other-kind"],
)
def test_a_reference_to_nothing_usable_is_invalid_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str, message: str
) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(class_doc(ref=ref) + config_doc("  mirror: {timeout: 2s}\n") + GATEWAY)
    code, doc, _ = status_json(capsys, "-f", str(path))
    assert code == 0
    condition = class_condition(doc)
    assert (condition["status"], condition["reason"]) == ("False", "InvalidParameters")
    assert condition["message"].startswith(message)
    assert condition["message"].endswith("; serving with the defaults.")
    section = doc["gatewayConfig"]
    assert section["settings"]["mirror.timeout"]["source"] == "default"
    assert section["fallback"].endswith("; serving with the defaults")
    assert section["fallback"][1:] == condition["message"][1:-1]  # the message as a sentence: capital, period
    assert (section["ref"], section["gatewayClass"]) == (None, CLASS)


def test_two_classes_naming_two_configs_the_first_by_name_wins_and_the_other_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "{group: mirrorgate.dev, kind: GatewayConfig, name: other, namespace: ns}"
    path = tmp_path / "all.yaml"
    path.write_text(
        class_doc("b-class", other)
        + class_doc("a-class")
        + config_doc("  mirror: {timeout: 2s}\n")
        + config_doc("  mirror: {timeout: 9s}\n", name="other")
    )
    code, doc, _ = status_json(capsys, "-f", str(path))
    assert code == 0
    assert doc["gatewayConfig"]["ref"] == "ns/cfg"
    assert doc["gatewayConfig"]["settings"]["mirror.timeout"]["value"] == 2.0
    loser = class_condition(doc, "b-class")
    assert loser["status"] == "True"
    assert "GatewayConfig ns/other is not in effect: GatewayClass a-class" in loser["message"]


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: the supervisor sends the settings with each table
async def test_a_gatewayconfig_sets_the_host_a_real_mirror_receives_and_a_reload_changes_it(
    tmp_path: Path,
    backends: dict[str, Backend],
    recorder: HostRecorder,
    gateways: Starter,
    workers: str,
) -> None:
    port = free_port()
    mirror = Backend(server=recorder, log=backends["m"].log, pod="rec")  # type: ignore[arg-type]  # has .port
    routes = tmp_path / "gw.yaml"
    routes.write_text(gateway_yaml([port], backends["a"], mirror))
    params = tmp_path / "params.yaml"  # a later file: its GatewayClass replaces the one of gw.yaml
    params.write_text(class_doc() + config_doc("  mirror: {shadowHostSuffix: false}\n"))
    gw = await gateways(routes, "-f", str(params), "--workers", workers)
    admin = await gw.admin_port()
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    assert (await get(port, "/one", host=f"example.com:{port}")).status == 200
    await wait_hosts(recorder, 1)
    assert recorder.hosts == [f"example.com:{port}"]  # no -shadow: the GatewayConfig said so
    status = await admin_json(admin, "/status")
    setting = status["gatewayConfig"]["settings"]["mirror.shadowHostSuffix"]  # type: ignore[index]
    assert (setting["value"], setting["source"]) == (False, "GatewayConfig ns/cfg")

    log_file = tmp_path / "access.log"
    spec = f"  mirror: {{shadowHostSuffix: true}}\n  accessLog: {{destination: {log_file}, format: json}}\n"
    write_atomically(params, class_doc() + config_doc(spec))
    await gw.wait_line(r"accessLog\.destination changed to .* needs a restart")
    await gw.count_lines(r"settings applied: mirror\.shadowHostSuffix, accessLog\.format", int(workers))
    assert (await get(port, "/two", host=f"example.com:{port}")).status == 200
    await wait_hosts(recorder, 2)
    assert recorder.hosts[1] == f"example.com-shadow:{port}"  # applied at reload
    status = await admin_json(admin, "/status")
    (pending,) = status["gatewayConfig"]["pendingRestart"]  # type: ignore[index]
    assert (pending["field"], pending["served"], pending["wanted"]) == ("accessLog.destination", "-", str(log_file))
    assert await gw.stop() == 0


def test_validate_warns_that_the_class_is_invalid_parameters_and_its_gateways_are_served_with_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "all.yaml"
    ref = "{group: mirrorgate.dev, kind: GatewayConfig, name: other, namespace: ns}"
    path.write_text(class_doc(ref=ref) + config_doc("  mirror: {timeout: 2s}\n") + GATEWAY)
    assert main(["validate", "-f", str(path)]) == 0  # every object is valid; the reference is not
    _, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: GatewayClass mirrorgate: Accepted=False (InvalidParameters): "
        "GatewayConfig ns/other not found; serving with the defaults."
    ]
    assert "not served" not in err
    assert "not ours" not in err


async def test_an_access_log_file_the_gatewayconfig_names_but_cannot_be_opened_stops_the_start(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    routes = tmp_path / "gw.yaml"
    routes.write_text(gateway_yaml([free_port()], backends["a"]))
    params = tmp_path / "params.yaml"
    missing = tmp_path / "no-such-dir" / "access.log"
    params.write_text(class_doc() + config_doc(f"  accessLog: {{destination: {missing}}}\n"))
    gw = await gateways(routes, "-f", str(params))
    assert await gw.exited() == 1
    line = (
        f"GatewayConfig ns/cfg: accessLog.destination: cannot open '{missing}' for appending: No such file or directory"
    )
    assert line in gw.lines
    assert not [entry for entry in gw.lines if "Traceback" in entry]
