"""Golden match tests: ``testdata/<case>.in.yaml`` (+ ``_base.yaml``) -> ``<case>.requests.yaml``.

Each case is Gateway API YAML loaded and translated by the real control plane, compiled, and
matched with no sockets. Each request row is ``{host, port, method, path, headers, want}``:
``want`` is a local status (int), a backend short name (``v1`` = ``infra-backend-v1``, checked
against the route's only backend) or a route-name prefix (``httproute/...``).
"""

from pathlib import Path
from typing import Any

import pytest
import yaml

from mirrorgate.dataplane.matcher import Decision, Matcher, compile
from mirrorgate.providers.files import load_paths
from mirrorgate.translate import TranslateOptions, translate

TESTDATA = Path(__file__).parent / "testdata"
BASE = TESTDATA / "_base.yaml"
CASES = sorted(p.name.removesuffix(".in.yaml") for p in TESTDATA.glob("*.in.yaml"))


def load_matcher(case: str) -> Matcher:
    result = load_paths([str(BASE), str(TESTDATA / f"{case}.in.yaml")])
    assert not result.errors, [str(e) for e in result.errors]
    return compile(translate(result.snapshot, TranslateOptions(bind="0.0.0.0")).table)


def header_pairs(raw: Any) -> list[tuple[bytes, bytes]]:
    items = raw.items() if isinstance(raw, dict) else raw or []
    return [(str(k).lower().encode(), str(v).encode()) for k, v in items]


def select(matcher: Matcher, row: dict[str, Any]) -> Decision:
    return matcher.select(
        ("0.0.0.0", int(row.get("port", 80))),
        str(row.get("host", "example.com")).encode(),
        str(row.get("method", "GET")).encode(),
        str(row.get("path", "/")).encode(),
        header_pairs(row.get("headers")),
    )


def describe(d: Decision) -> str:
    if d.status:
        return str(d.status)
    assert d.plan is not None
    return f"{d.route} -> {[t.name for t in d.plan.targets]}"


def check(d: Decision, want: object) -> bool:
    if isinstance(want, int):
        return d.status == want
    assert isinstance(want, str)
    if d.status:
        return False
    if want.startswith("httproute/"):
        return d.route.startswith(want)
    assert d.plan is not None
    return [t.name for t in d.plan.targets] == [f"service/infra/infra-backend-{want}:8080"]


def test_every_matching_row_of_the_notes_has_a_case() -> None:
    needed = {
        "matching",
        "exact-path-matching",
        "header-matching",
        "query-param-matching",
        "method-matching",
        "path-match-order",
        "matching-across-routes",
        "hostname-intersection",
        "listener-hostname-matching",
        "listener-port-matching",
        "http-listener-isolation",
    }
    assert needed <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden_match(case: str) -> None:
    matcher = load_matcher(case)
    rows = yaml.safe_load((TESTDATA / f"{case}.requests.yaml").read_text())
    failures = []
    for row in rows:
        d = select(matcher, row)
        if not check(d, row["want"]):
            failures.append(f"{row} -> got {describe(d)}")
    assert not failures, "\n".join(failures)
