"""The pieces of reload and supervision that need no process: path filtering, the worker tag on
access-log lines, merging workers' metrics, the reloader's bookkeeping."""

import asyncio
import json
import logging
from pathlib import Path

import pytest
import watchfiles
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from mirrorgate.ir.table import RoutingTable, Server
from mirrorgate.serve.apply import Reloader
from mirrorgate.serve.config import ConfigInvalid, Loaded
from mirrorgate.serve.logs import _WorkerTag
from mirrorgate.serve.source import Trigger, _PathFilter
from mirrorgate.serve.supervisor import MergedMetrics


def test_path_filter_files_directories_and_configmaps(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    single = tmp_path / "gw.yaml"
    single.write_text("")
    filt = _PathFilter([str(single), str(conf), "-"])
    assert filt.roots() == sorted([str(tmp_path), str(conf)])
    added = watchfiles.Change.added
    assert filt(added, str(single))
    assert not filt(added, str(tmp_path / "gw.yaml.tmp"))
    assert not filt(added, str(tmp_path / "other.yaml"))
    assert filt(added, str(conf / "routes.yml"))
    assert not filt(added, str(conf / "notes.txt"))
    assert filt(added, str(tmp_path / "..data"))  # a ConfigMap volume swapping its files


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("mirrorgate.access", logging.INFO, __file__, 1, "%s", (message,), None)


def test_worker_tag_on_text_and_json_access_lines() -> None:
    tag = _WorkerTag(3)
    text = _record('127.0.0.1:5 "GET / HTTP/1.1" 200 2 0.1ms route=- endpoint=- request_id=-')
    assert tag.filter(text)
    assert text.getMessage().endswith("request_id=- worker=3")
    js = _record(json.dumps({"status": 200, "route": "r"}))
    assert tag.filter(js)
    assert json.loads(js.getMessage()) == {"worker": 3, "status": 200, "route": "r"}


def _snapshot(sent: int, inflight: int) -> str:
    registry = CollectorRegistry()
    Counter("mg_sent", "sent", ["backend"], registry=registry).labels("b").inc(sent)
    Gauge("mg_inflight", "in flight", registry=registry).set(inflight)
    return generate_latest(registry).decode()


def _value(metrics: MergedMetrics, name: str) -> float | None:
    registry = CollectorRegistry()
    registry.register(metrics)
    return registry.get_sample_value(name, {"backend": "b"} if name == "mg_sent_total" else {})


def test_merged_metrics_sum_workers_and_keep_dead_workers_counters() -> None:
    merged = MergedMetrics()
    merged.update(0, _snapshot(sent=3, inflight=1))
    merged.update(1, _snapshot(sent=4, inflight=2))
    assert _value(merged, "mg_sent_total") == 7
    assert _value(merged, "mg_inflight") == 3
    merged.retire(0)  # worker 0 died: its counter stays, its gauge goes
    merged.update(0, _snapshot(sent=1, inflight=0))  # its replacement starts from zero
    assert _value(merged, "mg_sent_total") == 8
    assert _value(merged, "mg_inflight") == 2
    merged.update(0, "")
    merged.update(1, "")
    assert _value(merged, "mg_sent_total") == 3


class _ListSource:
    """A ``ConfigSource`` whose loads return (or raise) the given outcomes in turn."""

    def __init__(self, outcomes: list[RoutingTable | ConfigInvalid]) -> None:
        self.outcomes = outcomes

    def load(self) -> Loaded:
        out = self.outcomes.pop(0)
        if isinstance(out, ConfigInvalid):
            raise out
        return Loaded(table=out, status={})

    async def watch(self, changed: Trigger, stop: asyncio.Event) -> None:
        await stop.wait()


async def test_reloader_keeps_the_old_config_on_failure_and_coalesces_requests() -> None:
    good = RoutingTable(servers=(Server(address="127.0.0.1", port=80),))
    newer = RoutingTable(servers=(Server(address="127.0.0.1", port=81),))
    source = _ListSource([ConfigInvalid(["f.yaml: bad"]), newer, newer])
    applied: list[RoutingTable] = []

    async def apply(table: RoutingTable) -> None:
        applied.append(table)

    finished = asyncio.Event()
    reloader = Reloader(
        good,
        source=source,
        prepare=lambda loaded: loaded.table,
        table_of=lambda t: t,
        apply=apply,
        on_result=lambda _: finished.set(),
    )
    assert not await reloader.reload()
    assert reloader.current is good
    assert reloader.last_error is not None
    assert reloader.last_error["errors"] == ["f.yaml: bad"]
    assert await reloader.reload()
    assert reloader.last_error is None
    assert applied == [newer]
    task = asyncio.create_task(reloader.run())
    finished.clear()
    for _ in range(5):
        reloader.request()  # a burst: one reload (unchanged, so nothing applied)
    async with asyncio.timeout(5):
        await finished.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reloader.reloads == 3
    assert applied == [newer]


async def test_big_status_lines_pass_between_worker_and_supervisor() -> None:
    from mirrorgate.serve.worker import STATUS_LINE_LIMIT

    reader = asyncio.StreamReader(limit=STATUS_LINE_LIMIT)
    reader.feed_data(b'{"event": "metrics", "text": "' + b"x" * (1 << 20) + b'"}\n')
    reader.feed_eof()
    lines = [line async for line in reader]
    assert len(lines) == 1
