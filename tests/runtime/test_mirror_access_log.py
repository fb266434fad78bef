"""The mirror access log of a real ``mirrorgate run`` (``--mirror-access-log``): one line per
sampled mirror, completed or dropped, with the primary's request id; JSON with the documented
fields; the primary's log unchanged; off by default; a sink nobody reads does not stop traffic
(lines dropped and counted); SIGTERM writes what is buffered."""

import asyncio
import json
import re
import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.runtime.conftest import WAIT, Backend, Starter, get, send_all, stuck_stdout_gateway
from tests.support.backends import free_port
from tests.support.client import Conn, encode_request
from tests.support.manifests import gateway_doc, route_doc, service_docs

HEALTHY = "service/default/m:8080"
DEAD = "service/default/dead:8080"
PRIMARY = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} 127\.0\.0\.1:\d+ "GET (/\S+) HTTP/1\.1" 200 \d+ [\d.]+ms '
    r"route=\S+ endpoint=127\.0\.0\.1:\d+ request_id=(\S+)$"
)
MIRROR = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} mirror "GET (/\S+) HTTP/1\.1" (\d{3}|-) - ([\d.]+)ms route=(\S+) '
    r"endpoint=(\S+) request_id=(\S+) name=(\S+) backend=(\S+) host=(\S+) drop=(\S+)( worker=\d)?$"
)
JSON_FIELDS = [
    "time",
    "mirror",
    "method",
    "target",
    "status",
    "duration_ms",
    "route",
    "endpoint",
    "request_id",
    "name",
    "backend",
    "host",
    "drop",
]


def mirrored_yaml(port: int, primary: Backend, healthy: Backend, dead_port: int) -> str:
    """Two rules, each mirrored to a healthy backend and to a port nothing listens on: ``/plain``
    (no other filter: the data plane's plain path) and ``/filtered`` (a URLRewrite to ``/rewritten``)."""
    mirrors = (
        "{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 8080}}}, "
        "{type: RequestMirror, requestMirror: {backendRef: {name: dead, port: 8080}}}"
    )
    rewrite = "{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /rewritten}}}"
    rules = (
        "  - matches: [{path: {type: PathPrefix, value: /plain}}]\n"
        "    backendRefs: [{name: primary, port: 8080}]\n"
        f"    filters: [{mirrors}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /filtered}}]\n"
        "    backendRefs: [{name: primary, port: 8080}]\n"
        f"    filters: [{rewrite}, {mirrors}]\n"
    )
    return (
        gateway_doc("default", f"{{name: l, port: {port}, protocol: HTTP}}")
        + service_docs("primary", primary.port, "default")
        + service_docs("m", healthy.port, "default")
        + service_docs("dead", dead_port, "default")
        + route_doc(rules, namespace="default")
    )


async def metric_sum(admin: int, pattern: str) -> float:
    r = await get(admin, "/metrics", host="127.0.0.1")
    return sum(float(v) for v in re.findall(pattern, r.body.decode(), re.M))


async def mirrors_ended(admin: int, n: int) -> None:
    """Wait until every one of ``n`` sampled mirrors has completed or been dropped (metrics)."""
    async with asyncio.timeout(WAIT):
        while True:
            done = await metric_sum(admin, r"^mirrorgate_mirror_(?:requests|dropped)_total\{.*\} (\S+)$")
            if done >= n:
                return
            await asyncio.sleep(0.05)


async def lines_of(path: Path, n: int) -> list[str]:
    """The lines of ``path`` once it has at least ``n``; fails after ``WAIT``."""
    async with asyncio.timeout(WAIT):
        while True:
            text = await asyncio.to_thread(_read, path)
            lines = text.splitlines()
            if len(lines) >= n:
                return lines
            await asyncio.sleep(0.05)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def requests(n: int) -> list[tuple[str, str | None]]:
    """Half plain, half filtered; every third without an x-request-id (the gateway makes one)."""
    return [(f"/{'plain' if i % 2 else 'filtered'}/{i}", None if i % 3 == 0 else f"rid-{i}") for i in range(n)]


async def test_every_mirrored_request_has_one_line_per_mirror(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port, dead = free_port(), free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(mirrored_yaml(port, backends["a"], backends["m"], dead))
    access, mirror_log = tmp_path / "access.log", tmp_path / "mirror.log"
    gw = await gateways(path, "--no-watch", "--access-log", str(access), "--mirror-access-log", str(mirror_log))
    admin = await gw.admin_port()
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    sent = requests(40)
    await send_all(port, sent)
    await mirrors_ended(admin, 80)
    primary = await lines_of(access, 40)
    lines = await lines_of(mirror_log, 80)
    assert await gw.stop() == 0

    # the primary's log is what it always was: one line per request, no mirror line in it
    ids: dict[str, str] = {}
    for line in primary:
        m = PRIMARY.match(line)
        assert m is not None, line
        ids[m.group(1)] = m.group(2)
    assert sorted(ids) == sorted(p for p, _ in sent)
    for p, rid in sent:
        assert ids[p] == rid if rid is not None else ids[p]  # the client's, else one the gateway made

    seen: Counter[tuple[str, str]] = Counter()
    reasons: Counter[str] = Counter()
    for line in lines:
        m = MIRROR.match(line)
        assert m is not None, line
        target, status, _ms, route, endpoint, rid, _name, backend, host, drop = m.groups()[:10]
        primary_path = target.replace("/rewritten/", "/filtered/", 1)  # the mirror is sent the rewritten target
        assert target.startswith(("/plain/", "/rewritten/")), line
        assert rid == ids[primary_path]  # the primary's request id, also when the gateway made it
        assert route != "-"
        assert host == f"example.com-shadow:{port}"
        seen[(primary_path, backend)] += 1
        if backend == HEALTHY:
            assert (status, drop, endpoint) == ("200", "-", f"127.0.0.1:{backends['m'].port}")
        else:
            assert backend == DEAD
            assert status == "-"
            assert drop in ("connect_error", "breaker_open"), line
            # a mirror dropped at admission (the breaker) never chose an endpoint
            assert endpoint == ("-" if drop == "breaker_open" else f"127.0.0.1:{dead}")
            reasons[drop] += 1
    assert seen == Counter({(p, b): 1 for p, _ in sent for b in (HEALTHY, DEAD)})
    # five consecutive connect failures open the breaker: later mirrors are dropped at admission
    assert reasons["connect_error"] >= 5
    assert reasons["breaker_open"] > 0


async def test_json_lines_have_the_documented_fields(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port, dead = free_port(), free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(mirrored_yaml(port, backends["a"], backends["m"], dead))
    mirror_log = tmp_path / "mirror.log"
    gw = await gateways(
        path, "--no-watch", "--access-log", "off", "--access-log-json", "--mirror-access-log", str(mirror_log)
    )
    admin = await gw.admin_port()
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    await send_all(port, [("/plain/j", "rid-j")])
    await mirrors_ended(admin, 2)
    lines = await lines_of(mirror_log, 2)
    assert await gw.stop() == 0
    records = {}
    for line in lines:
        record = json.loads(line.split(" ", 2)[2])  # after logging's date and time
        assert list(record) == JSON_FIELDS
        records[record["backend"]] = record
    ok, dropped = records[HEALTHY], records[DEAD]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ok["time"])
    common = {"mirror": True, "method": "GET", "target": "/plain/j", "request_id": "rid-j"}
    assert {k: ok[k] for k in common} == common == {k: dropped[k] for k in common}
    assert (ok["status"], ok["drop"], ok["host"]) == (200, "", f"example.com-shadow:{port}")
    assert ok["endpoint"] == f"127.0.0.1:{backends['m'].port}"
    assert isinstance(ok["duration_ms"], float)
    assert ok["duration_ms"] > 0
    assert (dropped["status"], dropped["drop"]) == (None, "connect_error")
    assert ok["name"] != dropped["name"]
    assert ok["route"] == dropped["route"] != ""
    assert gw.access == []  # nothing on stdout


async def test_off_by_default(tmp_path: Path, backends: dict[str, Backend], gateways: Starter) -> None:
    port, dead = free_port(), free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(mirrored_yaml(port, backends["a"], backends["m"], dead))
    gw = await gateways(path, "--no-watch")  # the access log on stdout, no mirror log
    admin = await gw.admin_port()
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    await send_all(port, [("/plain/1", None), ("/filtered/2", None)])
    await mirrors_ended(admin, 4)
    await gw.count_lines(r'"GET /(plain|filtered)/\d HTTP/1\.1" 200', 2, where=gw.access)
    assert await gw.stop() == 0
    assert len(gw.access) == 2, gw.access  # the primary's lines, and nothing else
    assert all(PRIMARY.match(line) for line in gw.access), gw.access
    assert not any("mirror" in line and "drop=" in line for line in gw.lines)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_sigterm_writes_every_buffered_line(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter, workers: str
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(mirrored_yaml(port, backends["a"], backends["m"], free_port()))
    mirror_log = tmp_path / "mirror.log"
    gw = await gateways(
        path, "--no-watch", "--access-log", "off", "--mirror-access-log", str(mirror_log), "--workers", workers
    )
    await gw.count_lines(rf"listening on 127\.0\.0\.1:{port}", int(workers))
    sent = [(f"/plain/{c}-{i}", f"r{c}-{i}") for c in range(3) for i in range(50)]
    await asyncio.gather(*(send_all(port, sent[c * 50 : (c + 1) * 50]) for c in range(3)))
    assert await gw.stop() == 0  # at once: mirrors may still be in flight, lines still buffered
    lines = (await asyncio.to_thread(mirror_log.read_text)).splitlines()
    per: Counter[tuple[str, str]] = Counter()
    for line in lines:
        m = MIRROR.match(line)
        assert m is not None, line
        per[(m.group(6), m.group(8))] += 1
        if workers == "2":
            assert m.group(11) is not None  # which worker wrote it
    # every sampled mirror has its line: completed, dropped, or cut short by the shutdown
    assert per == Counter({(rid, b): 1 for _, rid in sent for b in (HEALTHY, DEAD)})


async def test_a_sink_nobody_reads_drops_lines_and_keeps_serving(tmp_path: Path, backends: dict[str, Backend]) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(mirrored_yaml(port, backends["a"], backends["m"], free_port()))
    flags = ("--access-log", "off", "--mirror-access-log", "-")
    async with stuck_stdout_gateway(tmp_path, path, port, *flags) as (proc, admin):
        long = "/plain/" + "a" * 8000  # ~8 KB lines, two per request: 1 MiB of buffer is ~130 of them
        async with asyncio.timeout(WAIT):
            await send_all(port, [(f"{long}{i}", None) for i in range(300)])
        assert await metric_sum(admin, r"^mirrorgate_mirror_access_log_dropped_total (\S+)$") > 0
        assert await metric_sum(admin, r"^mirrorgate_access_log_dropped_total (\S+)$") == 0
        async with asyncio.timeout(WAIT):
            await send_all(port, [("/plain/after", None)])
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT):  # the drain gives up on a stuck sink
            assert await proc.wait() == 0


def policy_yaml(port: int, primary: Backend, mirror: Backend) -> str:
    """A MirrorPolicy keyed on ``x-user-id`` (missing: Skip) with a Literal Host and a mirror-only
    header, on ``/plain`` (the plain path) and on ``/filtered`` (a URLRewrite first: ``submit``),
    and a second policy, the same but to a Service without endpoints (dropped at admission)."""

    def policy(name: str, service: str) -> str:
        return f"""---
apiVersion: mirrorgate.dev/v1alpha1
kind: MirrorPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  backendRef: {{name: {service}, port: 8080}}
  sampleBy: {{header: x-user-id, missing: Skip}}
  host: {{type: Literal, value: {name}.internal}}
  requestHeaderModifier: {{set: [{{name: x-shadow, value: "1"}}]}}
"""

    refs = (
        "{type: ExtensionRef, extensionRef: {group: mirrorgate.dev, kind: MirrorPolicy, name: shadow}}, "
        "{type: ExtensionRef, extensionRef: {group: mirrorgate.dev, kind: MirrorPolicy, name: empty}}"
    )
    rewrite = "{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /rewritten}}}"
    rules = (
        "  - matches: [{path: {type: PathPrefix, value: /plain}}]\n"
        "    backendRefs: [{name: primary, port: 8080}]\n"
        f"    filters: [{refs}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /filtered}}]\n"
        "    backendRefs: [{name: primary, port: 8080}]\n"
        f"    filters: [{rewrite}, {refs}]\n"
    )
    no_endpoints = "---\napiVersion: v1\nkind: Service\nmetadata: {name: none, namespace: default}\n"
    no_endpoints += "spec: {ports: [{port: 8080, targetPort: 9}]}\n"
    return (
        gateway_doc("default", f"{{name: l, port: {port}, protocol: HTTP}}")
        + service_docs("primary", primary.port, "default")
        + service_docs("m", mirror.port, "default")
        + no_endpoints
        + policy("shadow", "m")
        + policy("empty", "none")
        + route_doc(rules, namespace="default")
    )


async def test_a_policy_mirror_logs_its_own_host_and_the_primarys_request_id(
    tmp_path: Path, backends: dict[str, Backend], gateways: Starter
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(policy_yaml(port, backends["a"], backends["m"]))
    mirror_log = tmp_path / "mirror.log"
    gw = await gateways(path, "--no-watch", "--access-log", "off", "--mirror-access-log", str(mirror_log))
    admin = await gw.admin_port()
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    conn = await Conn.open(port)
    try:
        for p in ("/plain", "/filtered"):
            # no x-user-id: missing with Skip, sampled out, no line; then one keyed request
            await conn.send(encode_request("GET", f"{p}/skipped", f"example.com:{port}", [("x-request-id", "skip")]))
            r = await conn.read_response()
            assert r.status == 200
            rid = f"rid{p.replace('/', '-')}"
            keyed = [("x-request-id", rid), ("x-user-id", "alice")]
            await conn.send(encode_request("GET", f"{p}/keyed", f"example.com:{port}", keyed))
            r = await conn.read_response()
            assert r.status == 200
            assert "x-shadow" not in {k.lower() for k in r.json()["headers"]}  # the copy's header only
    finally:
        await conn.close()
    await mirrors_ended(admin, 4)  # two keyed requests, two policy mirrors each
    assert await metric_sum(admin, r"^mirrorgate_mirror_sampled_out_total\{.*\} (\S+)$") == 4
    await backends["m"].log.wait_for("Echoing back request made to /rewritten/keyed")
    lines = await lines_of(mirror_log, 4)
    assert await gw.stop() == 0

    assert len(lines) == 4, lines  # the skipped requests have none
    got = {}
    for line in lines:
        m = MIRROR.match(line)
        assert m is not None, line
        target, status, _ms, route, endpoint, rid, _name, backend, host, drop = m.groups()[:10]
        got[(target, backend)] = (status, rid, route, host, drop, endpoint)
    mirror_endpoint = f"127.0.0.1:{backends['m'].port}"
    for i, p, target in ((0, "/plain", "/plain/keyed"), (1, "/filtered", "/rewritten/keyed")):
        rid, route = f"rid{p.replace('/', '-')}", f"httproute/default/route/rule/{i}/match/0"
        # completed: the head it was sent with, its own Host; the primary's request id and route
        completed = ("200", rid, route, "shadow.internal", "-", mirror_endpoint)
        assert got[(target, "service/default/m:8080")] == completed
        # dropped at admission (no endpoints): the Host its policy would have given
        assert got[(target, "service/default/none:8080")] == ("-", rid, route, "empty.internal", "no_endpoints", "-")
    assert "host=shadow.internal" in backends["m"].log.getvalue()  # what the mirror backend received
