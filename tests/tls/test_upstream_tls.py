"""Backends and mirrors under a BackendTLSPolicy, and ExternalName targets, through the DataPlane:
a certificate that verifies serves (sessions reused over keep-alive), a wrong CA or hostname
never reaches the backend (503 for a primary, a mirror dropped ``tls``), a name that does not
resolve is a 503 / a drop ``dns``."""

from mirrorgate.ir.table import BackendTLS, ExternalName, RoutingTable, SubjectAltName, TrustBundle
from mirrorgate.mirror.metrics import Stats
from tests.support.certs import Pki
from tests.support.client import Conn, encode_request
from tests.support.waiting import until

from .gateway import (
    TlsBackend,
    action,
    backend,
    certificate,
    https_table,
    listener,
    mirror,
    server_context,
    serving,
    trust,
)

HOST = "app.example.com"


def table_to(pki: Pki, act_backend_port: int, bundles: tuple[TrustBundle, ...], **kw: object) -> RoutingTable:
    cert = certificate(pki.leaf(HOST))
    b = kw.get("primary") or backend(act_backend_port)
    mirrors = kw.get("mirrors", ())
    act = action(b, mirrors)  # type: ignore[arg-type]
    return https_table((listener("app", HOST, (cert,), act),), (cert,), bundles)


def policy(hostname: str, bundle: TrustBundle | None, *sans: SubjectAltName) -> BackendTLS:
    return BackendTLS(
        policy="backendtlspolicy/default/p",
        hostname=hostname,
        ca_digest=bundle.digest if bundle is not None else None,
        subject_alt_names=sans,
    )


async def get_all(port: int, pki: Pki, n: int) -> list[tuple[int, bytes]]:
    conn = await Conn.open(port, ssl=pki.client_context(), server_hostname=HOST)
    out = []
    for _ in range(n):
        await conn.send(encode_request("GET", "/", HOST))
        response = await conn.read_response()
        out.append((response.status, response.body))
    conn.writer.close()
    return out


async def test_primary_over_tls_verifies_and_reuses_its_connection() -> None:
    pki, upstream_pki = Pki(), Pki()
    bundle = trust(upstream_pki)
    async with TlsBackend(server_context(upstream_pki.leaf("backend.internal")), "tls-backend") as up:
        tls = policy("backend.internal", bundle)
        table = table_to(pki, up.port, (bundle,), primary=backend(up.port, tls))
        async with serving(table) as gw:
            assert await get_all(gw.port(443), pki, 3) == [(200, b"tls-backend")] * 3
    assert up.handshakes == 1
    assert up.header(0, b"x-forwarded-proto") == b"https"
    assert up.header(0, b"host") == HOST.encode()


async def test_subject_alt_names_replace_the_hostname_check() -> None:
    pki, upstream_pki = Pki(), Pki()
    bundle = trust(upstream_pki)
    async with TlsBackend(server_context(upstream_pki.uri_leaf("spiffe://cluster/ns/b", "b.internal"))) as up:
        good = policy("anything.internal", bundle, SubjectAltName(type="URI", value="spiffe://cluster/ns/b"))
        async with serving(table_to(pki, up.port, (bundle,), primary=backend(up.port, good))) as gw:
            assert (await get_all(gw.port(443), pki, 1))[0][0] == 200
        bad = policy("b.internal", bundle, SubjectAltName(type="Hostname", value="other.internal"))
        async with serving(table_to(pki, up.port, (bundle,), primary=backend(up.port, bad))) as gw:
            assert (await get_all(gw.port(443), pki, 1))[0][0] == 503
    assert len(up.heads) == 1


async def test_wrong_ca_or_hostname_never_reaches_the_backend() -> None:
    pki, upstream_pki, other_pki = Pki(), Pki(), Pki()
    right, wrong = trust(upstream_pki), trust(other_pki)
    async with TlsBackend(server_context(upstream_pki.leaf("backend.internal"))) as up:
        for tls in (policy("backend.internal", wrong), policy("other.internal", right)):
            table = table_to(pki, up.port, (right, wrong), primary=backend(up.port, tls))
            async with serving(table) as gw:
                assert [s for s, _ in await get_all(gw.port(443), pki, 2)] == [503, 503]
    assert up.heads == []


def ended(stats: Stats) -> int:
    return sum(stats.completed.values()) + sum(stats.dropped.values())


async def mirrored(table: RoutingTable, pki: Pki, reason: str | None) -> None:
    async with serving(table) as gw:
        assert (await get_all(gw.port(443), pki, 2))[0][0] == 200
        await until(lambda: ended(gw.mirror.stats()) == 2 and not gw.mirror.tasks, "mirrors done")
        stats = gw.mirror.stats()
        if reason is None:
            assert stats.completed == {"2xx": 2}
        else:
            assert stats.dropped.get(reason) == 2, stats.dropped


async def test_mirror_over_tls_completes_or_is_dropped_tls() -> None:
    pki, upstream_pki, other_pki = Pki(), Pki(), Pki()
    right, wrong = trust(upstream_pki), trust(other_pki)
    async with (
        TlsBackend(None, "primary") as primary,
        TlsBackend(server_context(upstream_pki.leaf("mirror.internal")), "mirror") as shadow,
    ):
        ok = mirror(shadow.port, policy("mirror.internal", right))
        await mirrored(table_to(pki, primary.port, (right,), mirrors=(ok,)), pki, None)
        assert len(shadow.heads) == 2
        for tls in (policy("mirror.internal", wrong), policy("other.internal", right)):
            bad = mirror(shadow.port, tls)
            await mirrored(table_to(pki, primary.port, (right, wrong), mirrors=(bad,)), pki, "tls")
        assert len(shadow.heads) == 2
    assert shadow.header(0, b"x-forwarded-proto") == b"https"


async def test_external_name_mirror_over_tls_resolves_localhost() -> None:
    pki, upstream_pki = Pki(), Pki()
    bundle = trust(upstream_pki)
    async with (
        TlsBackend(None, "primary") as primary,
        TlsBackend(server_context(upstream_pki.leaf("mirror.internal")), "mirror") as shadow,
    ):
        ext = mirror(0, policy("mirror.internal", bundle), ExternalName(host="localhost", port=shadow.port))
        await mirrored(table_to(pki, primary.port, (bundle,), mirrors=(ext,)), pki, None)
        assert len(shadow.heads) == 2


async def test_external_name_that_does_not_resolve() -> None:
    pki = Pki()
    missing = ExternalName(host="no-such-name.invalid", port=80)
    async with TlsBackend(None, "primary") as primary:
        table = table_to(pki, primary.port, (), primary=backend(0, external=missing))
        async with serving(table) as gw:
            assert [s for s, _ in await get_all(gw.port(443), pki, 1)] == [503]
        await mirrored(table_to(pki, primary.port, (), mirrors=(mirror(0, external=missing),)), pki, "dns")


async def test_external_name_primary_keeps_the_client_host() -> None:
    pki = Pki()
    async with TlsBackend(None, "external") as up:
        table = table_to(pki, up.port, (), primary=backend(0, external=ExternalName(host="localhost", port=up.port)))
        async with serving(table) as gw:
            assert await get_all(gw.port(443), pki, 2) == [(200, b"external")] * 2
    assert up.header(0, b"host") == HOST.encode()
