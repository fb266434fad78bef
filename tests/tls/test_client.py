import asyncio
import ssl
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from mirrorgate.tls.client import (
    BackendTls,
    BackendTlsError,
    ClientTls,
    ClientTlsCache,
    InvalidCaBundle,
    SubjectAltName,
)
from mirrorgate.tls.server import ListenerTls, TlsPort
from tests.support.certs import Leaf, Pki, TlsServer

SPIFFE = "spiffe://cluster.local/ns/shop/sa/backend"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def backend_port(leaf: Leaf) -> TlsPort:
    return TlsPort([ListenerTls("backend", None, (leaf.pair,))])


async def exchange(port: int, tls: ClientTls) -> ssl.SSLObject:
    """Connect as the pool would, verify, send a line and read the answer, remember the session, close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, **tls.connect_kwargs())
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        tls.verify(ssl_object)
        writer.write(b"ping\n")
        assert await reader.readline() == b"backend\n"
        tls.remember(ssl_object)
        return ssl_object  # type: ignore[no-any-return]
    finally:
        writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def with_backend(leaf: Leaf, client: Callable[[int], Awaitable[object]]) -> None:
    async with TlsServer(backend_port(leaf).context) as server:
        await client(server.port)


async def test_a_backend_with_the_policy_hostname_verifies(pki: Pki) -> None:
    tls = ClientTls(BackendTls("backend.test", pki.ca_pem))
    await with_backend(pki.leaf("backend.test"), lambda port: exchange(port, tls))


async def test_a_certificate_from_another_ca_is_refused(pki: Pki) -> None:
    tls = ClientTls(BackendTls("backend.test", Pki().ca_pem))
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        await with_backend(pki.leaf("backend.test"), lambda port: exchange(port, tls))


async def test_a_certificate_for_another_hostname_is_refused(pki: Pki) -> None:
    tls = ClientTls(BackendTls("other.test", pki.ca_pem))
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        await with_backend(pki.leaf("backend.test"), lambda port: exchange(port, tls))


@pytest.mark.parametrize(
    "wanted",
    [
        (SubjectAltName("URI", SPIFFE),),
        (SubjectAltName("Hostname", "Backend.Test"),),
        (SubjectAltName("URI", "spiffe://elsewhere"), SubjectAltName("Hostname", "x.wild.test")),
    ],
)
async def test_subject_alt_names_replace_the_hostname_check(pki: Pki, wanted: tuple[SubjectAltName, ...]) -> None:
    tls = ClientTls(BackendTls("sni-only.test", pki.ca_pem, wanted))
    await with_backend(pki.uri_leaf(SPIFFE, "backend.test", "*.wild.test"), lambda port: exchange(port, tls))


@pytest.mark.parametrize(
    "wanted", [(SubjectAltName("URI", SPIFFE + "/other"),), (SubjectAltName("Hostname", "a.b.wild.test"),)]
)
async def test_no_matching_subject_alt_name_is_a_typed_error(pki: Pki, wanted: tuple[SubjectAltName, ...]) -> None:
    tls = ClientTls(BackendTls("backend.test", pki.ca_pem, wanted))
    with pytest.raises(BackendTlsError, match="matches none of the subjectAltNames") as caught:
        await with_backend(pki.uri_leaf(SPIFFE, "backend.test", "*.wild.test"), lambda port: exchange(port, tls))
    assert caught.value.status == 503


async def test_the_sni_is_the_policy_hostname(pki: Pki) -> None:
    port = TlsPort(
        [
            ListenerTls("backend", "backend.test", (pki.leaf("backend.test").pair,)),
            ListenerTls("other", "other.test", (pki.leaf("other.test").pair,)),
        ]
    )
    tls = ClientTls(BackendTls("backend.test", pki.ca_pem))
    async with TlsServer(port.context) as server:
        await exchange(server.port, tls)


async def session_reused_on_second_connection(pki: Pki, version: ssl.TLSVersion) -> tuple[bool, bool]:
    tls = ClientTls(BackendTls("backend.test", pki.ca_pem))
    tls.context.maximum_version = version
    async with TlsServer(backend_port(pki.leaf("backend.test")).context) as server:
        first = await exchange(server.port, tls)
        second = await exchange(server.port, tls)
    return first.session_reused, second.session_reused


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
async def test_a_second_connection_resumes_the_session(pki: Pki, version: ssl.TLSVersion) -> None:
    assert await session_reused_on_second_connection(pki, version) == (False, True)


def test_a_second_connection_resumes_the_session_under_uvloop(pki: Pki) -> None:
    loop = uvloop.new_event_loop()
    try:
        reused = loop.run_until_complete(session_reused_on_second_connection(pki, ssl.TLSVersion.TLSv1_3))
    finally:
        loop.close()
    assert reused == (False, True)


def test_system_cas_and_a_broken_bundle(pki: Pki) -> None:
    system = ClientTls(BackendTls("example.com"))
    assert system.context.verify_mode == ssl.CERT_REQUIRED
    assert system.context.check_hostname
    assert system.context.minimum_version == ssl.TLSVersion.TLSv1_2
    with pytest.raises(InvalidCaBundle, match=r"ca.crt: no PEM certificate"):
        ClientTls(BackendTls("x", "not a certificate"))
    with pytest.raises(InvalidCaBundle, match=r"ca.crt: cannot be loaded"):
        ClientTls(BackendTls("x", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))


def test_the_cache_shares_contexts_by_settings_and_is_bounded(pki: Pki) -> None:
    cache = ClientTlsCache(size=2)
    one = cache.get(BackendTls("a.test", pki.ca_pem))
    assert cache.get(BackendTls("a.test", pki.ca_pem)) is one
    cache.get(BackendTls("b.test", pki.ca_pem))
    cache.get(BackendTls("a.test", pki.ca_pem))
    cache.get(BackendTls("c.test", pki.ca_pem))
    assert list(s.hostname for s in cache.entries) == ["a.test", "c.test"]
