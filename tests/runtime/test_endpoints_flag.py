"""``--endpoints``: the seed's own manifests (Deployments and Services, no EndpointSlices) serve
and mirror through a real ``mirrorgate run`` once each Service is given an address."""

import re
from pathlib import Path

import yaml

from tests.runtime.conftest import Backend, Starter, get, pod_of
from tests.support.backends import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "envoy-gateway-mirror.yaml"


def seed_without_endpoint_slices(port: int) -> str:
    """examples/envoy-gateway-mirror.yaml (the seed's Services, Deployments and HTTPRoute, plus the
    quickstart's GatewayClass and Gateway) without its EndpointSlices, the listener on ``port``."""
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d and d["kind"] != "EndpointSlice"]
    for doc in docs:
        if doc["kind"] == "Gateway":
            doc["spec"]["listeners"][0]["port"] = port
    return yaml.safe_dump_all(docs)


async def test_seed_manifest_serves_and_mirrors_with_endpoints_flags(
    tmp_path: Path, gateways: Starter, backends: dict[str, Backend]
) -> None:
    port = free_port()
    path = tmp_path / "seed.yaml"
    path.write_text(seed_without_endpoint_slices(port))
    primary, mirror = backends["a"], backends["m"]
    gw = await gateways(
        path,
        f"--endpoints=backend=127.0.0.1:{primary.port}",
        f"--endpoints=backend-2.default:3000=127.0.0.1:{mirror.port}",
    )
    await gw.wait_line(r"serving 1 listener\(s\)")
    r = await get(port, "/get", host="backends.example")
    assert r.status == 200, r
    assert pod_of(r) == primary.pod
    await mirror.log.wait_for("Echoing back request made to /get")
    assert re.search(r"host=backends\.example-shadow\b", mirror.log.getvalue())


async def test_without_endpoints_the_summary_names_the_flag(tmp_path: Path, gateways: Starter) -> None:
    port = free_port()
    path = tmp_path / "seed.yaml"
    path.write_text(seed_without_endpoint_slices(port))
    gw = await gateways(path)
    for service in ("backend", "backend-2"):
        await gw.wait_line(
            rf"warning: Service default/{service}:3000: no endpoints \(used by httproute/default/http-mirror\): "
            r".*--endpoints SERVICE\[\.NS\]\[:PORT\]=ADDR:PORT$"
        )
    r = await get(port, "/get", host="backends.example")
    assert r.status == 503


async def test_endpoints_for_a_service_the_files_do_not_define_is_one_error_line(
    tmp_path: Path, gateways: Starter
) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(seed_without_endpoint_slices(free_port()))
    gw = await gateways(path, "--endpoints=nosuch=127.0.0.1:1")
    assert await gw.exited() == 1
    text = "\n".join(gw.lines)
    assert "--endpoints: " in text
    assert "nosuch" in text
    assert "Traceback" not in text
