"""The fast node constructor gives what PyYAML's constructor gives, or steps aside."""

import datetime
from typing import Any

import pytest
import yaml

from mirrorgate.errors import ConfigError
from mirrorgate.providers import files, yamlnodes

PLAIN = [
    "a: 1\nb: [x, 'y', \"z\"]\nc: {d: null, e: ~, f: true, g: no, h: 1.5, i: 0x1f, j: 1_000}\n",
    "- a\n- {b: [1, 2, {c: d}]}\n- ''\n- 2026-01-02\n- 2026-01-02T03:04:05Z\n",
    "1: one\nfalse: yes\n~: null\n.inf: -.inf\nkey: |\n  block\n  text\nfolded: >\n  a\n  b\n",
    "apiVersion: v1\nkind: Service\nmetadata: {name: s, labels: {a: '1'}}\nspec: {ports: [{port: 80}]}\n",
    "{}\n",
    "[]\n",
    "plain\n",
]

UNUSUAL = [
    "base: &b {name: a, port: 1}\nuse:\n  <<: *b\n  port: 2\n",
    "a: &x [1]\nb: *x\n",
    "a: &s text\nb: *s\n",
    "a: !!set {x, y}\n",
    "a: !!binary aGVsbG8=\n",
    "? [a, b]\n: c\n",
    "a: 1\na: 2\n",
    "a: {x: 1, x: 2}\n",
    "x: !!omap [a: 1]\n",
    "1: a\ntrue: b\n",
]


def slow(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=files._Loader))


def fast(text: str) -> list[Any]:
    loader = files._FastLoader(text)
    out = []
    try:
        while loader.check_node():
            node = loader.get_node()
            assert node is not None
            out.append(yamlnodes.construct(loader, node))
    finally:
        loader.dispose()
    return out


@pytest.mark.parametrize("text", PLAIN)
def test_plain_documents_construct_as_pyyaml_does(text: str) -> None:
    got, want = fast(text), slow(text)
    assert got == want
    assert repr(got) == repr(want)  # same types and mapping order


def test_scalar_types_are_pyyaml_s() -> None:
    (doc,) = fast(PLAIN[1])
    assert isinstance(doc[3], datetime.date)
    assert isinstance(doc[4], datetime.datetime)


@pytest.mark.parametrize("text", UNUSUAL)
def test_unusual_documents_step_aside(text: str) -> None:
    with pytest.raises(yamlnodes.Unusual):
        fast(text)


@pytest.mark.parametrize("text", PLAIN + UNUSUAL)
def test_documents_and_errors_are_those_of_pyyaml_s_constructor(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    fast_errors: list[ConfigError] = []
    got = list(files._parse("f", text, fast_errors))

    def never(loader: Any, node: Any) -> Any:
        raise yamlnodes.Unusual

    monkeypatch.setattr(yamlnodes, "construct", never)
    slow_errors: list[ConfigError] = []
    want = list(files._parse("f", text, slow_errors))
    assert repr(got) == repr(want)
    assert [str(e) for e in fast_errors] == [str(e) for e in slow_errors]


def test_resolved_tags_are_remembered_per_loader() -> None:
    loader = files._FastLoader("a: 1\nb: 1\nc: x\n")
    try:
        loader.get_single_node()
        memo = getattr(loader, "_resolved")  # noqa: B009 - set by the MemoResolve mixin
        assert memo[("1", (True, False))] == "tag:yaml.org,2002:int"
    finally:
        loader.dispose()
