"""Golden control-plane tests: ``testdata/<case>.in.yaml`` -> ``<case>.out.yaml``.

The output holds the load errors, every computed status and the routing table dump. Run
``pytest tests/translate --update-golden`` to regenerate after an intended change and review
the diff; orphaned outputs are deleted.
"""

import difflib
from pathlib import Path

import msgspec
import pytest

from mirrorgate.ir import invariants
from mirrorgate.ir.dump import table_to_builtins, to_yaml
from mirrorgate.providers.files import load_paths
from mirrorgate.serve.config import refused_configs
from mirrorgate.translate import TranslateOptions, translate

TESTDATA = Path(__file__).parent / "testdata"
CASES = sorted(p.name.removesuffix(".in.yaml") for p in TESTDATA.glob("*.in.yaml"))


def render(case: str) -> str:
    source = TESTDATA / f"{case}.in.yaml"
    result = load_paths([str(source)])
    translated = translate(result.snapshot, TranslateOptions(refused_configs=refused_configs(result.errors)))
    assert invariants.check(translated.table) == []
    data = {
        "errors": [str(e).replace(str(source), source.name) for e in result.errors],
        "status": {key: msgspec.to_builtins(st) for key, st in sorted(translated.statuses.items())},
        "routingTable": table_to_builtins(translated.table),
    }
    return to_yaml(data)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, update_golden: bool) -> None:
    out = TESTDATA / f"{case}.out.yaml"
    got = render(case)
    if update_golden:
        out.write_text(got)
        return
    assert out.exists(), f"missing {out.name}: run pytest --update-golden"
    want = out.read_text()
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "want", "got"))
        pytest.fail(f"{case} differs from its golden output:\n{diff}")


def test_no_orphan_outputs(update_golden: bool) -> None:
    orphans = [p for p in TESTDATA.glob("*.out.yaml") if p.name.removesuffix(".out.yaml") not in CASES]
    if update_golden:
        for p in orphans:
            p.unlink()
        return
    assert not orphans, f"outputs without inputs: {[p.name for p in orphans]}"
