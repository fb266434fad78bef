"""Every routing table passes ``ir.invariants.check`` before it is served: a table that fails it
is a failed reload (the old table keeps serving, ``lastReloadError`` says why) or, at startup, a
startup error. The bad tables here are real violations (a server listed twice), not a stubbed check."""

import asyncio
from pathlib import Path

import msgspec
import pytest

from mirrorgate.serve.admin import status_of
from mirrorgate.serve.apply import load_checked
from mirrorgate.serve.config import ConfigInvalid, Loaded, RunConfig
from mirrorgate.serve.gwsettings import SettingsState
from mirrorgate.serve.plane import DataPlane
from mirrorgate.serve.single import plane_reloader, serve
from mirrorgate.serve.source import FileSource, Trigger
from mirrorgate.serve.supervisor import Supervisor
from tests.runtime.conftest import Backend, gateway_yaml, get, pod_of


class Corrupting:
    """A ``ConfigSource`` over files whose loads list every server twice while ``corrupt`` is set:
    a table that breaks the invariant "one server per (address, port)"."""

    def __init__(self, path: Path, *, corrupt: bool = False) -> None:
        self.files = FileSource([str(path)], "127.0.0.1", watch=False)
        self.corrupt = corrupt

    def load(self) -> Loaded:
        loaded = self.files.load()
        if not self.corrupt:
            return loaded
        table = msgspec.structs.replace(loaded.table, servers=loaded.table.servers * 2)
        return msgspec.structs.replace(loaded, table=table)

    async def watch(self, changed: Trigger, stop: asyncio.Event) -> None:
        await self.files.watch(changed, stop)


async def test_a_table_breaking_an_invariant_is_a_failed_reload(tmp_path: Path, backends: dict[str, Backend]) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([80], backends["a"]))
    source = Corrupting(path)
    loaded = load_checked(source)
    plane = DataPlane(loaded.table, port_overrides={80: 0})
    await plane.start()
    try:
        config = RunConfig(paths=(str(path),))
        reloader = plane_reloader(plane, source, loaded, config, SettingsState(loaded.settings(config)))
        status = status_of(reloader, lambda: reloader.current.loaded.status)
        path.write_text(gateway_yaml([80], backends["b"]))  # a new table, served twice over
        source.corrupt = True
        assert not await reloader.reload()
        assert plane.table == loaded.table
        assert pod_of(await get(plane.port(80))) == backends["a"].pod
        error = status()["lastReloadError"]
        assert error is not None
        assert error["errors"] == [
            "routing table invariant violated (a translator bug): two servers share one (address, port)"
        ]
        source.corrupt = False
        assert await reloader.reload()
        assert status()["lastReloadError"] is None
        assert pod_of(await get(plane.port(80))) == backends["b"].pod
    finally:
        await plane.shutdown(0)


async def test_a_table_breaking_an_invariant_at_startup_is_a_startup_error(
    tmp_path: Path, backends: dict[str, Backend]
) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([80], backends["a"]))
    config = RunConfig(paths=(str(path),), bind="127.0.0.1", port_overrides={80: 0}, admin=None, watch=False)
    with pytest.raises(ConfigInvalid, match="two servers share one"):
        await serve(config, asyncio.Event(), source=Corrupting(path, corrupt=True))
    with pytest.raises(ConfigInvalid, match="two servers share one"):
        Supervisor(msgspec.structs.replace(config, workers=2), Corrupting(path, corrupt=True))
