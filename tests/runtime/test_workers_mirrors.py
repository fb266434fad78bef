"""``/mirrors`` and ``/mirrors/<id>/diffs`` on the supervisor of ``--workers 2``: real worker
processes serve and compare; the supervisor adds their counters up and merges their rings.

The supervisor runs in the test's process (so that its source can give every mirror
``compare`` before MirrorPolicy objects exist); the workers are real processes, as in production.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mirrorgate.ir.table import MirrorCompare
from mirrorgate.mirror.views import mirror_id
from mirrorgate.serve.config import Loaded, RunConfig
from mirrorgate.serve.gwsettings import Settings
from mirrorgate.serve.source import FileSource
from mirrorgate.serve.supervisor import Supervisor
from tests.mirror.compare_support import admin_get, with_compare
from tests.runtime.conftest import WAIT, Backend, gateway_yaml, get
from tests.support.backends import free_port
from tests.support.waiting import until_async

MIRROR = "httproute/default/route/rule/0/mirror/0"
KEEP = 4


class ComparedSource(FileSource):
    """The files, with ``compare`` on every mirror."""

    def load(self) -> Loaded:
        loaded = super().load()
        return msgspec.structs.replace(loaded, table=with_compare(loaded.table, MirrorCompare(keep_mismatches=KEEP)))


@pytest.fixture
async def group(tmp_path: Path, backends: dict[str, Backend]) -> AsyncIterator[tuple[int, int]]:
    """(gateway port, admin port) of a supervisor with two workers."""
    port, admin = free_port(), free_port()
    path = tmp_path / "gw.yaml"
    path.write_text(gateway_yaml([port], backends["a"], mirror=backends["m"]))
    config = RunConfig(
        paths=(str(path),),
        bind="127.0.0.1",
        admin=("127.0.0.1", admin),
        workers=2,
        watch=False,
        settings=Settings(grace=1.0, access_log="off"),
    )
    sup = Supervisor(config, ComparedSource((str(path),), "127.0.0.1", watch=False))
    task = asyncio.create_task(sup.run())
    async with asyncio.timeout(WAIT):
        await sup.started.wait()
    yield port, admin
    sup.stop.set()
    await task


async def mirrors(admin: int) -> dict[str, Any]:
    status, raw = await admin_get(admin, "/mirrors")
    assert status == 200
    (entry,) = json.loads(raw)["mirrors"]
    return entry  # type: ignore[no-any-return]


async def test_two_workers_add_up_and_merge_their_mismatches(group: tuple[int, int]) -> None:
    port, admin = group
    for i in range(20):  # fresh connections: SO_REUSEPORT spreads them over both workers
        assert (await get(port, f"/w/{i}")).status == 200
    seen: list[dict[str, Any]] = []

    async def compared_all() -> bool:  # workers send snapshots every second: poll, do not time
        seen.append(await mirrors(admin))
        return bool(seen[-1]["compare"]["compared"] >= 20)

    await until_async(compared_all, "20 comparisons added up on /mirrors")
    entry = seen[-1]
    assert entry["mirror"] == MIRROR
    assert entry["sent"] == 20
    assert entry["completed"] == {"2xx": 20}
    summary = entry["compare"]
    assert summary["compared"] == 20
    # the echo backends answer with their own pod names: every body differs
    assert summary["mismatches"]["body"] == 20
    assert summary["matchRate"] == 0.0
    assert summary["latencyMs"]["primary"]["p50"] > 0
    status, raw = await admin_get(admin, f"/mirrors/{mirror_id(MIRROR)}/diffs")
    assert status == 200
    diffs = json.loads(raw)["diffs"]
    assert len(diffs) == KEEP
    times = [d["time"] for d in diffs]
    assert times == sorted(times, reverse=True)  # newest first across workers
    assert {d["request"]["target"] for d in diffs} <= {f"/w/{i}" for i in range(20)}
