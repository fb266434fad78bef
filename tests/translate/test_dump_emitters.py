"""``to_yaml`` writes what PyYAML's pure-Python emitter writes, whichever emitter it uses."""

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
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(STRINGS, inner, max_size=4)),
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
    assert dump._plain_ascii(data)
    assert dump.to_yaml(data) == pure(data)


def test_empty_and_long_keys_take_the_pure_python_emitter() -> None:
    for key in ["", "k" * 120, "k" * 128, "k" * 200]:
        assert not dump._plain_ascii({key: 1})
        assert dump.to_yaml({key: 1}) == pure({key: 1})


def test_a_lone_scalar_takes_the_pure_python_emitter() -> None:
    assert dump.to_yaml(None) == pure(None) == "null\n...\n"


def test_other_strings_take_the_pure_python_emitter() -> None:
    for s in ["a\nb", "tab\there", "é", "\u2028", "\x85", "\ufeff"]:
        assert not dump._plain_ascii({"k": [s]})
        assert dump.to_yaml({"k": [s]}) == pure({"k": [s]})
