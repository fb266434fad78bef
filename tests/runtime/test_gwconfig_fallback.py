"""A GatewayConfig never takes traffic down: a real ``run -f`` whose GatewayClass names a
GatewayConfig that does not exist serves its Gateways with the defaults; once one is added it
applies; once it is deleted again the class is ``Accepted=False``, reason ``InvalidParameters``,
and the Gateways keep being served with the last valid settings, which the class's message, a
warning line and ``/status`` say (``translate/params.py`` rule 2, ``serve/gwsettings.py`` rule 6)."""

import re
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.conftest import (
    Backend,
    GatewayProcess,
    HostRecorder,
    Starter,
    admin_json,
    gateway_config,
    gateway_yaml,
    get,
    wait_hosts,
    write_atomically,
)
from tests.runtime.test_gwconfig import class_doc, config_doc
from tests.support.backends import free_port

LAST_VALID = "GatewayConfig ns/cfg not found; serving with the last valid settings (GatewayConfig ns/cfg)"
DEFAULTS = "GatewayConfig ns/cfg not found; serving with the defaults"


def warning(message: str) -> str:
    """The start-up and reload log's warning line for the class (``serve/report.py`` rule 2)."""
    return f"warning: GatewayClass mirrorgate: Accepted=False (InvalidParameters): {message}."


async def class_message(admin: int) -> tuple[str, str, str]:
    """(status, reason, message) of the GatewayClass's Accepted condition on ``/status``."""
    items: Any = (await admin_json(admin, "/status"))["items"]
    (cls,) = [i for i in items if i["kind"] == "GatewayClass"]
    (c,) = cls["status"]["conditions"]
    return c["status"], c["reason"], c["message"]


async def served_and_ready(gw: GatewayProcess, port: int, admin: int, recorder: HostRecorder, path: str) -> str:
    """A request through the gateway answers 200 and ``/readyz`` is 200; the Host its mirror got."""
    seen = len(recorder.hosts)
    assert (await get(port, path, host=f"example.com:{port}")).status == 200
    assert (await get(admin, "/readyz", host="127.0.0.1")).status == 200
    await wait_hosts(recorder, seen + 1)
    return recorder.hosts[-1]


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: the supervisor sends the kept settings with each table
async def test_a_missing_gatewayconfig_serves_the_defaults_then_the_last_valid_settings_never_nothing(
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
    params.write_text(class_doc())  # names ns/cfg, which does not exist
    gw = await gateways(routes, "-f", str(params), "--workers", workers)
    admin = await gw.admin_port()
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    await gw.wait_line(re.escape(warning(DEFAULTS)))

    # started with the GatewayConfig missing: served, with the defaults (shadowHostSuffix: true)
    assert await served_and_ready(gw, port, admin, recorder, "/one") == f"example.com-shadow:{port}"
    assert await class_message(admin) == ("False", "InvalidParameters", f"{DEFAULTS}.")
    section = await gateway_config(admin)
    assert (section["ref"], section["gatewayClass"], section["fallback"]) == (None, "mirrorgate", DEFAULTS)
    assert section["settings"]["mirror.shadowHostSuffix"]["source"] == "default"

    # the GatewayConfig appears: the class is accepted and its settings apply
    write_atomically(params, class_doc() + config_doc("  mirror: {shadowHostSuffix: false}\n"))
    await gw.count_lines(r"settings applied: mirror\.shadowHostSuffix", int(workers))
    assert await served_and_ready(gw, port, admin, recorder, "/two") == f"example.com:{port}"
    assert (await class_message(admin))[0] == "True"
    assert (await gateway_config(admin))["fallback"] is None

    # deleted while serving: InvalidParameters, and still served, with the last valid settings
    mark = len(gw.lines)
    write_atomically(params, class_doc())
    await gw.wait_line(re.escape(warning(LAST_VALID)), after=mark)
    assert await served_and_ready(gw, port, admin, recorder, "/three") == f"example.com:{port}"  # kept: no -shadow
    assert await class_message(admin) == ("False", "InvalidParameters", f"{LAST_VALID}.")
    section = await gateway_config(admin)
    assert (section["ref"], section["gatewayClass"], section["fallback"]) == ("ns/cfg", "mirrorgate", LAST_VALID)
    setting = section["settings"]["mirror.shadowHostSuffix"]
    assert (setting["value"], setting["source"]) == (False, "GatewayConfig ns/cfg (last valid)")
    assert section["settings"]["mirror.timeout"]["source"] == "default"  # the GatewayConfig did not set it
    items: Any = (await admin_json(admin, "/status"))["items"]
    (gateway,) = [i for i in items if i["kind"] == "Gateway"]
    assert {c["type"]: c["status"] for c in gateway["status"]["conditions"]} == {
        "Accepted": "True",
        "Programmed": "True",
    }
    assert not [line for line in gw.lines[mark:] if "stopped listening" in line or "not served" in line]
    assert await gw.stop() == 0
