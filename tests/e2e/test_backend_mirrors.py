"""RequestMirror inside backendRefs[].filters: a copy goes out only when that backend was chosen,
taken after the backendRef's own header filter. The golden input of the control-plane test is
served here by the real gateway, with real echo backends and a real client."""

import io
import re
from pathlib import Path
from random import Random

from mirrorgate.echo import EchoConfig, start_echo
from mirrorgate.serve.config import load_table
from mirrorgate.serve.plane import DataPlane
from tests.e2e.test_seeds import get_many
from tests.support.waiting import until

CASE = Path(__file__).resolve().parents[1] / "translate" / "testdata" / "httproute-mirror-in-backendref-filters.in.yaml"


async def test_backend_level_mirror_follows_the_chosen_backend(tmp_path: Path) -> None:
    logs = {name: io.StringIO() for name in ("foo-v1", "foo-v2", "foo-v3", "foo-v4")}
    servers = [
        await start_echo(EchoConfig(port=0, bind="127.0.0.1", name=f"{name}-1-2"), log=logs[name]) for name in logs
    ]
    text = CASE.read_text()
    for i, server in enumerate(servers):
        text, n = re.subn(rf"(\n\s*port: ){9001 + i}\b", rf"\g<1>{server.port}", text)
        assert n == 1
    path = tmp_path / "case.yaml"
    path.write_text(text)
    gateway = DataPlane(load_table([str(path)], "127.0.0.1"), port_overrides={80: 0}, rng=Random(709))
    await gateway.start()
    try:
        answers = await get_many(gateway.port(80), "mirror.example", [f"/b?i={i}" for i in range(200)])
        by_pod: dict[str, list[str]] = {"foo-v1": [], "foo-v2": []}
        for r in answers:
            assert r.status == 200
            by_pod[r.json()["pod"].rsplit("-", 2)[0]].append(r.json()["path"])

        def seen(name: str) -> list[str]:
            return re.findall(r"made to (\S+) to client", logs[name].getvalue())

        await until(lambda: gateway.mirror.stats().tasks == 0)
        sent = gateway.mirror.stats().sent
        await until(lambda: len(seen("foo-v3")) + len(seen("foo-v4")) >= sent)  # every copy is logged

        assert by_pod["foo-v1"]
        assert by_pod["foo-v2"]
        assert sorted(seen("foo-v3")) == sorted(by_pod["foo-v1"])  # every foo-v1 request, and only those
        v4 = seen("foo-v4")
        assert set(v4) <= set(by_pod["foo-v2"])  # percent 50 of the foo-v2 requests, never a foo-v1 one
        n = len(by_pod["foo-v2"])
        assert abs(len(v4) - n / 2) <= 3 * (n * 0.25) ** 0.5 + 1
    finally:
        await gateway.shutdown(2.0)
        for server in servers:
            await server.close()
