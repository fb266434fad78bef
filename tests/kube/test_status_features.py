"""GatewayClass ``status.supportedFeatures`` claims exactly the features docs/supported.md marks as supported."""

import re
from pathlib import Path

from mirrorgate.kube.features import MAX_FEATURES, SUPPORTED_FEATURES, supported_features

DOC = Path(__file__).resolve().parents[2] / "docs" / "supported.md"
NAME = re.compile(r"^(Gateway|HTTPRoute|ReferenceGrant|Mesh)[A-Za-z0-9]*$")


def documented() -> set[str]:
    """Table rows whose first cell is a comma-separated list of conformance feature names, supported."""
    names: set[str] = set()
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[1].startswith("yes"):
            continue
        listed = [n.strip() for n in cells[0].split(",")]
        if all(NAME.match(n) for n in listed):
            names.update(listed)
    return names


def test_the_claimed_features_are_the_documented_ones() -> None:
    assert documented() == set(SUPPORTED_FEATURES)


def test_supported_features_are_sorted_name_objects() -> None:
    features = supported_features()
    assert [f["name"] for f in features] == sorted(SUPPORTED_FEATURES)
    assert all(list(f) == ["name"] for f in features)
    assert len(features) <= MAX_FEATURES
