"""``run_echo`` as a real subprocess: it logs echo-basic's line on stderr and exits 0 on a signal."""

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.echo.conftest import echo_request
from tests.support.backends import free_port
from tests.support.client import WAIT, Conn

REPO = Path(__file__).resolve().parents[2]
STARTUP_WAIT = 30.0  # seconds; generous for a cold interpreter, never asserted on


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_echo_subprocess_logs_and_exits_cleanly(signum: signal.Signals) -> None:
    port = free_port()
    code = (
        "from mirrorgate.echo import EchoConfig, run_echo; "
        f"run_echo(EchoConfig(port={port}, bind='127.0.0.1', name='infra-backend-v1-abc-def'))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "NAMESPACE": "gateway-conformance-infra"}
    env.pop("POD_NAME", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, cwd=REPO, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    try:
        started = await asyncio.wait_for(proc.stderr.readline(), STARTUP_WAIT)
        assert started.decode() == f"Starting server, listening on port {port} (http)\n"

        target = "/mirror?gateway-api-conformance-request-id=7b1f"
        async with await Conn.open(port) as conn:
            await conn.send(echo_request(target, headers=(("Host", "httpbin-shadow:8000"),)))
            response = await conn.read_response()
        logged = await asyncio.wait_for(proc.stderr.readline(), WAIT)

        assert response.json()["pod"] == "infra-backend-v1-abc-def"
        assert response.json()["namespace"] == "gateway-conformance-infra"
        prefix = f"Echoing back request made to {target} to client (127.0.0.1:{conn.local_port})"
        assert logged.decode().startswith(prefix + " body_length=0 body_sha256=")  # echo-basic's line, then ours
        assert logged.decode().endswith(" host=httpbin-shadow:8000\n")  # the Host a mirror received

        proc.send_signal(signum)
        assert await asyncio.wait_for(proc.wait(), WAIT) == 0
        assert await asyncio.wait_for(proc.stderr.read(), WAIT) == b""  # nothing else, no traceback
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
