"""A configuration that serves nothing, through a real ``mirrorgate run``: the log says why (warning),
``/readyz`` is 503 with the reason, the process keeps running and a reload makes it ready."""

from pathlib import Path

import pytest

from mirrorgate.translate.translator import CONTROLLER_NAME
from tests.runtime.conftest import Backend, Starter, gateway_yaml, get, write_atomically
from tests.support.backends import free_port

ENVOY = "gateway.envoyproxy.io/gatewayclass-controller"
QUICKSTART = f"""apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: eg}}
spec: {{controllerName: {ENVOY}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: eg}}
spec:
  gatewayClassName: eg
  listeners: [{{name: http, protocol: HTTP, port: 80}}]
"""
ROUTE = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: backend}
spec:
  parentRefs: [{name: eg}]
  rules: [{backendRefs: [{name: backend, port: 3000}]}]
"""
FOREIGN = (
    f"no listener is served: Gateway default/eg is not ours: GatewayClass eg has controllerName {ENVOY}, "
    f"not ours ({CONTROLLER_NAME})"
)
NO_GATEWAY = "no listener is served: the configuration has no Gateway"

CASES = {
    "another-controller": (QUICKSTART + ROUTE, FOREIGN),
    "route-without-gateway": (ROUTE, f"{NO_GATEWAY} (HTTPRoute default/backend attach to none)"),
    "empty-file": ("", f"{NO_GATEWAY} (0 object(s) loaded)"),
    "empty-directory": (None, f"{NO_GATEWAY} (0 object(s) loaded)"),
}


def _path(tmp_path: Path, text: str | None) -> Path:
    if text is None:
        (tmp_path / "conf").mkdir()
        return tmp_path / "conf"
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
async def test_nothing_served_is_said_in_the_log_and_on_readyz(tmp_path: Path, gateways: Starter, case: str) -> None:
    text, reason = CASES[case]
    gw = await gateways(_path(tmp_path, text), "--no-watch")
    admin = await gw.admin_port()
    await gw.wait_line(f"warning: {reason}$".replace("(", r"\(").replace(")", r"\)").replace(".", r"\."))
    r = await get(admin, "/readyz", host="127.0.0.1")
    assert (r.status, r.body.decode()) == (503, f"not ready: {reason}\n")
    assert await gw.stop() == 0
    assert not any("Traceback" in line for line in gw.lines)


async def test_a_reload_makes_it_ready(tmp_path: Path, gateways: Starter, backends: dict[str, Backend]) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(QUICKSTART + ROUTE)
    gw = await gateways(path)
    admin = await gw.admin_port()
    await gw.wait_line("warning: no listener is served")
    port = free_port()
    write_atomically(path, gateway_yaml([port], backends["a"]))
    await gw.wait_line(r"now serving 1 listener\(s\) on 1 socket\(s\), 1 route attachment\(s\) \(was 0 listener")
    r = await get(admin, "/readyz", host="127.0.0.1")
    assert (r.status, r.body) == (200, b"ready\n")
    assert await gw.stop() == 0


async def test_workers_the_supervisor_says_it_once(tmp_path: Path, gateways: Starter) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(QUICKSTART + ROUTE)
    gw = await gateways(path, "--workers", "2", "--no-watch")
    admin = await gw.admin_port()
    await gw.wait_line(r"worker 1 ready")
    await gw.wait_line(f"warning: {FOREIGN}".replace("(", r"\(").replace(")", r"\)").replace(".", r"\."))
    r = await get(admin, "/readyz", host="127.0.0.1")
    assert (r.status, r.body.decode()) == (503, f"not ready: {FOREIGN}\n")
    assert await gw.stop() == 0
    assert sum("no listener is served" in line for line in gw.lines) == 1
    assert not any("Traceback" in line for line in gw.lines)
