"""The access log written through ``AccessWriter`` (no ``logging`` record per request): every
documented field, text and JSON, byte for byte what ``logging``'s ``%(asctime)s %(message)s``
handler and ``json.dumps`` wrote before, the worker tag, and the writer's buffer bound."""

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mirrorgate.dataplane import accesslog, accesswriter
from mirrorgate.dataplane.accesslog import AccessLogged
from mirrorgate.dataplane.accesswriter import AccessWriter
from tests.dataplane.conftest import GatewayFactory, lines_of
from tests.support.client import request

CONFIG = (Path(__file__).parent / "e2e_data" / "gateway.yaml").read_text()
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"  # logging's asctime
FIELDS = ["time", "client", "method", "target", "status", "bytes", "duration_ms", "route", "endpoint", "request_id"]


async def test_text_and_json_lines_carry_every_field(gateway_for: GatewayFactory, log_file: Path) -> None:
    gw = await gateway_for(CONFIG)
    await request(gw.port(80), path="/v1/logged?x=1", headers=[("X-Request-Id", "rid-1")])
    await request(gw.port(80), path="/missing")
    gw.state.access_log_json = True
    await request(gw.port(80), path="/v2/j", headers=[("X-Request-Id", "rid-2")])
    text, missing, js = lines_of(log_file)
    assert re.fullmatch(
        STAMP + r' 127\.0\.0\.1:\d+ "GET /v1/logged\?x=1 HTTP/1\.1" 200 \d+ \d+\.\d{3}ms '
        r"route=httproute/infra/e2e/rule/0/match/0 endpoint=127\.0\.0\.1:\d+ request_id=rid-1",
        text,
    ), text
    assert re.fullmatch(
        STAMP + r' 127\.0\.0\.1:\d+ "GET /missing HTTP/1\.1" 404 \d+ \d+\.\d{3}ms '
        r"route=- endpoint=- request_id=[0-9a-f-]+",
        missing,
    ), missing
    stamp, body = js[:23], js[24:]
    assert re.fullmatch(STAMP, stamp)
    record = json.loads(body)
    assert list(record) == FIELDS
    assert json.dumps(record) == body  # the separators and escapes of json.dumps
    assert (record["method"], record["target"], record["status"], record["request_id"]) == (
        "GET",
        "/v2/j",
        200,
        "rid-2",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["time"])


def _exchange(json_lines: bool, target: bytes = b'/caf\xe9?q="x"', route: str = "r/1") -> Any:
    """An ``AccessLogged`` with every field set, outside any connection."""

    class Fake(AccessLogged):
        __slots__ = tuple(AccessLogged.__annotations__)

    ex = Fake()
    ex.proto = SimpleNamespace(client="10.0.0.1:4242")
    ex.state = SimpleNamespace(access_log_json=json_lines)  # type: ignore[assignment]
    ex.started = 0.0
    ex.method, ex.target, ex.version = b"POST", target, "1.1"
    ex.status, ex.bytes_sent, ex.route = 201, 11, route
    ex.key, ex.request_id = ("10.0.0.2", 8080), b"rid"
    return ex


@pytest.mark.parametrize("worker", [None, 3])
def test_lines_are_what_logging_and_json_dumps_wrote(log_file: Path, worker: int | None) -> None:
    writer = accesslog.installed()
    accesslog.install(writer, worker)
    for json_lines in (False, True):
        _exchange(json_lines)._log()
    text, js = lines_of(log_file)
    tail = "" if worker is None else f" worker={worker}"
    assert re.fullmatch(
        STAMP + r' 10\.0\.0\.1:4242 "POST /caf\xe9\?q="x" HTTP/1\.1" 201 11 \d+\.\d{3}ms route=r/1 '
        r"endpoint=10\.0\.0\.2:8080 request_id=rid" + tail,
        text,
    ), text
    record = json.loads(js[24:])
    want: dict[str, Any] = {} if worker is None else {"worker": worker}
    want |= dict(client="10.0.0.1:4242", method="POST", target='/caf\xe9?q="x"', status=201, bytes=11)
    want |= dict(route="r/1", endpoint="10.0.0.2:8080", request_id="rid")
    assert {k: v for k, v in record.items() if k not in ("time", "duration_ms")} == want
    assert list(record)[-len(FIELDS) :] == FIELDS
    assert json.dumps(record) == js[24:]  # '\u00e9' and '\"' escaped as json.dumps does


def test_empty_fields_are_dashes_in_text_and_empty_in_json(log_file: Path) -> None:
    for json_lines in (False, True):
        ex = _exchange(json_lines, route="")
        ex.key, ex.request_id = ("", 0), b""
        ex._log()
    text, js = lines_of(log_file)
    assert text.endswith(" route=- endpoint=- request_id=-")
    record = json.loads(js[24:])
    assert (record["route"], record["endpoint"], record["request_id"]) == ("", "", "")


def test_a_full_buffer_drops_and_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accesswriter, "LIMIT", 100)
    read, write = os.pipe()
    writer = AccessWriter(write)
    writer.outbox = ["held"]  # the thread looks busy: nothing leaves the buffer
    for _ in range(30):
        writer.write("x" * 9 + "\n")
    assert (len(writer.lines), writer.dropped) == (10, 20)
    writer.outbox = None
    writer.close(1.0)
    assert os.read(read, 1000) == b"xxxxxxxxx\n" * 10
    os.close(read)


def test_pieces_of_a_shared_pipe_end_at_line_ends() -> None:
    read, write = os.pipe()
    writer = AccessWriter(write)
    assert writer.piecewise
    data = b"".join(b"%04d" % i + b"y" * 95 + b"\n" for i in range(100))  # 100-byte lines
    assert writer._piece_end(data, 0) == 4000
    assert writer._piece_end(data, 4000) == 8000
    assert writer._piece_end(data, 8000) == len(data)
    long = b"z" * 5000 + b"\n" + b"w\n"
    assert writer._piece_end(long, 0) == 5001  # a line longer than PIPE_BUF goes alone
    writer.close(1.0)
    os.close(read)
