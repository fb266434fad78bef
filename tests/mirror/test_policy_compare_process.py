"""Every MirrorPolicy setting at once, through a real ``mirrorgate run -f FILE`` process: a YAML
MirrorPolicy sampling by a header, with a Literal Host, a mirror-only header and ``compare``, used
by two rules (the exchange's plain path, and its filtered path behind a RequestHeaderModifier).

The v2 backend answers what v1 answers but for one JSON field. Only the sampled keys are mirrored,
each with its own head, compared with the primary (``/mirrors``, ``/mirrors/<id>/diffs``) and
logged in the mirror access log with the literal Host; the primary never sees the mirror-only
header. Membership is computed here from the documented hash. No timed assertions.
"""

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mirrorgate.mirror.views import mirror_id
from tests.runtime.conftest import GatewayProcess
from tests.support.backends import Backend, Handler, free_port, read_head
from tests.support.client import Conn, encode_request
from tests.support.manifests import gateway_doc, route_doc, service_docs
from tests.support.waiting import until_async

from .compare_support import admin_get, response

PERCENT = 50
KEYS = [f"user-{i:03d}" for i in range(40)]
LITERAL = "checkout-v2.internal"
PATHS = ("/plain", "/filtered")
MIRRORS = {path: f"httproute/shop/checkout/rule/{i}/mirror/0" for i, path in enumerate(PATHS)}
POLICY = f"""---
apiVersion: mirrorgate.dev/v1alpha1
kind: MirrorPolicy
metadata: {{name: checkout-v2, namespace: shop}}
spec:
  backendRef: {{name: v2, port: 8080}}
  percent: {PERCENT}
  sampleBy: {{header: x-user-id, missing: Skip}}
  host: {{type: Literal, value: {LITERAL}}}
  requestHeaderModifier: {{set: [{{name: x-shadow, value: "1"}}]}}
  timeout: 10s
  compare: {{keepMismatches: 100}}
"""
POLICY_REF = "{type: ExtensionRef, extensionRef: {group: mirrorgate.dev, kind: MirrorPolicy, name: checkout-v2}}"
RULES = f"""  - matches: [{{path: {{type: PathPrefix, value: /plain}}}}]
    filters: [{POLICY_REF}]
    backendRefs: [{{name: v1, port: 8080}}]
  - matches: [{{path: {{type: PathPrefix, value: /filtered}}}}]
    filters:
    - {{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: x-rule, value: r}}]}}}}
    - {POLICY_REF}
    backendRefs: [{{name: v1, port: 8080}}]"""
MIRROR_LINE = re.compile(
    r'^\S+ \S+ mirror "GET (/\S+) HTTP/1\.1" (\d{3}|-) - [\d.]+ms route=(\S+) endpoint=\S+ '
    r"request_id=(\S+) name=(\S+) backend=(\S+) host=(\S+) drop=(\S+)$"
)


def expected_in(value: str) -> bool:
    """Membership as docs/mirroring.md documents it, written here independently."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big") % 1_000_000 < PERCENT * 10_000


SAMPLED = {k for k in KEYS if expected_in(k)}

Seen = tuple[str, dict[str, list[str]]]  # target, headers (lower-case names)


def json_backend(total: int, seen: list[Seen]) -> Handler:
    """Records each request head; answers a JSON body whose ``total`` is ``total``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            lines = (await read_head(reader)).decode("latin-1").split("\r\n")
            headers: dict[str, list[str]] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    headers.setdefault(name.strip().lower(), []).append(value.strip())
            target = lines[0].split(" ")[1]
            seen.append((target, headers))
            body = {"user": headers.get("x-user-id", [""])[0], "currency": "EUR", "total": total}
            writer.write(response(200, [("content-type", "application/json")], json.dumps(body).encode()))
            await writer.drain()

    return handler


class Run:
    def __init__(self, proc: GatewayProcess, port: int, admin: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.admin = admin
        self.log = log
        self.v1: list[Seen] = []
        self.v2: list[Seen] = []

    async def mirrors(self) -> dict[str, dict[str, Any]]:
        status, raw = await admin_get(self.admin, "/mirrors")
        assert status == 200
        return {e["mirror"]: e for e in json.loads(raw)["mirrors"]}

    async def diffs(self, mirror: str) -> list[dict[str, Any]]:
        status, raw = await admin_get(self.admin, f"/mirrors/{mirror_id(mirror)}/diffs")
        assert status == 200
        return json.loads(raw)["diffs"]  # type: ignore[no-any-return]


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Run]:
    v1_seen: list[Seen] = []
    v2_seen: list[Seen] = []
    v1 = await Backend.scripted(json_backend(10, v1_seen)).start()
    v2 = await Backend.scripted(json_backend(11, v2_seen)).start()
    port = free_port()
    path = tmp_path / "gateway.yaml"
    path.write_text(
        gateway_doc("shop", f"{{name: http, port: {port}, protocol: HTTP}}")
        + service_docs("v1", v1.port, "shop")
        + service_docs("v2", v2.port, "shop")
        + POLICY
        + route_doc(RULES, name="checkout", namespace="shop")
    )
    log = tmp_path / "mirror.log"
    proc = await GatewayProcess.start(path, "--no-watch", "--access-log", "off", "--mirror-access-log", str(log))
    try:
        admin = await proc.admin_port()
        await proc.wait_line(rf"listening on 127\.0\.0\.1:{port}")
        r = Run(proc, port, admin, log)
        r.v1, r.v2 = v1_seen, v2_seen
        yield r
        assert await proc.stop() == 0
    finally:
        await proc.kill()
        await v1.close()
        await v2.close()


async def test_a_sampled_policy_mirror_with_its_own_head_is_compared_and_logged(run: Run) -> None:
    assert 0 < len(SAMPLED) < len(KEYS)  # some keys in, some out: the test can tell them apart
    async with await Conn.open(run.port) as conn:
        for p in PATHS:
            for key in KEYS:
                headers = [("X-User-Id", key), ("X-Request-Id", f"rid-{p[1:]}-{key}")]
                await conn.send(encode_request("GET", f"{p}/{key}", "shop.example", headers))
                r = await conn.read_response()
                assert r.status == 200
                assert r.json()["total"] == 10  # the primary's answer
            await conn.send(encode_request("GET", f"{p}/nobody", "shop.example"))  # no key: Skip
            assert (await conn.read_response()).status == 200

    async def compared_all() -> bool:  # each request accounted for, each sent mirror compared
        entries = await run.mirrors()
        for m in MIRRORS.values():
            e = entries.get(m)
            if e is None or e["sent"] + e["sampledOut"] + sum(e["dropped"].values()) < len(KEYS) + 1:
                return False
            summary = e["compare"]
            if summary is None or summary["compared"] + sum(summary["mirrorFailed"].values()) < e["sent"]:
                return False
        return True

    await until_async(compared_all, "every sampled mirror compared")
    entries = await run.mirrors()
    for p, name in MIRRORS.items():
        entry = entries[name]
        assert entry["policy"] == "mirrorpolicy/shop/checkout-v2"
        assert entry["backend"] == "service/shop/v2:8080"
        assert (entry["sent"], entry["sampledOut"]) == (len(SAMPLED), len(KEYS) - len(SAMPLED) + 1)
        assert entry["completed"] == {"2xx": len(SAMPLED)}
        assert entry["dropped"] == {}
        summary = entry["compare"]
        assert (summary["compared"], summary["matched"]) == (len(SAMPLED), 0)
        assert summary["mismatches"] == {"status": 0, "header": 0, "body": len(SAMPLED)}
        assert summary["mirrorFailed"] == {}
        diffs = await run.diffs(name)
        users = set()
        for d in diffs:
            assert d["differences"] == [
                {"kind": "body", "path": "$.total", "primary": 10, "mirror": 11, "detail": "json"}
            ]
            (user,) = [v for n, v in d["request"]["headers"] if n.lower() == "x-user-id"]
            assert d["request"]["target"] == f"{p}/{user}"
            assert d["requestId"] == f"rid-{p[1:]}-{user}"
            users.add(user)
        assert users == SAMPLED  # compared: exactly the sampled keys

    # the mirror backend: only the sampled keys, each with the literal Host and the mirror-only header
    mirrored = {t: h for t, h in run.v2}
    assert set(mirrored) == {f"{p}/{k}" for p in PATHS for k in SAMPLED}
    assert len(run.v2) == len(mirrored)  # each once
    for target, got in mirrored.items():
        assert got["host"] == [LITERAL]
        assert got["x-shadow"] == ["1"]
        assert got.get("x-rule") == (["r"] if target.startswith("/filtered/") else None)  # the rule's edit
    # the primary: every request, never the mirror-only header, its own Host
    assert len(run.v1) == len(PATHS) * (len(KEYS) + 1)
    for _, got in run.v1:
        assert "x-shadow" not in got
        assert got["host"] == ["shop.example"]

    # the mirror access log: one line per sampled mirror, with the literal Host and the primary's id
    lines: list[str] = []

    async def logged() -> bool:
        lines[:] = (await asyncio.to_thread(_read, run.log)).splitlines()
        return len(lines) >= len(PATHS) * len(SAMPLED)

    await until_async(logged, "the mirror access-log lines")
    found = set()
    for line in lines:
        m = MIRROR_LINE.match(line)
        assert m is not None, line
        target, status, route, rid, name, backend, host, drop = m.groups()
        p, user = target.rsplit("/", 1)
        assert (status, drop, host, backend) == ("200", "-", LITERAL, "service/shop/v2:8080"), line
        assert name == MIRRORS[p]
        assert route == name.replace("/mirror/0", "/match/0")  # the primary's route (rule and match)
        assert rid == f"rid-{p[1:]}-{user}"
        found.add(target)
    assert len(lines) == len(found) == len(PATHS) * len(SAMPLED)
    assert found == set(mirrored)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
