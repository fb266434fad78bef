"""Every bundled example (the seed documents' manifests) validates and is fully accepted."""

from pathlib import Path

import pytest

from mirrorgate.providers.files import load_paths
from mirrorgate.translate import translate
from mirrorgate.translate.status import RouteStatus

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.yaml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_valid_and_every_route_is_accepted(path: Path) -> None:
    result = load_paths([str(path)])
    assert [str(e) for e in result.errors] == []
    assert result.snapshot.http_routes, "each example has at least one HTTPRoute"
    translated = translate(result.snapshot)
    for route in result.snapshot.http_routes:
        status = translated.statuses.get(str(route.key))
        assert isinstance(status, RouteStatus), f"{route.key} has no parent of ours"
        for parent in status.parents:
            conds = {c.type: c.status for c in parent.conditions}
            assert conds["Accepted"] == "True", parent
            assert conds["ResolvedRefs"] == "True", parent
    assert translated.table.servers, "each example serves at least one socket"
