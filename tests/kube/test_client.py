"""The client's verbs and errors against the fake API server over real HTTP."""

import subprocess
import sys
from typing import Any

import pytest

from mirrorgate.kube.client import (
    GATEWAYS,
    LEASES,
    REFERENCE_GRANTS_V1,
    REFERENCE_GRANTS_V1BETA1,
    SERVICES,
    ApiError,
    Conflict,
    Expired,
    KubeClient,
    NotFound,
    Unauthorized,
    Unreachable,
    WatchStalled,
)
from mirrorgate.kube.kubeconfig import resolve
from tests.kube.fakeapi import FakeApiServer


def gateway(name: str, ns: str = "default", cls: str = "mg") -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"gatewayClassName": cls, "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }


async def test_create_get_list_with_pages(api: FakeApiServer, client: KubeClient) -> None:
    for i in range(7):
        created = await client.create(GATEWAYS, gateway(f"g{i}", ns="a" if i % 2 else "b"))
        assert created["metadata"]["generation"] == 1
    got = await client.get(GATEWAYS, "g3", "a")
    assert got["spec"]["gatewayClassName"] == "mg"
    result = await client.list(GATEWAYS, limit=2)
    assert sorted(o["metadata"]["name"] for o in result.items) == [f"g{i}" for i in range(7)]
    assert result.resource_version == str(api.store.rv)
    assert sum("continue=" in path for _, path in api.requests) == 3
    only_a = await client.list(GATEWAYS, "a")
    assert {o["metadata"]["name"] for o in only_a.items} == {"g1", "g3", "g5"}


async def test_expired_continue_token_restarts_the_list(api: FakeApiServer, client: KubeClient) -> None:
    for i in range(4):
        api.put("services", {"metadata": {"name": f"s{i}", "namespace": "n"}, "spec": {}})

    def compact_once(request) -> None:
        if "continue" in request.query:
            api.hooks.clear()
            api.put("services", {"metadata": {"name": "late", "namespace": "n"}, "spec": {}})
            api.compact()

    api.hooks.append(compact_once)
    result = await client.list(SERVICES, "n", limit=2)
    assert sorted(o["metadata"]["name"] for o in result.items) == ["late", "s0", "s1", "s2", "s3"]
    assert [p.startswith("/api/v1/namespaces/n/services?limit=2") for _, p in api.requests].count(
        True
    ) == 5  # 1 + 410 + 3


async def test_label_selector(api: FakeApiServer, client: KubeClient) -> None:
    for name, svc in (("x1", "x"), ("x2", "x"), ("y1", "y")):
        labels = {"kubernetes.io/service-name": svc}
        api.put("endpointslices", {"metadata": {"name": name, "namespace": "n", "labels": labels}})
    from mirrorgate.kube.client import ENDPOINT_SLICES

    result = await client.list(ENDPOINT_SLICES, "n", label_selector="kubernetes.io/service-name=x")
    assert [o["metadata"]["name"] for o in result.items] == ["x1", "x2"]


async def test_replace_bumps_generation_on_spec_only_and_conflicts_when_stale(client: KubeClient) -> None:
    first = await client.create(GATEWAYS, gateway("g"))
    labelled = {**first, "metadata": {**first["metadata"], "labels": {"a": "b"}}}
    second = await client.replace(GATEWAYS, labelled)
    assert second["metadata"]["generation"] == 1
    changed = {**second, "spec": {**second["spec"], "gatewayClassName": "other"}}
    third = await client.replace(GATEWAYS, changed)
    assert third["metadata"]["generation"] == 2
    with pytest.raises(Conflict) as err:
        await client.replace(GATEWAYS, changed)
    assert err.value.code == 409
    assert "the object has been modified" in err.value.message


async def test_status_subresource_ignores_spec_and_main_put_ignores_status(
    api: FakeApiServer, client: KubeClient
) -> None:
    gw = await client.create(GATEWAYS, gateway("g"))
    body = {**gw, "spec": {"gatewayClassName": "sneaky"}, "status": {"conditions": [{"type": "Accepted"}]}}
    written = await client.replace_status(GATEWAYS, body)
    assert written["spec"]["gatewayClassName"] == "mg"
    assert written["status"]["conditions"][0]["type"] == "Accepted"
    assert written["metadata"]["generation"] == 1
    patched = await client.patch_status(GATEWAYS, "g", {"status": {"addresses": [{"value": "1.2.3.4"}]}}, "default")
    assert patched["status"]["addresses"] == [{"value": "1.2.3.4"}]
    assert patched["status"]["conditions"] == [{"type": "Accepted"}]
    main = await client.replace(GATEWAYS, {**patched, "status": {}})
    assert main["status"]["addresses"] == [{"value": "1.2.3.4"}]
    with pytest.raises(Conflict):
        await client.replace_status(GATEWAYS, written)
    verbs = [(w.verb, w.path.rsplit("/", 1)[-1]) for w in api.writes]
    assert verbs == [("POST", "gateways"), ("PUT", "status"), ("PATCH", "status"), ("PUT", "g"), ("PUT", "status")]


async def test_not_found_and_injected_errors(api: FakeApiServer, client: KubeClient) -> None:
    with pytest.raises(NotFound) as err:
        await client.get(LEASES, "nope", "default")
    assert err.value.message == 'leases.coordination.k8s.io "nope" not found'
    api.fail_next(1, 429, "TooManyRequests", retry_after=3)
    with pytest.raises(ApiError) as err2:
        await client.get(LEASES, "nope", "default")
    assert (err2.value.code, err2.value.reason, err2.value.retry_after) == (429, "TooManyRequests", 3.0)


async def test_unauthorized_without_the_token(api: FakeApiServer, tmp_path) -> None:
    conn = resolve(str(api.write_kubeconfig(tmp_path / "kc", user={"token": "wrong"})))
    async with await KubeClient.connect(conn, request_timeout=5) as client:
        with pytest.raises(Unauthorized):
            await client.get(LEASES, "x", "default")


async def test_request_timeout_and_refused(api: FakeApiServer, tmp_path) -> None:
    conn = resolve(str(api.write_kubeconfig(tmp_path / "kc")))
    async with await KubeClient.connect(conn, request_timeout=0.2) as client:
        api.delay = 2
        with pytest.raises(Unreachable):
            await client.get(LEASES, "x", "default")
        with pytest.raises(Unreachable, match="no answer"):
            await client.watch(LEASES, "default", resource_version="1", timeout_seconds=60)
        api.delay = 0
        stream = await client.watch(LEASES, "default", resource_version="1", timeout_seconds=60, inactivity_timeout=0.2)
        api.stall_watches()
        with pytest.raises(WatchStalled):
            await anext(stream)
        await api.down()
        with pytest.raises(Unreachable):
            await client.get(LEASES, "x", "default")


@pytest.mark.parametrize(
    ("versions", "expected"),
    [(("v1", "v1beta1"), REFERENCE_GRANTS_V1), (("v1beta1",), REFERENCE_GRANTS_V1BETA1), ((), None)],
)
async def test_reference_grant_version_by_discovery(tmp_path, versions, expected) -> None:
    async with FakeApiServer(reference_grant_versions=versions) as api:
        conn = resolve(str(api.write_kubeconfig(tmp_path / "kc")))
        async with await KubeClient.connect(conn) as client:
            assert await client.reference_grants() == expected
            assert await client.served_versions("") == ["v1"]
            if expected is not None:
                api.put("referencegrants", {"metadata": {"name": "r", "namespace": "n"}, "spec": {}})
                listed = await client.list(expected, "n")
                assert listed.items[0]["apiVersion"] == f"gateway.networking.k8s.io/{expected.version}"


async def test_watch_events_bookmarks_and_clean_end(api: FakeApiServer, client: KubeClient) -> None:
    api.bookmark_interval = 0.05
    start = (await client.list(GATEWAYS)).resource_version
    await client.create(GATEWAYS, gateway("g"))
    stream = await client.watch(GATEWAYS, resource_version=start, timeout_seconds=1)
    seen = []
    async for kind, _obj in stream:
        seen.append(kind)
        if kind == "ADDED":
            api.delete("gateways", "g", "default")
    assert seen[0] == "ADDED"
    assert "DELETED" in seen
    assert "BOOKMARK" in seen


async def test_watch_too_old_rv_is_expired_at_start_and_mid_stream(api: FakeApiServer, client: KubeClient) -> None:
    start = (await client.list(GATEWAYS)).resource_version
    await client.create(GATEWAYS, gateway("g"))
    api.compact()
    with pytest.raises(Expired):
        await client.watch(GATEWAYS, resource_version=start, timeout_seconds=5)
    stream = await client.watch(GATEWAYS, resource_version=str(api.store.rv), timeout_seconds=5)
    api.expire_watches()
    with pytest.raises(Expired):
        async for _ in stream:
            pass


def test_importing_the_package_does_not_import_the_client_library() -> None:
    code = (
        "import sys, mirrorgate.cli, mirrorgate.kube.client, mirrorgate.kube.reflector, mirrorgate.kube.leader;"
        "print(sorted(m for m in ('kubernetes_asyncio', 'aiohttp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
