"""``to_yaml`` writes what PyYAML's pure-Python emitter writes, whether its block writer or PyYAML does."""

from typing import Any

import yaml
from hypothesis import given, settings, strategies as st

from mirrorgate.ir import dump

TRICKY = [
    "",
    " ",
    " lead",
    "trail ",
    "yes",
    "No",
    "null",
    "~",
    "1",
    "0x1f",
    "1e3",
    ".5",
    "1:30",
    "2026-01-02",
    "a: b",
    "a #b",
    "#x",
    "- x",
    "-",
    "?",
    "'q'",
    '"q"',
    "{a}",
    "[a]",
    "*x",
    "&x",
    "!x",
    "%x",
    "@x",
    "`x",
    "|",
    ">",
    "a,b",
    "---",
    "...",
    "x" * 130,
    "a  b",
    "http://h/p?q=1&r=2",
    "*.example.com",
]

ASCII = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
STRINGS = st.one_of(ASCII, st.sampled_from(TRICKY))
SCALARS = st.one_of(STRINGS, st.integers(), st.booleans(), st.none())
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple), st.dictionaries(STRINGS, inner, max_size=4)
    ),
    max_leaves=30,
)


def pure(data: Any) -> str:
    return yaml.dump(
        data, Dumper=yaml.SafeDumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1000
    )


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.lists(DATA, max_size=4), st.dictionaries(STRINGS, DATA, max_size=4)))
def test_printable_ascii_data_dumps_as_the_pure_python_emitter_does(data: Any) -> None:
    assert dump.to_yaml(data) == pure(data)


def test_tricky_strings_as_keys_and_values() -> None:
    keys = [s for s in TRICKY if 0 < len(s) < 120]
    data = {"list": TRICKY, "map": {s: s for s in keys}, "nested": [{"k": [s]} for s in TRICKY]}
    assert dump._BlockWriter().document(data) == pure(data)
    assert dump.to_yaml(data) == pure(data)


def written_by_pyyaml(data: Any) -> bool:
    try:
        dump._BlockWriter().document(data)
    except dump._Unusual:
        return True
    return False


def test_shapes_the_block_writer_takes() -> None:
    shapes: list[Any] = [
        {"a": [{"b": [{"c": 1}, {}, []], "d": {}}], "e": [], "f": {"g": {"h": [None, True, 3]}}},
        [{"a": 1, "b": [{"c": "x y"}]}, "s", 1, {}, []],
        {"conditions": ({"type": "Accepted", "status": "True"},), "none": (), "again": ()},
        {"items": [{"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}}] * 1},
    ]
    for data in shapes:
        assert not written_by_pyyaml(data)
        assert dump.to_yaml(data) == pure(data)


def test_shapes_left_to_pyyaml() -> None:
    shared: dict[str, Any] = {"x": 1}
    for data in [
        {"a": [[1, 2]]},
        {"a": shared, "b": shared},
        {"a": "x " * 600},
        {"a": 1.5},
        {"a": ((1,),)},
        {1: "int key"},
    ]:
        assert written_by_pyyaml(data)
        assert dump.to_yaml(data) == pure(data)


def test_a_long_top_level_list_is_written_in_batches() -> None:
    items = [{"name": f"n{i}", "labels": {"k": "v" if i % 2 else "yes"}} for i in range(3 * dump.BATCH + 5)]
    items[dump.BATCH + 7]["note"] = "é"  # one batch goes through PyYAML
    data = {"apiVersion": "v1", "items": items, "kind": "List"}
    assert dump.to_yaml(data) == pure(data)


def test_empty_and_long_keys_take_the_pure_python_emitter() -> None:
    for key in ["", "k" * 120, "k" * 128, "k" * 200]:
        assert written_by_pyyaml({key: 1})
        assert dump.to_yaml({key: 1}) == pure({key: 1})


def test_a_lone_scalar_takes_the_pure_python_emitter() -> None:
    assert dump.to_yaml(None) == pure(None) == "null\n...\n"


def test_other_strings_take_the_pure_python_emitter() -> None:
    for s in ["a\nb", "tab\there", "é", "\u2028", "\x85", "\ufeff"]:
        assert written_by_pyyaml({"k": [s]})
        assert dump.to_yaml({"k": [s]}) == pure({"k": [s]})
