"""HTTPS listeners, BackendTLSPolicy, ExternalName and WebSocket end to end: YAML only, served by
``mirrorgate run -f FILE`` as a real process, certificates made by trustme and written into the
YAML (Secrets in ``stringData`` and in base64 ``data``), backends real echo servers (one of them
serving HTTPS with a certificate from the test CA).

Every wait is bounded; the private keys are looked for in everything the gateway prints or serves.
"""

import asyncio
import json
import re
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from mirrorgate.echo import EchoConfig, EchoServer, start_echo
from tests.runtime.conftest import EchoLog, GatewayProcess, Starter, admin_json, gateways, write_atomically
from tests.support.backends import free_port
from tests.support.certs import Leaf, Pki, handshake, mismatched
from tests.support.client import Conn, Response, encode_request, request
from tests.support.manifests import gateway_doc, grant_doc, route_doc, service_docs
from tests.support.tls_manifests import (
    backend_tls_doc,
    ca_configmap_doc,
    external_service_doc,
    key_fragments,
    secret_doc,
)
from tests.support.waiting import until_async
from tests.support.websocket import TEXT, WsClient, WsEchoBackend

__all__ = ["gateways"]  # the fixture, imported to be used here

STAGING = "staging.localtest"
GARBAGE = Leaf(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n", b"not a key\n")


@dataclass
class World:
    """Everything one gateway configuration is made of."""

    pki: Pki
    leaves: dict[str, Leaf]
    primary: EchoServer
    primary_log: EchoLog
    secure: EchoServer
    secure_log: EchoLog
    ws: WsEchoBackend
    https_port: int
    http_port: int
    path: Path

    def client(self) -> ssl.SSLContext:
        return self.pki.client_context()


def https_listeners(port: int) -> str:
    def one(name: str, host: str, ref: str) -> str:
        return f"{{name: {name}, port: {port}, protocol: HTTPS, hostname: '{host}', tls: {{certificateRefs: [{ref}]}}}}"

    return ", ".join(
        [
            one("a", "a.example.com", "{name: cert-a}"),
            one("b", "b.example.com", "{name: cert-b}"),
            one("wild", "*.wild.example.com", "{name: cert-wild}"),
            one("missing", "missing.example.com", "{name: nope}"),
            one("bad", "bad.example.com", "{name: cert-bad}"),
            one("garbage", "garbage.example.com", "{name: cert-garbage}"),
            one("granted", "granted.example.com", "{name: granted, namespace: other}"),
            one("ungranted", "ungranted.example.com", "{name: ungranted, namespace: other}"),
        ]
    )


def tls_backends(secure_port: int, wrong_ca: str) -> str:
    docs = ca_configmap_doc("ca", "CA_PEM") + ca_configmap_doc("wrong-ca", wrong_ca)
    for name, ca, host in (
        ("secure", "ca", STAGING),
        ("wrongca", "wrong-ca", STAGING),
        ("wronghost", "ca", "elsewhere.localtest"),
    ):
        docs += service_docs(name, secure_port, "default") + backend_tls_doc(f"{name}-tls", name, ca, host)
    return docs + external_service_doc("ext", "localhost") + backend_tls_doc("ext-tls", "ext", "ca", STAGING)


def routes(secure_port: int) -> str:
    def mirror(service: str, port: int = 8080) -> str:
        ref = f"{{backendRef: {{name: {service}, port: {port}}}}}"
        return f"    filters: [{{type: RequestMirror, requestMirror: {ref}}}]\n"

    out = route_doc("  - backendRefs: [{name: primary, port: 8080}]\n", name="web", namespace="default")
    for host, backend in (("secure", "secure"), ("wrongca", "wrongca"), ("wronghost", "wronghost")):
        rules = f"  - backendRefs: [{{name: {backend}, port: 8080}}]\n"
        out += route_doc(rules, name=f"to-{host}", namespace="default").replace(
            "  rules:", f"  hostnames: [{host}.test]\n  rules:"
        )
    for host, target, port in (
        ("mirror-ok", "secure", 8080),
        ("mirror-wrongca", "wrongca", 8080),
        ("mirror-wronghost", "wronghost", 8080),
        ("mirror-ext", "ext", secure_port),
    ):
        rules = "  - backendRefs: [{name: primary, port: 8080}]\n" + mirror(target, port)
        out += route_doc(rules, name=host, namespace="default").replace(
            "  rules:", f"  hostnames: [{host}.test]\n  rules:"
        )
    ws_rules = (
        "  - matches: [{path: {type: PathPrefix, value: /ws}}]\n"
        "    backendRefs: [{name: ws, port: 8080}]\n" + mirror("primary")
    )
    return out + route_doc(ws_rules, name="ws", namespace="default")


def world_yaml(w: World, other_ca: Pki) -> str:
    listeners = https_listeners(w.https_port) + f", {{name: http, port: {w.http_port}, protocol: HTTP}}"
    text = gateway_doc("default", listeners)
    text += secret_doc("cert-a", w.leaves["a"])
    text += secret_doc("cert-b", w.leaves["b"], base64_data=True)
    text += secret_doc("cert-wild", w.leaves["wild"])
    text += secret_doc("cert-bad", w.leaves["bad"])
    text += secret_doc("cert-garbage", GARBAGE, base64_data=True)
    text += secret_doc("granted", w.leaves["granted"], "other", base64_data=True)
    text += secret_doc("ungranted", w.leaves["ungranted"], "other")
    text += grant_doc("other", "default", from_kind="Gateway", to_kind="Secret", to_name="granted")
    text += service_docs("primary", w.primary.port, "default") + service_docs("ws", w.ws.port, "default")
    text += tls_backends(w.secure.port, other_ca.ca_pem).replace(
        "ca.crt: |\n    CA_PEM\n", "ca.crt: " + ca_block(w.pki.ca_pem)
    )
    return text + routes(w.secure.port)


def ca_block(pem: str) -> str:
    return "|\n" + "".join(f"    {line}\n" for line in pem.strip().splitlines())


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    pki = Pki()
    leaves = {
        "a": pki.leaf("a.example.com"),
        "b": pki.leaf("b.example.com", key_type="rsa"),
        "wild": pki.leaf("*.wild.example.com"),
        "bad": mismatched(pki, "bad.example.com"),
        "granted": pki.leaf("granted.example.com"),
        "ungranted": pki.leaf("ungranted.example.com"),
        "staging": pki.leaf(STAGING),
    }
    (tmp_path / "staging.crt").write_bytes(leaves["staging"].crt)
    (tmp_path / "staging.key").write_bytes(leaves["staging"].key)
    primary_log, secure_log = EchoLog(), EchoLog()
    primary = await start_echo(EchoConfig(port=0, bind="127.0.0.1", name="primary-1-2"), log=primary_log)
    tls_config = EchoConfig(
        port=0,
        bind="127.0.0.1",
        name="secure-1-2",
        tls_cert=str(tmp_path / "staging.crt"),
        tls_key=str(tmp_path / "staging.key"),
    )
    secure = await start_echo(tls_config, log=secure_log)
    ws = await WsEchoBackend().start()
    w = World(pki, leaves, primary, primary_log, secure, secure_log, ws, free_port(), free_port(), tmp_path / "gw.yaml")
    w.path.write_text(world_yaml(w, Pki()))
    yield w
    for server in (primary, secure):
        await server.close()
    await ws.close()


async def started(gateways: Starter, w: World, *flags: str) -> GatewayProcess:
    gw = await gateways(w.path, *flags)
    await gw.wait_line(r"serving \d+ listener")  # every worker ready
    await wait_serving(w.http_port)
    return gw


async def wait_serving(port: int) -> None:
    async with asyncio.timeout(20):
        while True:
            try:
                await request(port, host="plain.test")
                return
            except OSError:
                await asyncio.sleep(0.05)


async def https_get(w: World, sni: str, host: str | None = None, path: str = "/") -> Response:
    async with await Conn.open(w.https_port, ssl=w.client(), server_hostname=sni) as conn:
        await conn.send(encode_request("GET", path, host or sni))
        return await conn.read_response()


def status_json(w: World) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "mirrorgate", "status", "-f", str(w.path), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for fragment in key_fragments(*w.leaves.values()):
        assert fragment not in out.stdout + out.stderr
    data = json.loads(out.stdout)
    assert isinstance(data, dict)
    return data


def listener_conditions(status: dict[str, object]) -> dict[str, dict[str, tuple[str, str, str]]]:
    items = status["items"]
    assert isinstance(items, list)
    gateway = next(i for i in items if i["kind"] == "Gateway")
    return {
        listener["name"]: {c["type"]: (c["status"], c["reason"], c["message"]) for c in listener["conditions"]}
        for listener in gateway["status"]["listeners"]
    }


async def dropped(gw: GatewayProcess, reason: str, n: int = 1) -> bool:
    """Whether ``n`` mirrors in all were dropped for ``reason``."""
    series = re.findall(
        rf'^mirrorgate_mirror_dropped_total\{{[^}}]*reason="{reason}"[^}}]*\}} (\S+)$', await metrics(gw), re.M
    )
    return sum(float(v) for v in series) == n


async def metrics(gw: GatewayProcess) -> str:
    port = await gw.admin_port()
    return (await request(port, path="/metrics", host="127.0.0.1")).body.decode()


async def test_sni_status_421_and_backend_tls(gateways: Starter, world: World) -> None:
    w = world
    gw = await started(gateways, w)
    for sni, names in (
        ("a.example.com", ["a.example.com"]),
        ("b.example.com", ["b.example.com"]),
        ("x.wild.example.com", ["*.wild.example.com"]),
        ("granted.example.com", ["granted.example.com"]),
    ):
        seen = await handshake(w.https_port, w.client(), sni, check_hostname=True)
        assert seen.names == names, sni
        r = await https_get(w, sni)
        assert r.status == 200, (sni, r)
        assert r.json()["pod"] == "primary-1-2"
    assert (await https_get(w, "a.example.com", host="b.example.com")).status == 421
    # the listeners with a missing, malformed or ungranted Secret are not served; the others are
    conds = listener_conditions(status_json(w))
    for name in ("a", "b", "wild", "granted"):
        assert conds[name]["ResolvedRefs"][0] == "True", conds[name]
    assert conds["missing"]["ResolvedRefs"][:2] == ("False", "InvalidCertificateRef")
    assert "nope" in conds["missing"]["ResolvedRefs"][2]
    assert conds["bad"]["ResolvedRefs"][:2] == ("False", "InvalidCertificateRef")
    assert "does not match" in conds["bad"]["ResolvedRefs"][2]
    assert conds["garbage"]["ResolvedRefs"][:2] == ("False", "InvalidCertificateRef")
    assert "Secret default/cert-garbage: tls.crt" in conds["garbage"]["ResolvedRefs"][2]
    assert conds["ungranted"]["ResolvedRefs"][:2] == ("False", "RefNotPermitted")
    assert (await https_get(w, "a.example.com")).status == 200
    await backend_tls(w, gw)
    await no_key_anywhere(w, gw)


async def backend_tls(w: World, gw: GatewayProcess) -> None:
    r = await request(w.http_port, host="secure.test")
    assert r.status == 200, r
    assert r.json()["pod"] == "secure-1-2"
    assert len(secure_requests(w)) == 1
    for host in ("wrongca.test", "wronghost.test"):
        r = await request(w.http_port, host=host)
        assert r.status == 503, (host, r)
    assert len(secure_requests(w)) == 1, "a backend whose certificate does not verify never gets the request"
    for host in ("mirror-ok.test", "mirror-ext.test"):
        r = await request(w.http_port, path=f"/{host}", host=host)
        assert r.status == 200, r
        assert r.json()["pod"] == "primary-1-2"
        await w.secure_log.wait_for(f"host={host}")
    for host in ("mirror-wrongca.test", "mirror-wronghost.test"):
        r = await request(w.http_port, host=host)
        assert r.status == 200, (host, r)
        assert r.json()["pod"] == "primary-1-2"
    await until_async(partial(dropped, gw, "tls", 2), "the mirrors to a wrong CA and name dropped (reason tls)")
    assert len(secure_requests(w)) == 3


def secure_requests(w: World) -> list[str]:
    return [ln for ln in w.secure_log.getvalue().splitlines() if ln.startswith("Echoing back")]


async def no_key_anywhere(w: World, gw: GatewayProcess) -> None:
    admin = await gw.admin_port()
    dumped = [json.dumps(await admin_json(admin, p)) for p in ("/config_dump", "/status")]
    await gw.stop()
    everything = "\n".join([*gw.lines, *gw.access, *dumped])
    fragments = key_fragments(*w.leaves.values())
    assert sum(f in w.path.read_text() for f in fragments) >= len(w.leaves)  # the probe finds keys where they are
    for fragment in fragments:
        assert fragment not in everything


async def test_websocket_through_https_with_a_mirror_rule(gateways: Starter, world: World) -> None:
    w = world
    gw = await started(gateways, w)
    ws = await WsClient.connect(w.https_port, "/ws/chat", "a.example.com", ssl=w.client())
    try:
        assert ws.status == 101, ws.head
        assert await ws.echo(TEXT, b"hello over wss") == b"hello over wss"
    finally:
        ws.close()
    await until_async(partial(dropped, gw, "upgrade"), "the mirror of the upgrade dropped (reason upgrade)")
    assert b"x-forwarded-proto: https" in w.ws.heads[0].lower()


async def test_certificate_reload_under_keepalive_traffic_with_two_workers(gateways: Starter, world: World) -> None:
    w = world
    gw = await started(gateways, w, "--workers", "2")
    first = await handshake(w.https_port, w.client(), "a.example.com")
    renewed = w.pki.leaf("a.example.com", "renewed.a.example.com")
    stop = asyncio.Event()

    async def traffic() -> int:
        done = 0
        async with await Conn.open(w.https_port, ssl=w.client(), server_hostname="a.example.com") as conn:
            while not stop.is_set() or done == 0:
                await conn.send(encode_request("GET", "/", "a.example.com"))
                r = await conn.read_response()
                assert r.status == 200, r
                done += 1
        return done

    runners = [asyncio.create_task(traffic()) for _ in range(2)]
    text = w.path.read_text().replace(secret_doc("cert-a", w.leaves["a"]), secret_doc("cert-a", renewed))
    write_atomically(w.path, text)

    async def renewed_served() -> bool:
        return (await handshake(w.https_port, w.client(), "a.example.com")).names != first.names

    await until_async(renewed_served, "the renewed certificate served")
    stop.set()
    counts = await asyncio.gather(*runners, return_exceptions=True)
    failures = sum(1 for c in counts if not isinstance(c, int))
    assert failures == 0, counts
    assert all(isinstance(c, int) and c > 0 for c in counts)
    assert (await https_get(w, "a.example.com")).status == 200
    w.leaves["renewed"] = renewed
    await no_key_anywhere(w, gw)
