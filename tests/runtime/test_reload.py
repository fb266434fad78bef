"""Hot reload of ``mirrorgate run`` (a real process): under load, broken configs, listeners that
come and go, SIGHUP."""

import asyncio
import re
import signal
from pathlib import Path

import pytest

from tests.runtime.conftest import (
    WAIT,
    Backend,
    Starter,
    admin_json,
    gateway_yaml,
    get,
    pod_of,
    write_atomically,
)
from tests.support.backends import free_port
from tests.support.client import Conn, encode_request
from tests.support.manifests import service_docs

RELOADED = r"reloaded: \d+ servers"


class Load:
    """Clients on keep-alive connections sending requests back to back until stopped.

    ``epoch`` is bumped by the test after each reload it has seen complete; every response is
    recorded with the epoch current when its request was sent."""

    def __init__(self, port: int, clients: int) -> None:
        self.port = port
        self.epoch = 0
        self.results: list[tuple[int, int, str]] = []  # (epoch at send, status, pod)
        self.failures: list[str] = []
        self.stop = asyncio.Event()
        self.progress = asyncio.Event()  # set on each response or failure
        self.tasks = [asyncio.create_task(self._client(i)) for i in range(clients)]

    async def _client(self, i: int) -> None:
        conn = await Conn.open(self.port)
        try:
            while not self.stop.is_set():
                epoch = self.epoch
                try:
                    await conn.send(encode_request("GET", f"/load/{i}"))
                    r = await conn.read_response()
                except (OSError, asyncio.IncompleteReadError) as exc:
                    self.failures.append(f"client {i}: {exc!r}")
                    self.progress.set()
                    return
                if r.status != 200:
                    self.failures.append(f"client {i}: {r!r}")
                self.results.append((epoch, r.status, pod_of(r) if r.status == 200 else ""))
                self.progress.set()
        finally:
            await conn.close()

    async def responses_since(self, n: int) -> None:
        """Wait until ``n`` more responses have arrived."""
        target = len(self.results) + n
        async with asyncio.timeout(WAIT):
            while len(self.results) < target and not self.failures:
                self.progress.clear()
                await self.progress.wait()

    async def finish(self) -> None:
        self.stop.set()
        async with asyncio.timeout(WAIT):
            await asyncio.gather(*self.tasks)


@pytest.mark.parametrize("workers", [1, 2])
async def test_reload_under_load_drops_nothing(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter, workers: int
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path, "--workers", str(workers))
    for w in range(workers):
        await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}" if workers == 1 else rf"worker {w} ready")
    load = Load(port, clients=4)
    await load.responses_since(20)
    order = ["b", "a", "b", "a", "b"]
    for i, name in enumerate(order, start=1):
        write_atomically(path, gateway_yaml([port], backends[name]))
        await gw.count_lines(RELOADED, i)
        for w in range(workers if workers > 1 else 0):  # each worker applied the table it was sent
            await gw.count_lines(rf"\[worker {w}\] {RELOADED}", i)
        load.epoch = i
        await load.responses_since(40)
    await load.finish()
    assert load.failures == []
    assert len(load.results) >= 40 * len(order)
    final = [pod for epoch, _, pod in load.results if epoch == len(order)]
    assert final
    assert set(final) == {backends["b"].pod}
    for epoch, name in enumerate(order, start=1):
        # a request sent after reload ``epoch`` was seen is answered by that config or a later one
        seen = {pod for e, _, pod in load.results if e == epoch}
        assert backends[name].pod in seen
        assert seen <= {backends[n].pod for n in order[epoch - 1 :]}
    assert await gw.stop() == 0


BROKEN_ROUTE = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /b}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: primary, port: 8080}, percent: 10,
      fraction: {numerator: 1}}}]
    backendRefs: [{name: primary, port: 8080}]
"""


async def test_broken_reload_keeps_serving_and_shows_on_status(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path)
    admin = await gw.admin_port()
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    assert (await admin_json(admin, "/status"))["lastReloadError"] is None

    write_atomically(path, gateway_yaml([port], backends["b"]) + BROKEN_ROUTE)
    await gw.wait_line(r"reload failed: 1 error")
    error_line = (await gw.wait_line(r"gw\.yaml: HTTPRoute default/broken: spec\.rules\[0\]\.filters\[0\]")).string
    assert "Only one of percent or fraction" in error_line
    assert pod_of(await get(port)) == backends["a"].pod  # the old table still serves
    last = (await admin_json(admin, "/status"))["lastReloadError"]
    assert isinstance(last, dict)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", last["time"])
    assert len(last["errors"]) == 1
    assert str(path) in last["errors"][0]
    assert "HTTPRoute default/broken: spec.rules[0].filters[0].requestMirror" in last["errors"][0]
    assert (await reloads(admin))["failed"] >= 1
    assert (await reloads(admin))["applied"] == 0

    write_atomically(path, gateway_yaml([port], backends["b"]))
    await gw.count_lines(RELOADED, 1)
    assert pod_of(await get(port)) == backends["b"].pod
    assert (await admin_json(admin, "/status"))["lastReloadError"] is None
    assert (await reloads(admin))["applied"] >= 1
    assert await gw.stop() == 0


async def reloads(admin: int) -> dict[str, float]:
    """``mirrorgate_reloads_total`` by outcome, from ``/metrics``."""
    text = (await get(admin, "/metrics", host="127.0.0.1")).body.decode()
    found = re.findall(r'^mirrorgate_reloads_total\{outcome="(\w+)"\} (\S+)$', text, re.MULTILINE)
    assert {k for k, _ in found} == {"applied", "unchanged", "failed"}, text
    return {k: float(v) for k, v in found}


async def test_listeners_follow_the_gateway(tmp_path: Path, backends: dict[str, Backend], gateways: Starter) -> None:
    old, new = free_port(), free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([old], backends["a"]))
    gw = await gateways(path)
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{old}")
    idle = await Conn.open(old)  # an idle keep-alive connection on the port that will vanish
    await idle.send(encode_request("GET", "/before"))
    assert (await idle.read_response()).status == 200

    write_atomically(path, gateway_yaml([old, new], backends["a"]))
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{new}")
    await gw.count_lines(RELOADED, 1)
    assert pod_of(await get(new)) == backends["a"].pod
    assert pod_of(await get(old)) == backends["a"].pod

    busy = await Conn.open(old)  # in flight while its listener vanishes: finishes on the old table
    await busy.send(encode_request("GET", "/slow?delay=1s"))
    await backends["a"].log.wait_for("Echoing back request made to /slow?delay=1s")
    write_atomically(path, gateway_yaml([new], backends["b"]))
    await gw.wait_line(rf"stopped listening on 127\.0\.0\.1:{old} \(1 busy connection\(s\) finishing\)")
    await gw.count_lines(RELOADED, 2)
    assert pod_of(await get(new)) == backends["b"].pod
    assert await idle.closed_by_peer()
    await idle.close()
    r = await busy.read_response()
    assert r.status == 200
    assert pod_of(r) == backends["a"].pod
    assert await busy.closed_by_peer()
    await busy.close()
    try:
        await get(old)
    except ConnectionRefusedError:
        pass
    else:
        raise AssertionError(f"port {old} still accepts after its listener was removed")
    assert await gw.stop() == 0


async def test_sighup_reloads_when_watching_is_off(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path, "--no-watch")
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    write_atomically(path, gateway_yaml([port], backends["b"]))
    assert pod_of(await get(port)) == backends["a"].pod  # not watching: nothing happened yet
    gw.proc.send_signal(signal.SIGHUP)
    await gw.count_lines(RELOADED, 1)
    assert pod_of(await get(port)) == backends["b"].pod
    gw.proc.send_signal(signal.SIGHUP)  # unchanged: a no-op, still logged
    await gw.wait_line(r"reloaded: 1 servers, 1 routes \(unchanged\)")
    assert await gw.stop() == 0


EXTRA_ROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: extra, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /extra}}]
    backendRefs: [{name: other, port: 8080}]
"""


async def test_a_watched_directory_picks_up_new_files(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "00-gateway.yaml").write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(conf)
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    (conf / "notes.txt").write_text("not configuration")
    write_atomically(
        conf / "10-extra.yaml",
        service_docs("other", backends["b"].port, "default").removeprefix("---\n") + "---\n" + EXTRA_ROUTE,
    )
    await gw.wait_line(r"reloaded: 1 servers, 2 routes")
    assert pod_of(await get(port, "/extra/x")) == backends["b"].pod
    assert pod_of(await get(port, "/other")) == backends["a"].pod
    assert await gw.stop() == 0
