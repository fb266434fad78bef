"""The file provider's YAML reading: strict keys, libyaml with the pure-Python parser's messages."""

from pathlib import Path

import pytest
import yaml

from mirrorgate.providers import files
from mirrorgate.providers.files import load_paths

ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: team}
spec:
  parentRefs: [{name: eg}]
  rules:
  - backendRefs: [{name: backend, port: 3000}]
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef: {name: backend-2, port: 3000}
        percent: 42
"""


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "in.yaml"
    path.write_text(text)
    return [str(e) for e in load_paths([str(path)]).errors]


def test_duplicate_key_names_file_line_and_key(tmp_path: Path) -> None:
    text = ROUTE + "        percent: 7\n"
    assert errors_of(tmp_path, text) == [
        f'{tmp_path / "in.yaml"}: invalid YAML: line 13: key "percent" already set in map'
    ]


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        pytest.param("a: 1\nb: 2\na: 3\n", 3, '"a"', id="top-level"),
        pytest.param("a: {x: 1, y: 2, x: 3}\n", 1, '"x"', id="flow-mapping"),
        pytest.param("a:\n  - x: 1\n    x: 1\n", 3, '"x"', id="same-value-too"),
        pytest.param("1: a\n1: b\n", 2, "1", id="integer-key"),
        pytest.param("x: 1\n---\ny: 1\ny: 2\n", 4, '"y"', id="second-document"),
    ],
)
def test_duplicate_keys_anywhere(tmp_path: Path, text: str, line: int, key: str) -> None:
    want = f"{tmp_path / 'in.yaml'}: invalid YAML: line {line}: key {key} already set in map"
    assert errors_of(tmp_path, text)[-1] == want


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    text = "base: &b {name: a, port: 1}\nuse:\n  <<: *b\n  port: 2\n"
    loader = files._FastLoader(text)
    try:
        assert loader.get_single_data()["use"] == {"name": "a", "port": 2}
    finally:
        loader.dispose()


def test_documents_before_a_duplicate_key_still_load(tmp_path: Path) -> None:
    path = tmp_path / "in.yaml"
    path.write_text(ROUTE + "---\napiVersion: v1\nkind: Service\nkind: Service\n")
    result = load_paths([str(path)])
    assert [str(o.key) for o in result.snapshot.objects()] == ["HTTPRoute team/r"]
    assert [str(e) for e in result.errors] == [f'{path}: invalid YAML: line 16: key "kind" already set in map']


BROKEN = [
    "a: [\n  x: y\n",
    "a: b\n c: d\n",
    'a: "x\n',
    "\tx: 1\n",
    "a: *b\n",
    "- a\nb: c\n",
    "a: b: c\n",
    "x: 1\n---\n{a: 1\n",
    "a: !!foo x\n",
]


@pytest.mark.parametrize("text", BROKEN)
def test_syntax_errors_read_as_the_pure_python_parser_words_them(tmp_path: Path, text: str) -> None:
    with pytest.raises(yaml.YAMLError) as info:
        list(yaml.load_all(text, Loader=yaml.SafeLoader))
    exc = info.value
    mark = exc.problem_mark or exc.context_mark  # type: ignore[attr-defined]
    want = f"invalid YAML: line {mark.line + 1} column {mark.column + 1}: {exc.problem}"  # type: ignore[attr-defined]
    assert errors_of(tmp_path, text)[-1] == f"{tmp_path / 'in.yaml'}: {want}"


def test_fast_loader_is_libyaml_when_available() -> None:
    assert issubclass(files._FastLoader, yaml.CSafeLoader)


def test_pure_python_fallback_gives_the_same_documents_and_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "# c\n---\n" + ROUTE + "---\n---\nkind: List\napiVersion: v1\nitems: [{a: 1}, {b: 2}]\n"
    fast = list(files._parse("f", text, []))
    monkeypatch.setattr(files, "_FastLoader", files._Loader)
    errors: list[object] = []
    slow = list(files._parse("f", text, errors))  # type: ignore[arg-type]
    assert fast == slow
    assert [d.line for d in fast] == [3, 17, 17]
    assert errors == []
