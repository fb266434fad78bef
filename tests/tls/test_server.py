import asyncio
import ssl
import warnings

import pytest
import uvloop

from mirrorgate.tls.names import listener_matches, san_matches
from mirrorgate.tls.server import TLS12_CIPHERS, ListenerTls, TlsPort
from mirrorgate.tls.x509 import parse_certificate
from tests.support.certs import Pki, TlsServer, handshake, memory_handshake


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture(scope="module")
def listeners(pki: Pki) -> list[ListenerTls]:
    """Port 443 of a Gateway: two exact hostnames, two wildcards, a catch-all; ``a`` has two certificates."""
    return [
        ListenerTls("a", "a.example.com", (pki.leaf("other.example.com").pair, pki.leaf("a.example.com").pair)),
        ListenerTls("b", "b.example.com", (pki.leaf("b.example.com").pair,)),
        ListenerTls("wild", "*.example.com", (pki.leaf("*.example.com").pair,)),
        ListenerTls("deep", "*.deep.example.com", (pki.leaf("*.deep.example.com").pair,)),
        ListenerTls("any", None, (pki.leaf("default.test").pair,)),
    ]


@pytest.mark.parametrize(
    ("sni", "listener", "names"),
    [
        ("a.example.com", "a", ["a.example.com"]),
        ("A.Example.COM", "a", ["a.example.com"]),
        ("b.example.com", "b", ["b.example.com"]),
        ("c.example.com", "wild", ["*.example.com"]),
        ("x.y.example.com", "wild", ["*.example.com"]),
        ("x.deep.example.com", "deep", ["*.deep.example.com"]),
        ("unknown.test", "any", ["default.test"]),
        (None, "any", ["default.test"]),
    ],
)
async def test_sni_picks_the_most_specific_listener_and_its_certificate(
    pki: Pki, listeners: list[ListenerTls], sni: str | None, listener: str, names: list[str]
) -> None:
    async with TlsServer(TlsPort(listeners).context) as server:
        seen = await handshake(server.port, pki.client_context(), sni)
        assert seen.names == names
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=unchecked(pki), server_hostname=sni
        )
        writer.write(b"which\n")
        assert await reader.readline() == f"{listener}\n".encode()
        writer.close()


def unchecked(pki: Pki) -> ssl.SSLContext:
    context = pki.client_context()
    context.check_hostname = False
    return context


async def test_a_listener_without_a_matching_certificate_serves_its_first(pki: Pki) -> None:
    port = TlsPort([ListenerTls("a", "a.example.com", (pki.leaf("x.example.com").pair,))])
    async with TlsServer(port.context) as server:
        assert (await handshake(server.port, pki.client_context(), "a.example.com")).names == ["x.example.com"]


async def test_without_a_catch_all_an_unknown_name_gets_the_first_listener(pki: Pki) -> None:
    first = ListenerTls("one", "one.test", (pki.leaf("one.test").pair,))
    second = ListenerTls("two", "two.test", (pki.leaf("two.test").pair,))
    async with TlsServer(TlsPort([first, second]).context) as server:
        assert (await handshake(server.port, pki.client_context(), "three.test")).names == ["one.test"]
        assert (await handshake(server.port, pki.client_context(), None)).names == ["one.test"]


async def test_an_unknown_name_can_be_refused(pki: Pki) -> None:
    port = TlsPort([ListenerTls("one", "one.test", (pki.leaf("one.test").pair,))], reject_unknown_sni=True)
    async with TlsServer(port.context) as server:
        assert (await handshake(server.port, pki.client_context(), "one.test")).names == ["one.test"]
        with pytest.raises((ssl.SSLError, ConnectionError)):  # asyncio's server drops the alert and resets
            await handshake(server.port, pki.client_context(), "two.test")
    assert "CALLBACK_FAILED" in str(memory_handshake(port.context, pki.client_context(), "two.test"))


@pytest.mark.parametrize(
    ("cipher", "key_type"), [("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDSA"), ("ECDHE-RSA-AES128-GCM-SHA256", "RSA")]
)
async def test_rsa_and_ecdsa_share_a_listener_and_the_client_picks(pki: Pki, cipher: str, key_type: str) -> None:
    pairs = (pki.leaf("dual.test", key_type="rsa").pair, pki.leaf("dual.test", key_type="ecdsa").pair)
    async with TlsServer(TlsPort([ListenerTls("dual", "dual.test", pairs)]).context) as server:
        client = pki.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
        client.set_ciphers(cipher)
        seen = await handshake(server.port, client, "dual.test", check_hostname=True)
        der = seen.ssl_object.getpeercert(binary_form=True)
        assert der is not None
        assert parse_certificate(der).key_type == key_type


async def test_tls_1_3_and_1_2_with_alpn_http_1_1(pki: Pki, listeners: list[ListenerTls]) -> None:
    async with TlsServer(TlsPort(listeners).context) as server:
        client = pki.client_context()
        client.set_alpn_protocols(["h2", "http/1.1"])
        seen = await handshake(server.port, client, "a.example.com")
        assert seen.version == "TLSv1.3"
        assert seen.ssl_object.selected_alpn_protocol() == "http/1.1"
        seen = await handshake(server.port, pki.client_context(maximum_version=ssl.TLSVersion.TLSv1_2), "b.example.com")
        assert seen.version == "TLSv1.2"
        assert seen.cipher in TLS12_CIPHERS.split(":")


async def test_tls_1_1_is_refused(pki: Pki, listeners: list[ListenerTls]) -> None:
    async with TlsServer(TlsPort(listeners).context) as server:
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        old.set_ciphers("ALL:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await handshake(server.port, old, "a.example.com")
    assert "UNSUPPORTED_PROTOCOL" in str(memory_handshake(TlsPort(listeners).context, old, "a.example.com"))


@pytest.mark.parametrize("cipher", ["AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA256"])
async def test_tls_1_2_offers_only_ecdhe_with_aead(pki: Pki, listeners: list[ListenerTls], cipher: str) -> None:
    async with TlsServer(TlsPort(listeners).context) as server:
        client = pki.client_context(maximum_version=ssl.TLSVersion.TLSv1_2)
        client.set_ciphers(cipher)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await handshake(server.port, client, "a.example.com")
    assert "NO_SHARED_CIPHER" in str(memory_handshake(TlsPort(listeners).context, client, "a.example.com"))


def test_every_context_refuses_renegotiation_and_compression(listeners: list[ListenerTls]) -> None:
    port = TlsPort(listeners)
    contexts = [port.context, *(c for lst in port.table.exact.values() for c in lst.contexts)]
    for context in contexts:
        assert context.options & ssl.OP_NO_RENEGOTIATION
        assert context.options & ssl.OP_NO_COMPRESSION
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_an_in_memory_handshake_succeeds(pki: Pki, listeners: list[ListenerTls]) -> None:
    assert memory_handshake(TlsPort(listeners).context, pki.client_context(), "a.example.com") is None


async def test_reload_keeps_open_connections_and_serves_new_certificates(pki: Pki) -> None:
    port = TlsPort([ListenerTls("old", "site.test", (pki.leaf("site.test", "old.test").pair,))])
    async with TlsServer(port.context) as server:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=pki.client_context(), server_hostname="site.test"
        )
        port.reload([ListenerTls("new", "site.test", (pki.leaf("site.test", "new.test").pair,))])
        writer.write(b"which\n")
        assert await reader.readline() == b"old\n"
        assert (await handshake(server.port, pki.client_context(), "site.test")).names == ["site.test", "new.test"]
        writer.write(b"which\n")
        assert await reader.readline() == b"old\n"
        writer.close()


def test_a_listener_needs_a_certificate() -> None:
    with pytest.raises(ValueError, match="no certificate"):
        TlsPort([ListenerTls("empty", None, ())])
    with pytest.raises(ValueError, match="at least one listener"):
        TlsPort([])


@pytest.mark.parametrize(
    ("chosen", "host", "misdirected"),
    [
        ("a", "a.example.com", False),
        ("a", "A.EXAMPLE.COM.", False),
        ("a", "b.example.com", True),
        ("wild", "c.example.com", False),
        ("wild", "a.example.com", True),
        ("any", "c.example.com", True),
        ("any", "nothing.test", False),
    ],
)
def test_a_host_selecting_another_listener_is_misdirected(
    listeners: list[ListenerTls], chosen: str, host: str, misdirected: bool
) -> None:
    assert TlsPort(listeners).misdirected(chosen, host) is misdirected


def test_a_host_no_listener_matches_is_not_misdirected(pki: Pki) -> None:
    port = TlsPort([ListenerTls("one", "one.test", (pki.leaf("one.test").pair,))])
    assert not port.misdirected("one", "two.test")


def test_uvloop_chooses_by_sni_too(pki: Pki, listeners: list[ListenerTls]) -> None:
    async def main() -> tuple[list[str], bytes]:
        async with TlsServer(TlsPort(listeners).context) as server:
            names = (await handshake(server.port, pki.client_context(), "b.example.com")).names
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, ssl=pki.client_context(), server_hostname="c.example.com"
            )
            writer.write(b"which\n")
            chosen = await reader.readline()
            writer.close()
            return names, chosen

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == (["b.example.com"], b"wild\n")
    finally:
        loop.close()


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("a.test", "a.test", True),
        ("*.test", "a.test", True),
        ("*.test", "a.b.test", False),
        ("*.test", "test", False),
        ("*.test", ".test", False),
    ],
)
def test_san_wildcards_cover_one_label(pattern: str, name: str, expected: bool) -> None:
    assert san_matches(pattern, name) is expected


@pytest.mark.parametrize(
    ("hostname", "name", "expected"),
    [("*.test", "a.b.test", True), ("*.test", "test", False), ("*.test", ".test", False), ("a.test", "b.test", False)],
)
def test_listener_wildcards_cover_one_label_or_more(hostname: str, name: str, expected: bool) -> None:
    assert listener_matches(hostname, name) is expected
