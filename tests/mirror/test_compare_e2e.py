"""Response comparison through the real gateway and the real admin server: a primary (v1) and a
mirror (v2) on loopback answer scripted responses per path; the clients are raw sockets.

The IR mirrors get ``compare`` directly (``compare_support.with_compare``). No timed assertions.
"""

import asyncio
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from random import Random
from typing import Any

import pytest

from mirrorgate.admin.server import AdminApp, start_admin
from mirrorgate.echo import EchoConfig, start_echo
from mirrorgate.ir.table import MirrorCompare
from mirrorgate.mirror.views import mirror_id
from mirrorgate.serve.admin import mirror_endpoints
from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane
from tests.support.backends import Backend, Handler, read_head
from tests.support.client import Conn, encode_request
from tests.support.manifests import gateway_doc, route_doc, service_docs
from tests.support.waiting import until

from .compare_support import Reply, admin_get, response, scripted, with_compare

MIRROR = "httproute/infra/compared/rule/0/mirror/0"
RULES = """  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: v2, port: 8080}}}]
    backendRefs: [{name: v1, port: 8080}]"""
JSON = [("content-type", "application/json")]
DEFAULT = MirrorCompare()


def v1_reply(target: str) -> Reply:
    body = {"id": 7, "name": "cart", "items": [{"sku": "a", "updatedAt": "2026-01-01"}], "total": 10}
    headers = [
        *JSON,
        ("x-flavor", "plain"),
        ("date", "Mon, 07 Dec 2026 10:00:00 GMT"),
        ("set-cookie", "sid=v1-SECRETCOOKIE"),
    ]
    return 200, headers, json.dumps(body).encode()


def v2_reply(target: str) -> Reply:
    """v1's answer, but for what the path asks to differ."""
    status, headers, body = v1_reply(target)
    headers = [(n, "Tue, 08 Dec 2026 11:00:00 GMT" if n == "date" else v) for n, v in headers]  # ignored by default
    doc = json.loads(body)
    if "/status" in target:
        status = 503
    if "/header" in target:
        headers = [(n, "spicy" if n == "x-flavor" else v) for n, v in headers]
    if "/field" in target:
        doc["total"] = 11
    if "/ignored" in target:
        doc["items"][0]["updatedAt"] = "2026-02-02"
    if "/cookie" in target:
        headers = [(n, "sid=v2-SECRETCOOKIE" if n == "set-cookie" else v) for n, v in headers]
    return status, headers, json.dumps(doc, indent=1).encode()  # other bytes, same JSON


class Setup:
    def __init__(self, plane: DataPlane, admin_port: int) -> None:
        self.plane = plane
        self.port = plane.port(80)
        self.admin = admin_port

    async def get(
        self, path: str, headers: list[tuple[str, str]] | None = None, method: str = "GET", body: bytes | None = None
    ) -> None:
        async with await Conn.open(self.port) as conn:
            headers = headers or [("X-Request-Id", f"rid{path}")]
            await conn.send(encode_request(method, path, "shop.example", headers, body))
            r = await conn.read_response()
            assert r.status == 200  # the primary's answer, whatever the mirror says

    async def mirrors(self) -> dict[str, Any]:
        status, raw = await admin_get(self.admin, "/mirrors")
        assert status == 200
        (entry,) = json.loads(raw)["mirrors"]
        return entry  # type: ignore[no-any-return]

    async def compared(self, n: int) -> dict[str, Any]:
        """The ``compare`` summary once ``n`` comparisons have ended."""
        board = self.plane.mirror.board
        await until(lambda: board.pending == 0 and _ended(board) >= n, f"{n} comparisons")
        entry = await self.mirrors()
        return entry["compare"]  # type: ignore[no-any-return]

    async def diffs(self) -> tuple[bytes, list[dict[str, Any]]]:
        status, raw = await admin_get(self.admin, f"/mirrors/{mirror_id(MIRROR)}/diffs")
        assert status == 200
        doc = json.loads(raw)
        assert doc["mirror"] == MIRROR
        assert doc["id"] == mirror_id(MIRROR)
        return raw, doc["diffs"]


def _ended(board: Any) -> int:
    return sum(
        s.counts.compared + s.counts.primary_failed + sum(s.counts.mirror_failed.values()) for s in board.stats.values()
    )


SetupFactory = Callable[..., Any]


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[SetupFactory]:
    closers: list[Any] = []

    async def make(
        settings: MirrorCompare | None = DEFAULT,
        v2: Callable[[str], Reply] = v2_reply,
        rules: str = RULES,
        v2_handler: Handler | None = None,
        policies: str = "",
        echo: bool = False,
    ) -> Setup:
        if echo:  # ``mirrorgate echo`` on both sides: its JSON shows the request's headers
            e1 = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="v1-1-2"), log=io.StringIO())
            e2 = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="v2-1-2"), log=io.StringIO())
            closers.extend([e1.close, e2.close])
            ports = (e1.port, e2.port)
        else:
            b1 = await Backend.scripted(scripted(v1_reply)).start()
            b2 = await Backend.scripted(v2_handler or scripted(v2)).start()
            closers.extend([b1.close, b2.close])
            ports = (b1.port, b2.port)
        path = tmp_path / "gateway.yaml"
        path.write_text(
            gateway_doc()
            + service_docs("v1", ports[0])
            + service_docs("v2", ports[1])
            + route_doc(rules, name="compared")
            + policies
        )
        table = load_table([str(path)], "127.0.0.1")
        if not policies:  # IR mirrors get ``compare`` directly
            table = with_compare(table, settings)
        plane = DataPlane(table, port_overrides={80: 0}, rng=Random(1))
        await plane.start()
        app = AdminApp(
            registry=plane.registry,
            table=lambda: plane.table,
            status=dict,
            ready=lambda: True,
            **mirror_endpoints(lambda: plane.table, plane.mirror.views()),
        )
        admin = await start_admin(app, "127.0.0.1", 0)
        closers.append(lambda: _close_admin(admin))
        closers.append(lambda: plane.shutdown(1.0))
        return Setup(plane, admin.sockets[0].getsockname()[1])

    yield make
    for close in reversed(closers):
        await close()


async def _close_admin(admin: Any) -> None:
    admin.close()
    await admin.wait_closed()


async def test_identical_versions_match_every_time(gateway: SetupFactory) -> None:
    s = await gateway(v2=v1_reply)
    for i in range(10):
        await s.get(f"/same/{i}")
    summary = await s.compared(10)
    assert summary["compared"] == 10
    assert summary["matched"] == 10
    assert summary["matchRate"] == 1.0
    assert summary["mismatches"] == {"status": 0, "header": 0, "body": 0}
    assert summary["mirrorFailed"] == {}
    assert summary["skipped"] == 0
    for side in ("primary", "mirror"):
        assert summary["latencyMs"][side]["p50"] > 0
        assert summary["latencyMs"][side]["p99"] >= summary["latencyMs"][side]["p50"]
    _, diffs = await s.diffs()
    assert diffs == []


async def test_each_deliberate_difference_is_reported_exactly(gateway: SetupFactory) -> None:
    s = await gateway(MirrorCompare(ignore_paths=("$.items[*].updatedAt",)))
    for path in ("/status", "/header", "/field", "/ignored", "/same"):
        await s.get(path)
    summary = await s.compared(5)
    assert summary["compared"] == 5
    assert summary["matched"] == 2  # /ignored (the changed field is ignored) and /same
    assert summary["mismatches"] == {"status": 1, "header": 1, "body": 1}
    _, diffs = await s.diffs()
    by_target = {d["request"]["target"]: d for d in diffs}
    assert set(by_target) == {"/status", "/header", "/field"}
    assert [d["request"]["target"] for d in diffs] == ["/field", "/header", "/status"]  # newest first
    assert by_target["/status"]["differences"] == [{"kind": "status", "primary": 200, "mirror": 503, "detail": "class"}]
    assert by_target["/header"]["differences"] == [
        {"kind": "header", "name": "x-flavor", "primary": "plain", "mirror": "spicy"}
    ]
    assert by_target["/field"]["differences"] == [
        {"kind": "body", "path": "$.total", "primary": 10, "mirror": 11, "detail": "json"}
    ]
    status, metrics = await admin_get(s.admin, "/metrics")
    assert status == 200
    text = metrics.decode()
    for sample in (
        f'mirrorgate_mirror_compared_total{{mirror="{MIRROR}",result="match"}} 2.0',
        f'mirrorgate_mirror_compared_total{{mirror="{MIRROR}",result="mismatch"}} 3.0',
        f'mirrorgate_mirror_mismatch_total{{kind="status",mirror="{MIRROR}"}} 1.0',
        f'mirrorgate_mirror_mismatch_total{{kind="header",mirror="{MIRROR}"}} 1.0',
        f'mirrorgate_mirror_mismatch_total{{kind="body",mirror="{MIRROR}"}} 1.0',
        f'mirrorgate_mirror_compare_skipped_total{{mirror="{MIRROR}"}} 0.0',
    ):
        assert sample in text, sample
    field = by_target["/field"]
    assert field["kinds"] == ["body"]
    assert field["requestId"] == "rid/field"
    assert field["primary"]["status"] == 200
    assert field["mirror"]["status"] == 200
    assert json.loads(field["mirror"]["body"])["total"] == 11
    assert field["mirror"]["bodyEncoding"] == "utf-8"
    assert field["mirror"]["bodyTruncated"] is False
    assert field["request"]["method"] == "GET"
    assert ["host", "shop.example"] in [[n.lower(), v] for n, v in field["request"]["headers"]]


async def test_without_ignore_paths_the_changed_field_is_a_mismatch(gateway: SetupFactory) -> None:
    s = await gateway(MirrorCompare())
    await s.get("/ignored", [("X-Other", "1")])  # no request id: the gateway's own is recorded
    summary = await s.compared(1)
    assert summary["mismatches"] == {"status": 0, "header": 0, "body": 1}
    _, diffs = await s.diffs()
    assert [d["path"] for d in diffs[0]["differences"]] == ["$.items[0].updatedAt"]
    assert isinstance(diffs[0]["requestId"], str)
    assert len(diffs[0]["requestId"]) >= 16


async def test_redacted_headers_never_appear_in_the_diffs(gateway: SetupFactory) -> None:
    s = await gateway(MirrorCompare(redact_headers=("x-flavor",)))
    secret = [("Authorization", "Bearer SECRETTOKEN"), ("X-Request-Id", "rid-secret")]
    await s.get("/cookie/header", secret)
    await s.compared(1)
    raw, diffs = await s.diffs()
    assert b"SECRETTOKEN" not in raw
    assert b"SECRETCOOKIE" not in raw
    assert b"spicy" not in raw
    assert b"plain" not in raw
    (d,) = diffs
    assert {x["name"] for x in d["differences"]} == {"set-cookie", "x-flavor"}  # still compared
    assert all(x["primary"] == x["mirror"] == "[redacted]" for x in d["differences"])
    assert ["authorization", "[redacted]"] in d["request"]["headers"]  # (names as the gateway keeps them)
    assert ["set-cookie", "[redacted]"] in d["mirror"]["headers"]


async def test_a_mirror_without_compare_is_listed_with_null_compare(gateway: SetupFactory) -> None:
    s = await gateway(None)
    await s.get("/plain")
    await until(lambda: s.plane.mirror.stats().completed.get("2xx") == 1)
    entry = await s.mirrors()
    assert entry == {
        "id": mirror_id(MIRROR),
        "mirror": MIRROR,
        "route": "httproute/infra/compared/rule/0",
        "backend": "service/infra/v2:8080",
        "policy": None,
        "sent": 1,
        "sampledOut": 0,
        "completed": {"2xx": 1},
        "dropped": {},
        "compare": None,
    }
    assert s.plane.mirror.board.stats == {}
    status, raw = await admin_get(s.admin, "/mirrors/000000000000/diffs")
    assert status == 404
    assert "error" in json.loads(raw)


BOTH_LEVELS = """  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: v2, port: 8080}}}]
    backendRefs:
    - name: v1
      port: 8080
      filters:
      - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-edited, value: "1"}]}}
      - {type: RequestMirror, requestMirror: {backendRef: {name: v2, port: 8080}}}"""


async def test_rule_and_backend_ref_mirrors_of_one_request_are_each_compared(gateway: SetupFactory) -> None:
    s = await gateway(v2=v1_reply, rules=BOTH_LEVELS)
    for i in range(3):
        await s.get(f"/upload/{i}", method="POST", body=b"x" * 70_000)  # a body: the tee and the capture together
    board = s.plane.mirror.board
    await until(lambda: board.pending == 0 and _ended(board) >= 6, "6 comparisons")
    status, raw = await admin_get(s.admin, "/mirrors")
    assert status == 200
    entries = {e["mirror"]: e for e in json.loads(raw)["mirrors"]}
    assert set(entries) == {MIRROR, "httproute/infra/compared/rule/0/backend/0/mirror/0"}
    assert entries["httproute/infra/compared/rule/0/backend/0/mirror/0"]["route"] == (
        "httproute/infra/compared/rule/0/backend/0"
    )
    for e in entries.values():
        assert e["compare"]["compared"] == 3
        assert e["compare"]["matched"] == 3


async def test_a_reload_without_compare_frees_the_ring_and_keeps_the_counters(gateway: SetupFactory) -> None:
    s = await gateway()
    await s.get("/status")
    await s.compared(1)
    _, diffs = await s.diffs()
    assert len(diffs) == 1
    await s.plane.apply(with_compare(s.plane.table, None))
    entry = await s.mirrors()
    assert entry["compare"] is None  # not compared any more
    assert s.plane.mirror.board.stats[MIRROR].counts.mismatches["status"] == 1  # the metrics never go down
    assert not s.plane.mirror.board.stats[MIRROR].ring
    await s.plane.apply(with_compare(s.plane.table, MirrorCompare()))
    assert (await s.mirrors())["compare"]["mismatches"]["status"] == 1
    _, diffs = await s.diffs()
    assert diffs == []


async def test_primary_answers_never_wait_for_the_mirror_or_the_comparison(gateway: SetupFactory) -> None:
    """The mirror answers only once every primary answer has reached the client: the client
    cannot have waited for it. Then every comparison completes."""
    gate = asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            target = (await read_head(reader)).split(b" ")[1].decode()
            await gate.wait()
            writer.write(response(*v1_reply(target)))
            await writer.drain()

    s = await gateway(v2_handler=held)
    async with await Conn.open(s.port) as conn:
        for i in range(10):  # one keep-alive connection: each answer arrives while the mirrors hang
            await conn.send(encode_request("GET", f"/held/{i}", "shop.example"))
            r = await conn.read_response()
            assert r.status == 200
            assert r.json()["total"] == 10
    board = s.plane.mirror.board
    assert board.pending == 10  # captured, waiting for the mirrors
    gate.set()
    summary = await s.compared(10)
    assert (summary["compared"], summary["matched"]) == (10, 10)


POLICY = """---
apiVersion: mirrorgate.dev/v1alpha1
kind: MirrorPolicy
metadata: {name: v2-compare, namespace: infra}
spec:
  backendRef: {name: v2, port: 8080}
  compare:
    ignorePaths: ["$.items[*].updatedAt"]
    redactHeaders: [X-Flavor]
    keepMismatches: 2
"""
POLICY_RULES = """  - filters:
    - type: ExtensionRef
      extensionRef: {group: mirrorgate.dev, kind: MirrorPolicy, name: v2-compare}
    backendRefs: [{name: v1, port: 8080}]"""


async def test_a_mirror_policy_from_yaml_compares(gateway: SetupFactory) -> None:
    s = await gateway(rules=POLICY_RULES, policies=POLICY)
    for path in ("/ignored", "/field", "/header", "/status"):
        await s.get(path)
    summary = await s.compared(4)
    assert summary["compared"] == 4
    assert summary["matched"] == 1  # /ignored: the policy's ignorePaths
    assert summary["mismatches"] == {"status": 1, "header": 1, "body": 1}
    entry = await s.mirrors()
    assert entry["policy"] == "mirrorpolicy/infra/v2-compare"
    raw, diffs = await s.diffs()
    assert [d["request"]["target"] for d in diffs] == ["/status", "/header"]  # keepMismatches: 2
    assert b"spicy" not in raw  # the policy's redactHeaders
    assert b"SECRETCOOKIE" not in raw


SECRETS = ("TOPSECRET", "PROXYSECRET", "COOKIESECRET", "OTHERCOOKIE", "KEYSECRET")


async def test_secrets_echoed_in_bodies_never_reach_the_diffs(gateway: SetupFactory) -> None:
    """``mirrorgate echo`` answers the request's headers in its JSON body: the values of the
    redacted request headers must appear nowhere in ``/mirrors/<id>/diffs``."""
    s = await gateway(MirrorCompare(redact_headers=("x-api-key",), max_body_bytes=1 << 20), echo=True)
    headers = [
        ("Authorization", "Bearer TOPSECRET"),
        ("Proxy-Authorization", "Basic PROXYSECRET"),
        ("Cookie", "sid=COOKIESECRET; theme=OTHERCOOKIE"),
        ("X-Api-Key", "KEYSECRET"),
        ("X-Request-Id", "rid-secret"),
    ]
    await s.get("/echo/secret", headers)
    summary = await s.compared(1)
    assert summary["mismatches"]["body"] == 1  # the echo servers' names differ
    raw, (record,) = await s.diffs()
    for side in ("primary", "mirror"):
        assert record[side]["bodyEncoding"] == "utf-8"
        body = json.loads(record[side]["body"])
        assert body["path"] == "/echo/secret"  # the body is there, masked
        assert body["headers"]["Authorization"] == "[redacted]"
        assert body["headers"]["X-Api-Key"] == "[redacted]"
    for secret in SECRETS:
        assert secret.encode() not in raw, secret
