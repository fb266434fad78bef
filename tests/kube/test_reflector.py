"""The reflector against the fake API server: sync, resume, bookmarks, 410 relist, outages, stalls."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from mirrorgate.kube.client import GATEWAYS, HTTP_ROUTES, KubeClient
from mirrorgate.kube.reflector import Reflector
from tests.kube.fakeapi import FakeApiServer
from tests.kube.helpers import eventually


def gw(name: str, ns: str = "default", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, **meta}, "spec": {"gatewayClassName": "mg"}}


@asynccontextmanager
async def running(reflector: Reflector) -> AsyncIterator[Reflector]:
    task = asyncio.create_task(reflector.run())
    try:
        await asyncio.wait_for(reflector.synced.wait(), 15)
        yield reflector
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def make(client: KubeClient, events: list[tuple[str, str]] | None = None, **kw: Any) -> Reflector:
    def record(kind: str, obj: dict[str, Any]) -> None:
        if events is not None:
            events.append((kind, obj["metadata"]["name"]))

    kw.setdefault("watch_timeout", (30, 31))
    return Reflector(client, GATEWAYS, on_event=record, backoff_initial=0.05, backoff_max=0.5, **kw)


def watch_rvs(api: FakeApiServer) -> list[str]:
    return [p.split("resourceVersion=")[1].split("&")[0] for _, p in api.requests if "watch=true" in p]


async def test_initial_sync_strips_managed_fields_and_follows_changes(api: FakeApiServer, client: KubeClient) -> None:
    api.put("gateways", gw("a", managedFields=[{"manager": "kubectl"}]))
    api.put("gateways", gw("b", ns="other"))
    changes: list[int] = []
    reflector = make(client)
    reflector.on_change = lambda: changes.append(len(reflector.cache))
    async with running(reflector):
        assert set(reflector.cache) == {"default/a", "other/b"}
        assert "managedFields" not in reflector.cache["default/a"]["metadata"]
        assert reflector.health.connected or await _connected(reflector)
        api.put("gateways", gw("c"))
        await eventually(lambda: "default/c" in reflector.cache, what="ADDED c")
        api.delete("gateways", "a", "default")
        await eventually(lambda: "default/a" not in reflector.cache, what="DELETED a")
    assert changes == [2, 3, 2]


async def _connected(reflector: Reflector) -> bool:
    await eventually(lambda: reflector.health.connected, what="connected")
    return True


async def test_resume_after_clean_close_without_relist(api: FakeApiServer, client: KubeClient) -> None:
    api.put("gateways", gw("a"))
    async with running(make(client, watch_timeout=(1, 1))) as reflector:
        await eventually(lambda: reflector.health.watches >= 2, what="a second watch")
        api.put("gateways", gw("b"))
        await eventually(lambda: "default/b" in reflector.cache, what="b")
        assert reflector.health.relists == 1
    rvs = watch_rvs(api)
    assert len(set(rvs[:2])) == 1  # nothing happened in between: the same RV resumes


async def test_bookmark_rv_is_the_resume_point(api: FakeApiServer, client: KubeClient) -> None:
    api.put("gateways", gw("a"))
    async with running(make(client)) as reflector:
        await eventually(lambda: reflector.health.connected, what="connected")
        for i in range(3):  # other kinds move the global RV; the gateway watch sees nothing
            api.put("services", {"metadata": {"name": f"s{i}", "namespace": "default"}, "spec": {}})
        mark = str(api.store.rv)
        api.send_bookmarks()
        await asyncio.sleep(0.2)
        api.cut_watches()
        await eventually(lambda: watch_rvs(api)[-1:] == [mark], what="a watch resuming from the bookmark RV")
        assert reflector.health.relists == 1


async def test_compaction_while_down_relists_and_synthesizes_deletions(api: FakeApiServer, client: KubeClient) -> None:
    for name in ("a", "b"):
        api.put("gateways", gw(name))
    events: list[tuple[str, str]] = []
    async with running(make(client, events)) as reflector:
        await eventually(lambda: reflector.health.connected, what="connected")
        await api.down()
        await eventually(lambda: not reflector.health.connected and reflector.health.last_error is not None)
        api.delete("gateways", "a", "default")
        api.put("gateways", gw("c"))
        api.compact()
        await api.up()
        await eventually(lambda: set(reflector.cache) == {"default/b", "default/c"}, what="relisted cache")
        assert reflector.health.relists == 2
    assert events[:2] == [("ADDED", "a"), ("ADDED", "b")]
    assert sorted(events[2:]) == [("ADDED", "c"), ("DELETED", "a")]


async def test_error_410_event_mid_stream_relists(api: FakeApiServer, client: KubeClient) -> None:
    api.put("gateways", gw("a"))
    async with running(make(client)) as reflector:
        await eventually(lambda: reflector.health.connected, what="connected")
        api.expire_watches()
        await eventually(lambda: reflector.health.relists == 2, what="a relist")
        assert "410" in (reflector.health.last_error or "")
        assert set(reflector.cache) == {"default/a"}


async def test_server_errors_back_off_then_recover(api: FakeApiServer, client: KubeClient) -> None:
    api.fail_next(3, 500)
    async with running(make(client)) as reflector:
        assert reflector.cache == {}
        assert "500" in (reflector.health.last_error or "")
        api.put("gateways", gw("late"))
        await eventually(lambda: "default/late" in reflector.cache, what="late")


async def test_stalled_stream_is_detected_by_the_inactivity_timeout(api: FakeApiServer, client: KubeClient) -> None:
    async with running(make(client, watch_timeout=(2, 2), inactivity_grace=0.3)) as reflector:
        await eventually(lambda: reflector.health.connected, what="connected")
        api.stall_watches()
        api.put("gateways", gw("hidden"))
        await eventually(lambda: "default/hidden" in reflector.cache, what="the event after the stall")
        assert "nothing received" in (reflector.health.last_error or "")


async def test_one_list_and_watch_per_namespace(api: FakeApiServer, client: KubeClient) -> None:
    for ns in ("a", "b", "c"):
        api.put("httproutes", {"metadata": {"name": "r", "namespace": ns}, "spec": {}})
    on: Callable[[], None] = lambda: None  # noqa: E731
    reflector = Reflector(client, HTTP_ROUTES, namespaces=["a", "b"], on_change=on, watch_timeout=(30, 31))
    async with running(reflector):
        assert set(reflector.cache) == {"a/r", "b/r"}
        await eventually(lambda: reflector.health.connected, what="both watches connected")
        api.put("httproutes", {"metadata": {"name": "r2", "namespace": "c"}, "spec": {}})
        api.put("httproutes", {"metadata": {"name": "r2", "namespace": "b"}, "spec": {}})
        await eventually(lambda: "b/r2" in reflector.cache, what="b/r2")
        assert "c/r2" not in reflector.cache
    lists = [p for _, p in api.requests if "httproutes" in p and "watch" not in p]
    assert sorted(p.split("?")[0] for p in lists) == [
        "/apis/gateway.networking.k8s.io/v1/namespaces/a/httproutes",
        "/apis/gateway.networking.k8s.io/v1/namespaces/b/httproutes",
    ]
