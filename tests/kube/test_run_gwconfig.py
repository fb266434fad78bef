"""GatewayConfig from the API server: ``run --kubernetes`` against the fake API server.

The process serves nothing before its first sync, so the GatewayConfig it finds then applies
whole, the settings needing a restart included (``serve/gwsettings.py`` rule 3); a later change
to one of those is listed under ``pendingRestart``. The mirror access log the first sync names is
the one each process (each worker) writes to; one that cannot be opened fails that reload (nothing
served, the error on ``/status``) until the GatewayConfig names one that can. A GatewayConfig
admission refuses, or one deleted, makes the class that names it ``Accepted=False``, reason
``InvalidParameters``, written to its status; its Gateways stay served, with the last valid
GatewayConfig's settings, else the defaults.
"""

import re
from pathlib import Path
from typing import Any

import pytest

from tests.kube.cluster import backend, gateway, gateway_class, route, status_of
from tests.kube.fakeapi import FakeApiServer
from tests.kube.test_run_kubernetes import Start, kube, readyz, until, until_ready
from tests.runtime.conftest import Backend, admin_json, backends, gateway_config, get, pod_of
from tests.support.backends import free_port

__all__ = ["backends", "kube"]

REF = {"group": "mirrorgate.dev", "kind": "GatewayConfig", "name": "cfg", "namespace": "mirrorgate-system"}


def config(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mirrorgate.dev/v1alpha1",
        "kind": "GatewayConfig",
        "metadata": {"name": "cfg", "namespace": "mirrorgate-system"},
        "spec": spec,
    }


def world(api: FakeApiServer, backends: dict[str, Backend], port: int, spec: dict[str, Any]) -> None:
    cls = gateway_class()
    cls["spec"]["parametersRef"] = REF
    api.put("gatewayclasses", cls)
    api.put("gatewayconfigs", config(spec))
    api.put("gateways", gateway(port))
    backend(api, "svc-a", backends["a"].port)
    api.put("httproutes", route("ra", "svc-a", "/a"))


async def test_the_first_sync_applies_the_whole_gatewayconfig_and_a_later_restart_field_change_is_pending(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend], tmp_path: Path
) -> None:
    port = free_port()
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    world(api, backends, port, {"accessLog": {"destination": str(first), "format": "json"}})
    gw = await kube()
    admin = await gw.admin_port()
    await until_ready(admin)
    assert pod_of(await get(port, "/a?first")) == "a-1-2"

    async def logged() -> bool:
        return first.exists() and "/a?first" in first.read_text()

    await until(logged, "the access-log line in the GatewayConfig's file")
    section = await gateway_config(admin)
    assert section["ref"] == "mirrorgate-system/cfg"
    assert section["pendingRestart"] == []
    destination = section["settings"]["accessLog.destination"]
    assert (destination["value"], destination["source"]) == (str(first), "GatewayConfig mirrorgate-system/cfg")
    assert (await get(port, "/a?first")).status == 200

    api.put("gatewayconfigs", config({"accessLog": {"destination": str(second), "format": "text"}}))

    async def pending() -> bool:
        return bool((await gateway_config(admin))["pendingRestart"])

    await until(pending, "the destination change to wait for a restart")
    section = await gateway_config(admin)
    (change,) = section["pendingRestart"]
    assert (change["field"], change["served"], change["wanted"]) == ("accessLog.destination", str(first), str(second))
    assert section["settings"]["accessLog.format"]["value"] == "text"  # applied at reload
    await gw.wait_line(r"accessLog\.destination changed to .* needs a restart")
    assert await gw.stop() == 0


async def test_a_gatewayconfig_admission_refuses_makes_its_class_invalid_parameters(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port, {"mirror": {"maxQueuePerBackend": -1}})
    gw = await kube()
    admin = await gw.admin_port()

    async def rejected() -> bool:
        conditions = status_of(api, "gatewayclasses", "mirrorgate").get("conditions") or []
        return any(c.get("reason") == "InvalidParameters" for c in conditions)

    await until(rejected, "the GatewayClass to be InvalidParameters")
    (condition,) = status_of(api, "gatewayclasses", "mirrorgate")["conditions"]
    assert condition["status"] == "False"
    assert condition["message"].startswith(
        "GatewayConfig mirrorgate-system/cfg is invalid: spec.mirror.maxQueuePerBackend: Invalid value: -1"
    )
    assert condition["message"].endswith("; serving with the defaults.")
    await until_ready(admin)  # its Gateway is served all the same, with the defaults
    assert pod_of(await get(port, "/a")) == "a-1-2"
    section = await gateway_config(admin)
    assert section["ref"] is None
    assert section["fallback"].endswith("; serving with the defaults")
    setting = section["settings"]["mirror.maxQueuePerBackend"]
    assert (setting["value"], setting["source"]) == (64, "default")
    api.put("gatewayconfigs", config({"mirror": {"maxQueuePerBackend": 0}}))

    async def accepted() -> bool:
        conditions = status_of(api, "gatewayclasses", "mirrorgate").get("conditions") or []
        return any(c.get("status") == "True" for c in conditions)

    await until(accepted, "the GatewayClass to be accepted once the GatewayConfig is fixed")
    await until_ready(admin)
    assert pod_of(await get(port, "/a")) == "a-1-2"
    setting = (await gateway_config(admin))["settings"]["mirror.maxQueuePerBackend"]
    assert (setting["value"], setting["source"]) == (0, "GatewayConfig mirrorgate-system/cfg")
    assert await gw.stop() == 0


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: each worker switches its log before it first binds
async def test_the_first_sync_opens_the_mirror_access_log_the_gatewayconfig_names(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend], tmp_path: Path, workers: str
) -> None:
    port = free_port()
    mirror_log = tmp_path / "mirror.log"
    world(api, backends, port, {"mirrorAccessLog": {"destination": str(mirror_log)}})
    mirrored = route("ra", "svc-a", "/a")
    mirrored["spec"]["rules"][0]["filters"] = [
        {"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "svc-m", "port": 8080}}}
    ]
    backend(api, "svc-m", backends["m"].port)
    api.put("httproutes", mirrored)
    gw = await kube("--workers", workers)
    admin = await gw.admin_port()
    await until_ready(admin)
    assert pod_of(await get(port, "/a?mirrored")) == "a-1-2"

    async def logged() -> bool:
        return mirror_log.exists() and "backend=service/default/svc-m:8080" in mirror_log.read_text()

    await until(logged, "the mirror line in the GatewayConfig's file")
    (line,) = mirror_log.read_text().splitlines()
    assert ' mirror "GET /a?mirrored HTTP/1.1" 200 ' in line
    section = await gateway_config(admin)
    assert section["pendingRestart"] == []
    destination = section["settings"]["mirrorAccessLog.destination"]
    assert (destination["value"], destination["source"]) == (str(mirror_log), "GatewayConfig mirrorgate-system/cfg")
    assert await gw.stop() == 0


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: the supervisor checks the file its workers would open
async def test_a_first_sync_naming_a_mirror_log_that_cannot_be_opened_fails_and_a_fixed_one_is_served(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend], tmp_path: Path, workers: str
) -> None:
    port = free_port()
    missing = tmp_path / "no-such-dir" / "mirror.log"
    world(api, backends, port, {"mirrorAccessLog": {"destination": str(missing)}})
    gw = await kube("--workers", workers)
    admin = await gw.admin_port()
    line = (
        "GatewayConfig mirrorgate-system/cfg: mirrorAccessLog.destination: "
        f"cannot open '{missing}' for appending: No such file or directory"
    )
    await gw.wait_line(re.escape(line))
    error = (await admin_json(admin, "/status"))["lastReloadError"]
    assert isinstance(error, dict)
    assert error["errors"] == [line]
    assert (await readyz(admin))[0] == 503  # nothing served: the failed reload changed nothing
    assert not [entry for entry in gw.lines if "Traceback" in entry]

    fixed = tmp_path / "mirror.log"
    api.put("gatewayconfigs", config({"mirrorAccessLog": {"destination": str(fixed)}}))
    await until_ready(admin)
    destination = (await gateway_config(admin))["settings"]["mirrorAccessLog.destination"]
    assert destination["value"] == str(fixed)
    assert fixed.exists()
    assert await gw.stop() == 0


async def test_a_gatewayconfig_deleted_or_refused_while_serving_keeps_the_gateway_served_with_the_last_valid_settings(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port, {"mirror": {"maxQueuePerBackend": 7}})
    gw = await kube()
    admin = await gw.admin_port()
    await until_ready(admin)
    assert pod_of(await get(port, "/a?before")) == "a-1-2"
    assert (await gateway_config(admin))["settings"]["mirror.maxQueuePerBackend"]["value"] == 7

    async def class_says(text: str) -> bool:
        conditions = status_of(api, "gatewayclasses", "mirrorgate").get("conditions") or []
        return any(text in c.get("message", "") for c in conditions)

    last = "serving with the last valid settings (GatewayConfig mirrorgate-system/cfg)"
    api.delete("gatewayconfigs", "cfg", "mirrorgate-system")
    await until(lambda: class_says(f"not found; {last}"), "the GatewayClass to say it kept the last valid settings")
    (condition,) = status_of(api, "gatewayclasses", "mirrorgate")["conditions"]
    assert (condition["status"], condition["reason"]) == ("False", "InvalidParameters")
    assert condition["message"] == f"GatewayConfig mirrorgate-system/cfg not found; {last}."
    assert (await readyz(admin))[0] == 200
    assert pod_of(await get(port, "/a?deleted")) == "a-1-2"
    gw_status = status_of(api, "gateways", "gw", "default")
    assert {c["type"]: c["status"] for c in gw_status["conditions"]} == {"Accepted": "True", "Programmed": "True"}
    section = await gateway_config(admin)
    assert section["fallback"] == f"GatewayConfig mirrorgate-system/cfg not found; {last}"
    setting = section["settings"]["mirror.maxQueuePerBackend"]
    assert (setting["value"], setting["source"]) == (7, "GatewayConfig mirrorgate-system/cfg (last valid)")
    await gw.wait_line(re.escape(f"GatewayConfig mirrorgate-system/cfg not found; {last}."))

    api.put("gatewayconfigs", config({"mirror": {"maxQueuePerBackend": -1}}))  # refused by admission
    await until(lambda: class_says("is invalid: "), "the GatewayClass to say the GatewayConfig is invalid")
    (condition,) = status_of(api, "gatewayclasses", "mirrorgate")["conditions"]
    assert condition["message"].endswith(f"; {last}.")
    assert pod_of(await get(port, "/a?refused")) == "a-1-2"
    assert (await gateway_config(admin))["settings"]["mirror.maxQueuePerBackend"]["value"] == 7
    assert not [line for line in gw.lines if "stopped listening" in line]
    assert await gw.stop() == 0
