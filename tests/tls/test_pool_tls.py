"""The upstream pool's TLS keys: plain and TLS connections to one address never share a
connection, a released TLS connection leaves its session to the next dial (resumed), and a
certificate that does not verify is a ``BackendTlsError`` with the pool's counters unchanged."""

import asyncio

import pytest

from mirrorgate.ir.table import BackendTLS, UpstreamAddress
from mirrorgate.tls.client import BackendTlsError
from mirrorgate.upstream.pool import Pool
from mirrorgate.upstream.tls import Key, keys_for
from tests.support.certs import Pki

from .gateway import TlsBackend, server_context


def tls_key(port: int, pki: Pki, hostname: str = "backend.internal") -> Key:
    tls = BackendTLS(policy="backendtlspolicy/default/p", hostname=hostname, ca_digest="sha256:ca")
    (key,) = keys_for((UpstreamAddress(address="127.0.0.1", port=port),), tls, None, {"sha256:ca": pki.ca_pem})
    return key


async def test_a_released_tls_connection_leaves_its_session_to_the_next_dial() -> None:
    pki = Pki()
    async with TlsBackend(server_context(pki.leaf("backend.internal"))) as up:
        pool = Pool()
        key = tls_key(up.port, pki)
        assert key != ("127.0.0.1", up.port)
        first, reused = await pool.acquire(key)
        assert not reused
        await asyncio.sleep(0.05)  # TLS 1.3: the session ticket follows the handshake
        pool.release(first, True)
        again, reused = await pool.acquire(key)
        assert reused
        assert again is first
        second, reused = await pool.acquire(key)
        assert not reused
        assert second.transport is not None
        assert second.transport.get_extra_info("ssl_object").session_reused
        pool.release(again, False)
        pool.release(second, False)
        pool.close()


async def test_a_certificate_that_does_not_verify_is_a_backend_tls_error() -> None:
    pki, other = Pki(), Pki()
    async with TlsBackend(server_context(pki.leaf("backend.internal"))) as up:
        pool = Pool()
        for key in (tls_key(up.port, other), tls_key(up.port, pki, "other.internal")):
            with pytest.raises(BackendTlsError) as caught:
                await pool.acquire(key)
            assert caught.value.status == 503
        assert repr(pool) == "<Pool in_use=0 idle=0 waiting=0>"
        pool.close()
    assert up.heads == []
