"""``mirrorgate run --kubernetes`` as a real process against the fake API server.

Every wait is for an event (a log line, readiness, a response) with a generous deadline, never a time.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.kube.cluster import backend, gateway, gateway_class, route, start_kubernetes, status_of
from tests.kube.fakeapi import FakeApiServer
from tests.runtime.conftest import WAIT, Backend, GatewayProcess, admin_json, backends, get, pod_of
from tests.support.backends import free_port

__all__ = ["backends"]

Start = Callable[..., Awaitable[GatewayProcess]]


@pytest.fixture
async def kube(api: FakeApiServer, tmp_path: Path) -> AsyncIterator[Start]:
    started: list[GatewayProcess] = []
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")

    async def start(*extra: str) -> GatewayProcess:
        gw = await start_kubernetes(kubeconfig, *extra)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        await gw.kill()
        print("\n".join(gw.lines))  # shown when the test failed


async def readyz(admin: int) -> tuple[int, str]:
    r = await get(admin, "/readyz", host="127.0.0.1")
    return r.status, r.body.decode()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; fail after ``WAIT`` seconds."""
    try:
        async with asyncio.timeout(WAIT):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def until_ready(admin: int) -> None:
    async def ready() -> bool:
        return (await readyz(admin))[0] == 200

    await until(ready, "ready")


async def until_pod(port: int, path: str, pod: str | None) -> None:
    """Wait until ``path`` is answered by ``pod`` (None: answered 404, no route)."""
    async with asyncio.timeout(WAIT):
        while True:
            try:
                r = await get(port, path)
            except OSError:
                r = None
            if r is not None and (pod_of(r) == pod if pod is not None and r.status == 200 else r.status == 404):
                if pod is not None or r.status == 404:
                    return
            await asyncio.sleep(0.05)


async def until_status(port: int, path: str, status: int) -> None:
    async def answered() -> bool:
        return (await get(port, path)).status == status

    await until(answered, f"{path} to answer {status}")


def world(api: FakeApiServer, backends: dict[str, Backend], port: int) -> None:
    api.put("gatewayclasses", gateway_class())
    api.put("gateways", gateway(port))
    backend(api, "svc-a", backends["a"].port)
    backend(api, "svc-b", backends["b"].port)
    api.put("httproutes", route("ra", "svc-a", "/a"))


async def test_serves_what_the_api_holds_and_follows_changes(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)
    gw = await kube()
    admin = await gw.admin_port()
    await until_ready(admin)
    assert pod_of(await get(port, "/a")) == "a-1-2"
    # create a route
    api.put("httproutes", route("rb", "svc-b", "/b"))
    await until_pod(port, "/b", "b-1-2")
    # update it: /b now goes to svc-a
    api.put("httproutes", route("rb", "svc-a", "/b"))
    await until_pod(port, "/b", "a-1-2")
    # an EndpointSlice update moves svc-a to backend b
    backend(api, "svc-a", backends["b"].port)
    await until_pod(port, "/a", "b-1-2")
    # delete the route
    api.delete("httproutes", "rb", "default")
    await until_pod(port, "/b", None)
    # a new Service and its EndpointSlice; then the slice goes (no endpoints), then the Service
    api.put("httproutes", route("rc", "svc-c", "/c"))
    backend(api, "svc-c", backends["m"].port)
    await until_pod(port, "/c", "m-1-2")
    api.delete("endpointslices", "svc-c-1", "default")
    await until_status(port, "/c", 503)
    api.delete("services", "svc-c", "default")
    await until_status(port, "/c", 500)
    status = await admin_json(admin, "/status")
    kube_status = status["kubernetes"]
    assert isinstance(kube_status, dict)
    assert kube_status["synced"] is True
    metrics = (await get(admin, "/metrics", host="127.0.0.1")).body.decode()
    assert "mirrorgate_kube_synced 1.0" in metrics
    assert 'mirrorgate_kube_watch_connected{resource="httproutes.gateway.networking.k8s.io"} 1.0' in metrics
    assert await gw.stop() == 0


async def metrics_of(admin: int) -> str:
    return (await get(admin, "/metrics", host="127.0.0.1")).body.decode()


async def test_keeps_serving_through_an_outage_and_relists_after_410(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)
    api.put("httproutes", route("rb", "svc-b", "/b"))
    gw = await kube()
    admin = await gw.admin_port()
    await until_ready(admin)
    await until_pod(port, "/b", "b-1-2")
    await api.down()

    async def disconnected() -> bool:
        return 'mirrorgate_kube_watch_connected{resource="httproutes.gateway.networking.k8s.io"} 0.0' in (
            await metrics_of(admin)
        )

    await until(disconnected, "the watch to be reported down")
    assert pod_of(await get(port, "/b")) == "b-1-2"  # the last good table keeps serving
    assert (await readyz(admin))[0] == 200  # and the replica stays ready
    section = (await admin_json(admin, "/status"))["kubernetes"]
    assert isinstance(section, dict)
    assert section["resources"]["HTTPRoute"]["connected"] is False
    api.delete("httproutes", "rb", "default")  # while disconnected: only a relist can tell
    api.compact()
    await api.up()
    await until_pod(port, "/b", None)
    await gw.wait_line(r"410")
    assert pod_of(await get(port, "/a")) == "a-1-2"

    async def reconnected() -> bool:
        return 'mirrorgate_kube_watch_connected{resource="httproutes.gateway.networking.k8s.io"} 1.0' in (
            await metrics_of(admin)
        )

    await until(reconnected, "the watch to be reported connected again")
    section = (await admin_json(admin, "/status"))["kubernetes"]
    assert isinstance(section, dict)
    assert section["resources"]["HTTPRoute"]["connected"] is True


async def test_other_controllers_classes_and_their_gateways_are_ignored(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port, other_port, classless_port = free_port(), free_port(), free_port()
    world(api, backends, port)
    api.put("gatewayclasses", gateway_class("other", "example.com/other"))
    api.put("gateways", gateway(other_port, name="theirs", class_name="other"))
    api.put("gateways", gateway(classless_port, name="classless", class_name="nowhere"))
    api.put("httproutes", route("rt", "svc-b", "/t", parent="theirs"))
    gw = await kube()
    admin = await gw.admin_port()
    await until_ready(admin)
    assert pod_of(await get(port, "/a")) == "a-1-2"
    assert (await get(port, "/t")).status == 404
    for unserved in (other_port, classless_port):
        with pytest.raises(ConnectionRefusedError):
            await get(unserved, "/t")
    items = (await admin_json(admin, "/status"))["items"]
    assert isinstance(items, list)
    statuses = {(i["kind"], i["metadata"]["name"]): i.get("status") for i in items}
    assert statuses[("Gateway", "theirs")] is None
    assert statuses[("GatewayClass", "other")] is None
    assert statuses[("Gateway", "gw")] is not None


async def test_unready_while_the_api_server_is_down_at_start(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)
    await api.down()
    gw = await kube()
    admin = await gw.admin_port()

    async def says_why() -> bool:
        status, body = await readyz(admin)
        return status == 503 and "waiting for the Kubernetes API" in body and "Cannot connect" in body

    await until(says_why, "/readyz to say the API server is unreachable")
    assert "mirrorgate_kube_synced 0.0" in await metrics_of(admin)
    await api.up()
    await until_ready(admin)
    assert pod_of(await get(port, "/a")) == "a-1-2"
    assert "mirrorgate_kube_synced 1.0" in await metrics_of(admin)

    async def status_written() -> bool:
        conditions = status_of(api, "gateways", "gw").get("conditions") or []
        return any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions)

    await until(status_written, "the Gateway's status once the API server is up")


async def test_workers_get_the_supervisors_tables(
    api: FakeApiServer, kube: Start, backends: dict[str, Backend]
) -> None:
    port = free_port()
    world(api, backends, port)
    gw = await kube("--workers", "2")
    admin = await gw.admin_port()
    await until_ready(admin)
    assert pod_of(await get(port, "/a")) == "a-1-2"
    api.put("httproutes", route("rb", "svc-b", "/b"))
    await until_pod(port, "/b", "b-1-2")
    assert "mirrorgate_kube_synced 1.0" in await metrics_of(admin)
    assert await gw.stop() == 0


async def test_a_bad_kubeconfig_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n")
    gw = await start_kubernetes(bad)
    assert await gw.exited() == 1
    assert len(gw.lines) == 1, gw.lines
    assert gw.lines[0].startswith("mirrorgate run: ")
