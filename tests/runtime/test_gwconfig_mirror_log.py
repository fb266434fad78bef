"""A GatewayConfig's ``mirrorAccessLog.destination`` in a real ``mirrorgate run``: mirror lines in
the file it names (one process, and each worker of ``--workers 2``), ``--mirror-access-log``
winning over it, a reload changing it waiting for a restart (``pendingRestart``, a warning, the
lines still in the first file) while a format change applies to the next mirror line, a file
that cannot be opened stopping the start with one line naming the GatewayConfig and the field,
and ``mirrorgate status`` showing the value and its source. A failed switch changes neither log
(``serve/logs.py`` rule 6)."""

import json
import re
from pathlib import Path

import pytest

from mirrorgate.dataplane import accesslog
from mirrorgate.serve.logs import ACCESS, MIRROR, CannotOpen, setup_access_log, switch_logs
from tests.runtime.conftest import (
    Backend,
    Starter,
    admin_json,
    gateway_config,
    gateway_yaml,
    send_all,
    write_atomically,
)
from tests.runtime.test_gwconfig import class_doc, config_doc, status_json
from tests.runtime.test_mirror_access_log import MIRROR as MIRROR_LINE, lines_of, mirrors_ended
from tests.support.backends import free_port

BACKEND = "service/default/mirror:8080"  # the mirror service of ``conftest.gateway_yaml``
OURS = "GatewayConfig ns/cfg"


def mirror_config(destination: Path | str, extra: str = "") -> str:
    return class_doc() + config_doc(f"  mirrorAccessLog: {{destination: {destination}}}\n{extra}")


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: each worker opens the file and writes its own lines
async def test_the_gatewayconfig_names_the_mirror_log_file_and_a_reload_changing_it_waits_for_a_restart(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter, workers: str
) -> None:
    port = free_port()
    routes = tmp_path / "gw.yaml"
    routes.write_text(gateway_yaml([port], backends["a"], backends["m"]))
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    params = tmp_path / "params.yaml"  # a later file: its GatewayClass replaces the one of gw.yaml
    params.write_text(mirror_config(first))
    gw = await gateways(routes, "-f", str(params), "--workers", workers)
    admin = await gw.admin_port()
    await gw.count_lines(rf"listening on 127\.0\.0\.1:{port}", int(workers))
    await send_all(port, [(f"/one/{i}", f"rid-{i}") for i in range(8)])
    await mirrors_ended(admin, 8)
    lines = await lines_of(first, 8)
    assert len(lines) == 8
    for i, line in enumerate(sorted(lines, key=lambda text: text.split("request_id=")[1])):
        m = MIRROR_LINE.match(line)
        assert m is not None, line
        target, status, _ms, _route, _endpoint, rid, _name, backend = m.groups()[:8]
        assert (target, status, rid, backend) == (f"/one/{i}", "200", f"rid-{i}", BACKEND)
        assert (m.group(11) is not None) == (workers == "2")  # `` worker=N`` from a worker
    assert not [line for line in gw.access if " mirror " in line]  # never on the access log's stdout
    shown = (await gateway_config(admin))["settings"]["mirrorAccessLog.destination"]
    assert shown == {"value": str(first), "source": OURS, "flag": "--mirror-access-log", "reload": "restart"}

    write_atomically(params, mirror_config(second, "  accessLog: {format: json}\n"))
    await gw.wait_line(
        rf"warning: .*configuration: mirrorAccessLog\.destination changed to '{re.escape(str(second))}' \({OURS}\); "
        rf"it needs a restart: still serving '{re.escape(str(first))}'"
    )
    await gw.count_lines(r"settings applied: accessLog\.format", int(workers))
    status = await admin_json(admin, "/status")
    (pending,) = status["gatewayConfig"]["pendingRestart"]  # type: ignore[index]
    assert pending == {
        "field": "mirrorAccessLog.destination",
        "served": str(first),
        "wanted": str(second),
        "source": OURS,
    }
    await send_all(port, [("/two", "rid-two")])
    await mirrors_ended(admin, 9)
    lines = await lines_of(first, 9)  # still the first file: the new one waits for a restart
    record = json.loads(lines[-1].split(" ", 2)[2])  # the format applies at reload, to both logs
    assert (record["target"], record["request_id"], record["status"]) == ("/two", "rid-two", 200)
    assert not second.exists()
    assert await gw.stop() == 0


async def test_the_flag_wins_over_the_gatewayconfig(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    routes = tmp_path / "gw.yaml"
    routes.write_text(gateway_yaml([port], backends["a"], backends["m"]))
    ours, flagged = tmp_path / "config.log", tmp_path / "flag.log"
    params = tmp_path / "params.yaml"
    params.write_text(mirror_config(ours))
    gw = await gateways(routes, "-f", str(params), "--mirror-access-log", str(flagged))
    admin = await gw.admin_port()
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    await send_all(port, [("/flag", "rid-flag")])
    await mirrors_ended(admin, 1)
    (line,) = await lines_of(flagged, 1)
    assert "request_id=rid-flag" in line
    shown = (await gateway_config(admin))["settings"]["mirrorAccessLog.destination"]
    assert (shown["value"], shown["source"]) == (str(flagged), "flag")
    assert not ours.exists()  # never opened
    assert await gw.stop() == 0


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: the supervisor checks before any worker starts
async def test_a_mirror_log_file_that_cannot_be_opened_stops_the_start_naming_the_gatewayconfig(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter, workers: str
) -> None:
    routes = tmp_path / "gw.yaml"
    routes.write_text(gateway_yaml([free_port()], backends["a"], backends["m"]))
    params = tmp_path / "params.yaml"
    missing = tmp_path / "no-such-dir" / "mirror.log"
    params.write_text(mirror_config(missing))
    gw = await gateways(routes, "-f", str(params), "--workers", workers)
    assert await gw.exited() == 1
    line = f"{OURS}: mirrorAccessLog.destination: cannot open '{missing}' for appending: No such file or directory"
    assert line in gw.lines
    assert not [entry for entry in gw.lines if "Traceback" in entry]
    assert not [entry for entry in gw.lines if "worker 0 started" in entry]


def test_status_shows_the_value_and_its_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(mirror_config("/var/log/m/mirror.log"))
    code, doc, err = status_json(capsys, "-f", str(path))
    assert code == 0, err
    shown = doc["gatewayConfig"]["settings"]["mirrorAccessLog.destination"]
    assert (shown["value"], shown["source"], shown["reload"]) == ("/var/log/m/mirror.log", OURS, "restart")
    code, doc, err = status_json(capsys, "-f", str(path), "--mirror-access-log", "-")
    assert code == 0, err
    shown = doc["gatewayConfig"]["settings"]["mirrorAccessLog.destination"]
    assert (shown["value"], shown["source"]) == ("-", "flag")
    path.write_text(class_doc() + config_doc("  accessLog: {format: json}\n"))
    code, doc, err = status_json(capsys, "-f", str(path))
    shown = doc["gatewayConfig"]["settings"]["mirrorAccessLog.destination"]
    assert (shown["value"], shown["source"]) == ("off", "default")


def test_a_file_that_cannot_be_opened_changes_neither_log(tmp_path: Path) -> None:
    access = tmp_path / "access.log"
    setup_access_log(str(access))
    before = accesslog.installed()
    try:
        with pytest.raises(CannotOpen) as caught:
            switch_logs({ACCESS: str(tmp_path / "other.log"), MIRROR: str(tmp_path / "no-dir" / "m.log")})
        assert caught.value.field == MIRROR
        assert accesslog.installed() is before  # the access log was not switched
        assert accesslog.mirror_sink() is None
    finally:
        setup_access_log("off")
        accesslog.install_mirror(None, on=False)
