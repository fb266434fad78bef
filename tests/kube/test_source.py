"""KubeSource in-process against the fake API server: sync, reloads asked for, status handed over."""

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mirrorgate.kube.client import KubeClient
from mirrorgate.kube.kubeconfig import resolve
from mirrorgate.kube.source import Debouncer, KubeSettings, KubeSource
from mirrorgate.serve.config import Loaded
from mirrorgate.serve.kube import Builder, kube_options
from tests.kube.cluster import CONTROLLER, backend, gateway, gateway_class, route
from tests.kube.fakeapi import FakeApiServer
from tests.kube.helpers import eventually


class FakeWriter:
    """Stands in for ``kube.status.StatusSync``: records what it is told."""

    def __init__(self, client: KubeClient, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.updates: list[tuple[dict[str, Any], list[Any]]] = []
        self.leading: list[bool] = []

    def update(self, status_list: dict[str, Any], rejected: Sequence[Any] = ()) -> None:
        self.updates.append((status_list, list(rejected)))

    def set_leading(self, leading: bool) -> None:
        self.leading.append(leading)

    async def run(self) -> None:
        await asyncio.Event().wait()


class Running:
    def __init__(self, source: KubeSource[Loaded]) -> None:
        self.source = source
        self.changes = 0
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def changed(self, *, quiet: bool = False) -> None:
        self.changes += 1

    @property
    def writer(self) -> FakeWriter:
        assert isinstance(self.source.writer, FakeWriter)
        return self.source.writer


@pytest.fixture
async def running(api: FakeApiServer, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    settings = getattr(request, "param", KubeSettings(controller_name=CONTROLLER, leader_elect=False))
    conn = resolve(str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    options = kube_options("0.0.0.0", CONTROLLER)
    run = Running(KubeSource(conn, settings, Builder(options), writer_factory=FakeWriter))
    yield run
    run.stop.set()
    if run.task is not None:
        await asyncio.wait_for(run.task, 10)


def start(run: Running) -> None:
    run.task = asyncio.create_task(run.source.watch(run.changed, run.stop))


def world(api: FakeApiServer) -> None:
    api.put("gatewayclasses", gateway_class())
    api.put("gateways", gateway(8080))
    backend(api, "svc", 9000)
    api.put("httproutes", route("r", "svc"))


async def test_unsynced_until_every_watch_synced_then_one_change(api: FakeApiServer, running: Running) -> None:
    world(api)
    source = running.source
    first = source.load()
    assert first is source.unsynced
    assert first.table.servers == ()
    why = source.not_ready(first)
    assert why is not None
    assert why.startswith("waiting for the Kubernetes API: watches not synced: GatewayClass")
    start(running)
    await eventually(lambda: running.changes == 1, what="the first reload")
    loaded = source.load()
    assert loaded is not source.unsynced
    assert source.not_ready(source.unsynced) == (
        "waiting for the Kubernetes API: the first configuration is not served yet"
    )
    assert source.not_ready(loaded) is None
    assert len(loaded.table.servers) == 1
    assert source.status_section()["resources"]["HTTPRoute"] == {
        "resource": "httproutes.gateway.networking.k8s.io",
        "connected": True,
        "synced": True,
        "lastError": None,
    }


async def test_a_burst_of_changes_is_one_reload_and_status_writes_are_none(
    api: FakeApiServer, running: Running
) -> None:
    world(api)
    start(running)
    await eventually(lambda: running.changes == 1, what="the first reload")
    for i in range(20):
        api.put("httproutes", route(f"burst-{i}", "svc", f"/{i}"))
    await eventually(lambda: running.changes == 2, what="one reload for the burst")
    stored = api.get("httproutes", "r", "default")
    api.kind("httproutes")
    api.store.replace_status(api.kind("httproutes"), "default", "r", {**stored, "status": {"parents": []}})
    api.put("httproutes", route("after", "svc", "/after"))  # a later change that does count
    await eventually(lambda: running.changes == 3, what="the reload of the later change")
    await asyncio.sleep(0.3)
    assert running.changes == 3


async def test_debouncer_fires_once_per_burst_and_at_most_after_the_longest_delay() -> None:
    fired: list[float] = []
    loop = asyncio.get_running_loop()
    debouncer = Debouncer(lambda: fired.append(loop.time()), quiet=0.05, longest=0.2)
    task = asyncio.create_task(debouncer.run())
    try:
        begin = loop.time()
        while loop.time() - begin < 0.5:  # pokes never quiet for 50 ms: fires on the longest delay
            debouncer.poke()
            await asyncio.sleep(0.01)
        await eventually(lambda: len(fired) >= 2, what="two fires of a long burst")
        assert len(fired) <= 4
    finally:
        task.cancel()


async def test_statuses_and_refusals_of_ours_go_to_the_writer(api: FakeApiServer, running: Running) -> None:
    world(api)
    bad = route("bad", "svc")
    bad["spec"]["hostnames"] = ["bad_host"]
    api.put("httproutes", bad)
    api.put("gatewayclasses", gateway_class("other", "example.com/other"))
    api.put("gateways", gateway(8081, name="theirs", class_name="other"))
    theirs = route("bad-theirs", "svc", parent="theirs")
    theirs["spec"]["hostnames"] = ["bad_host"]
    api.put("httproutes", theirs)
    start(running)
    await eventually(lambda: running.changes == 1, what="the first reload")
    running.source.load()
    await eventually(lambda: bool(running.writer.updates), what="an update")
    status_list, rejected = running.writer.updates[-1]
    assert status_list["kind"] == "List"
    assert [(r.kind, r.namespace, r.name) for r in rejected] == [("HTTPRoute", "default", "bad")]
    assert "spec.hostnames[0]" in rejected[0].message
    assert running.writer.leading == [True]  # no leader election: always leading
    assert set(running.writer.kwargs["resources"]) == {
        *("GatewayClass", "Gateway", "HTTPRoute", "BackendTLSPolicy", "MirrorPolicy")
    }
    live = running.writer.kwargs["live"]("HTTPRoute", "default", "r")
    assert live["metadata"]["resourceVersion"]


LEADING = KubeSettings(
    controller_name=CONTROLLER, lease_namespace="default", publish_service=("default", "lb"), identity="me"
)


@pytest.mark.parametrize("running", [LEADING], indirect=True)
async def test_the_lease_drives_leading_and_publish_service_gives_addresses(
    api: FakeApiServer, running: Running
) -> None:
    world(api)
    lb = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "lb", "namespace": "default"},
        "spec": {"ports": [{"port": 80}], "type": "LoadBalancer"},
    }
    api.put("services", lb)
    start(running)
    await eventually(lambda: running.source.leading, what="leadership")
    assert api.get("leases", "mirrorgate-leader", "default")["spec"]["holderIdentity"] == "me"
    assert running.writer.leading[-1] is True
    assert running.source.status_section()["leader"] == {"identity": "me", "leading": True}
    assert running.source.addresses() == []
    changes = running.changes
    stored = api.get("services", "lb", "default")
    ingress = [{"ip": "192.0.2.1"}, {"hostname": "lb.example"}]
    api.store.replace_status(
        api.kind("services"), "default", "lb", {**stored, "status": {"loadBalancer": {"ingress": ingress}}}
    )
    await eventually(lambda: running.changes > changes, what="a reload for the new addresses")
    assert running.source.addresses() == [
        {"type": "IPAddress", "value": "192.0.2.1"},
        {"type": "Hostname", "value": "lb.example"},
    ]


async def test_no_reference_grants_served_is_a_warning_and_no_grants(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeApiServer(reference_grant_versions=()) as api:
        world(api)
        conn = resolve(str(api.write_kubeconfig(tmp_path / "kubeconfig")))
        options = kube_options("0.0.0.0", CONTROLLER)
        settings = KubeSettings(controller_name=CONTROLLER, leader_elect=False, watch_namespaces=("default",))
        run = Running(KubeSource(conn, settings, Builder(options)))
        with caplog.at_level(logging.WARNING):
            start(run)
            await eventually(lambda: run.changes == 1, what="the first reload")
        assert "serves no ReferenceGrant" in caplog.text
        assert len(run.source.load().table.servers) == 1
        assert any("namespaces/default/httproutes" in path for _, path in api.requests)
        run.stop.set()
        assert run.task is not None
        await asyncio.wait_for(run.task, 10)


async def test_without_the_mirror_policy_crd_the_source_syncs_and_the_extension_ref_answers_500(
    api: FakeApiServer, running: Running
) -> None:
    api.kinds = [k for k in api.kinds if k.plural != "mirrorpolicies"]
    world(api)
    mirrored = route("m", "svc", "/m")
    ref = {"group": "mirrorgate.dev", "kind": "MirrorPolicy", "name": "shadow"}
    mirrored["spec"]["rules"][0]["filters"] = [{"type": "ExtensionRef", "extensionRef": ref}]
    api.put("httproutes", mirrored)
    start(running)
    await eventually(lambda: running.changes == 1, what="the first reload")
    loaded = running.source.load()
    assert running.source.status_section()["resources"]["MirrorPolicy"] == {
        "resource": None,
        "connected": True,
        "synced": True,
        "lastError": None,
    }
    actions = [r.action for li in loaded.table.servers[0].listeners for vh in li.virtual_hosts for r in vh.routes]
    assert sorted(a.status for a in actions) == [0, 500]
