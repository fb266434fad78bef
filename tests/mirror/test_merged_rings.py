"""The supervisor's merged rings (``views.MergedMirrors``) are bounded like a worker's: records
kept as JSON bytes, all the rings together at most ``MAX_RING_BYTES``, the oldest evicted first."""

from pathlib import Path

import msgspec
import pytest

from mirrorgate.ir.table import MirrorCompare
from mirrorgate.mirror import views
from mirrorgate.mirror.board import RECORD_OVERHEAD
from mirrorgate.mirror.views import MergedMirrors

from .compare_support import with_compare
from .policy_tables import load

RULES = """  - filters:
    - {type: RequestMirror, requestMirror: {backendRef: {name: v2, port: 8080}}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: v3, port: 8080}}}
    backendRefs: [{name: v1, port: 8080}]"""
ONE, TWO = "httproute/infra/mirrored/rule/0/mirror/0", "httproute/infra/mirrored/rule/0/mirror/1"


def record(second: int) -> dict[str, object]:
    return {"time": f"2026-12-07T10:00:{second:02d}.000Z", "body": "\N{GRINNING FACE}" * 100}


def test_merged_rings_share_one_byte_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = with_compare(load(tmp_path, RULES, {"v1": 1, "v2": 2, "v3": 3}), MirrorCompare(keep_mismatches=10))
    merged = MergedMirrors(lambda: table)
    size = len(msgspec.json.encode(record(0))) + RECORD_OVERHEAD
    monkeypatch.setattr(views, "MAX_RING_BYTES", 3 * size + size // 2)
    merged.update(0, {"reports": [], "diffs": {ONE: [record(1), record(3)], TWO: [record(2)]}})
    assert merged.ring_bytes == 3 * size
    assert all(type(raw) is bytes for ring in merged.rings.values() for _, raw in ring)
    merged.update(1, {"reports": [], "diffs": {TWO: [record(4)]}})  # the oldest (ONE's :01) goes
    assert [r["time"][-7:-5] for r in merged.diffs(ONE)] == ["03"]
    assert [r["time"][-7:-5] for r in merged.diffs(TWO)] == ["04", "02"]
    assert merged.diffs(TWO)[0] == record(4)
    assert merged.ring_bytes == 3 * size
