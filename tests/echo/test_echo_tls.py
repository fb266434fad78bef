"""``mirrorgate echo --tls-cert PEM --tls-key PEM``: the echo backend over HTTPS (same answers and
log lines as over HTTP), and unusable files as one error line and exit status 1."""

import asyncio
import io
import subprocess
import sys
from pathlib import Path

import pytest

from mirrorgate.echo import EchoConfig, start_echo
from tests.support.certs import Pki, mismatched
from tests.support.client import Conn, encode_request


def write_pair(tmp_path: Path, pki: Pki, *, matching: bool = True) -> tuple[str, str]:
    leaf = pki.leaf("staging.localtest") if matching else mismatched(pki, "staging.localtest")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(leaf.crt)
    key.write_bytes(leaf.key)
    return str(cert), str(key)


async def test_echo_serves_https_with_the_same_answers_and_log(tmp_path: Path) -> None:
    pki = Pki()
    cert, key = write_pair(tmp_path, pki)
    log = io.StringIO()
    config = EchoConfig(port=0, bind="127.0.0.1", name="staging-1-2", tls_cert=cert, tls_key=key)
    async with await start_echo(config, log=log) as server:
        async with await Conn.open(server.port, ssl=pki.client_context(), server_hostname="staging.localtest") as conn:
            for _ in range(2):  # keep-alive works over TLS too
                await conn.send(encode_request("GET", "/x?y=1", "shop.example"))
                r = await conn.read_response()
                assert r.status == 200
                assert r.json()["pod"] == "staging-1-2"
                assert r.json()["path"] == "/x?y=1"
    assert f"listening on port {server.port} (https)" in log.getvalue()
    assert "host=shop.example" in log.getvalue()


async def test_plain_client_gets_no_answer_from_a_tls_echo(tmp_path: Path) -> None:
    cert, key = write_pair(tmp_path, Pki())
    config = EchoConfig(port=0, bind="127.0.0.1", tls_cert=cert, tls_key=key)
    async with await start_echo(config, log=io.StringIO()) as server:
        async with await Conn.open(server.port) as conn:
            await conn.send(encode_request())
            assert await asyncio.wait_for(conn.read_until_closed(), 10) == b""


def run_echo_cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mirrorgate", "echo", "--port", "0", "--bind", "127.0.0.1", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("case", ["missing-cert", "missing-key", "mismatch", "not-pem", "cert-only"])
def test_bad_tls_files_are_one_error_line_and_exit_1(tmp_path: Path, case: str) -> None:
    pki = Pki()
    cert, key = write_pair(tmp_path, pki, matching=case != "mismatch")
    if case == "not-pem":
        Path(cert).write_text("not a certificate\n")
    args = {
        "missing-cert": ["--tls-cert", str(tmp_path / "nope.crt"), "--tls-key", key],
        "missing-key": ["--tls-cert", cert, "--tls-key", str(tmp_path / "nope.key")],
        "cert-only": ["--tls-cert", cert],
    }.get(case, ["--tls-cert", cert, "--tls-key", key])
    done = run_echo_cli(*args)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("mirrorgate echo: ")
    assert "PRIVATE KEY" not in done.stderr
    if case.startswith("missing"):
        assert "nope." in lines[0]
