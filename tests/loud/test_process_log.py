"""What a real ``mirrorgate run`` says: every problem at warning level, at start and on reload;
``--log-level`` in every process; two quick SIGINTs stop it cleanly (no traceback)."""

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime.conftest import Backend, Starter, gateway_yaml, get, write_atomically
from tests.support.backends import free_port


def _broken(port: int, tls_port: int, backend: Backend) -> str:
    """A route whose primary Service is missing, a mirror Service with no endpoints, an HTTPS listener."""
    text = gateway_yaml([port], backend, mirror=None)
    text = text.replace("name: primary, port: 8080", "name: missing, port: 8080")
    text = text.replace(
        f"listeners: [{{name: l{port}, port: {port}, protocol: HTTP}}]",
        f"listeners: [{{name: l{port}, port: {port}, protocol: HTTP}}, "
        f"{{name: tls, port: {tls_port}, protocol: HTTPS}}]",
    )
    return text + (
        "    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}}}]\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: shadow, namespace: default}\n"
        "spec: {ports: [{port: 80}]}\n"
    )


PROBLEMS = [
    r"warning: Gateway default/gw listener tls: ResolvedRefs=False \(InvalidCertificateRef\): "
    r"HTTPS listener has no tls\.certificateRefs\.",
    r"warning: HTTPRoute default/route \(parent Gateway default/gw\): ResolvedRefs=False \(BackendNotFound\): "
    r"Service default/missing not found\.",
    r"warning: Service default/shadow:80: no endpoints \(used by httproute/default/route\): .*"
    r"--endpoints SERVICE\[\.NS\]\[:PORT\]=ADDR:PORT$",
]


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_problems_are_logged_at_start_and_on_reload(
    tmp_path: Path, gateways: Starter, backends: dict[str, Backend], workers: str
) -> None:
    port, tls = free_port(), free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"]))
    gw = await gateways(path, "--workers", workers)
    await gw.wait_line(r"serving 1 listener\(s\) on 1 socket\(s\), 1 route attachment\(s\)$")
    await gw.wait_line(rf"  listener gateway/default/gw/listener/l{port}: 127\.0\.0\.1:{port} HTTP, hostname \*, ")
    mark = len(gw.lines)
    write_atomically(path, _broken(port, tls, backends["a"]))
    await gw.wait_line(r"now serving 1 listener\(s\) on 1 socket\(s\), 1 route attachment\(s\) \(was 1 ", after=mark)
    for pattern in PROBLEMS:
        await gw.wait_line(pattern, after=mark)
    assert await gw.stop() == 0
    assert sum("no endpoints" in line for line in gw.lines) == 1  # the supervisor says it, not each worker
    assert not any("Traceback" in line for line in gw.lines)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_log_level_warning_reaches_every_process(
    tmp_path: Path, gateways: Starter, backends: dict[str, Backend], workers: str
) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(_broken(free_port(), free_port(), backends["a"]))
    gw = await gateways(path, "--workers", workers, "--log-level", "warning", "--no-watch")
    await gw.wait_line(PROBLEMS[-1])
    assert await gw.stop() == 0
    assert gw.lines
    assert all(" warning: " in line for line in gw.lines), gw.lines


async def test_log_level_debug_shows_debug_lines(
    tmp_path: Path, gateways: Starter, backends: dict[str, Backend]
) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([free_port()], backends["a"]))
    gw = await gateways(path, "--log-level", "debug")
    await gw.wait_line(r"reloaded: .* \(unchanged\)")  # the quiet reload when watching starts: debug level
    assert await gw.stop() == 0


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_two_quick_sigints_stop_cleanly(tmp_path: Path, backends: dict[str, Backend], workers: str) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([free_port()], backends["a"]))
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "mirrorgate", "run", "-f", str(path), "--bind", "127.0.0.1"),
        *("--admin", "127.0.0.1:0", "--workers", workers),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group, as a terminal's Ctrl-C reaches every process of it
    )
    assert proc.stderr is not None
    async with asyncio.timeout(20):
        while b"serving 1 listener" not in await proc.stderr.readline():
            pass
        os.killpg(proc.pid, signal.SIGINT)
        await asyncio.sleep(0.01)
        os.killpg(proc.pid, signal.SIGINT)
        err = (await proc.stderr.read()).decode()
        assert await proc.wait() == 0, err
    assert "Traceback" not in err
    assert "Event loop is closed" not in err


class _Refusing:
    """A mirror backend nobody listens on: every mirror connect is refused."""

    def __init__(self) -> None:
        self.port = free_port()


@pytest.mark.parametrize("level", ["debug", "info"])
async def test_mirror_drops_at_debug_and_the_breaker_at_warning(
    tmp_path: Path, gateways: Starter, backends: dict[str, Backend], level: str
) -> None:
    port = free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"], mirror=_Refusing()))  # type: ignore[arg-type]
    gw = await gateways(path, "--log-level", level, "--mirror-limit", "breaker-failures=3")
    await gw.wait_line(rf"listening on 127\.0\.0\.1:{port}")
    for i in range(6):
        assert (await get(port, f"/d/{i}")).status == 200  # the primary never notices
    await gw.wait_line(r"warning: mirror backend .*: breaker open after 3 consecutive failures \(last: connect_error\)")
    drops = [line for line in gw.lines if re.search(r"mirror to .* dropped: connect_error", line)]
    assert bool(drops) == (level == "debug"), gw.lines
    assert await gw.stop() == 0
    assert not any("Traceback" in line for line in gw.lines)
