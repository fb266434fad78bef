"""A load that reuses the previous load's unchanged chunks gives exactly what a full load gives."""

from pathlib import Path
from typing import Any

import pytest

from mirrorgate.providers import doccache, files
from mirrorgate.providers.files import LoadResult, load_paths

SERVICE = """---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec: {{ports: [{{name: http, port: {port}}}]}}
"""

ROUTE = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{name: a, port: 80}}]
"""

BASE = (
    "# leading comment\n"
    + SERVICE.format(name="a", ns="default", port=80)
    + ROUTE.format(name="r1", path="/one")
    + "---\n---\n# only a comment\n"
    + ROUTE.format(name="r2", path="/two")
    + "--- {apiVersion: v1, kind: List, items: [{apiVersion: v1, kind: Namespace, metadata: {name: team}}]}\n"
    + SERVICE.format(name="b", ns="team", port=81)
    + "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\n"
    + SERVICE.format(name="bad_name", ns="default", port=82)
    + SERVICE.format(name="a", ns="default", port=80)
    + ROUTE.format(name="r3", path="/three")
)


def summary(result: LoadResult) -> Any:
    return (
        [repr(o) for o in result.snapshot.objects()],
        [str(e) for e in result.errors],
        result.notes,
        result.warnings,
        result.sources,
    )


def cold(path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(files, "_CACHE", doccache.Cache())
    path.write_text(text)
    return summary(load_paths([str(path)]))


def warm(path: Path, before: str, after: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(files, "_CACHE", doccache.Cache())
    path.write_text(before)
    load_paths([str(path)])
    path.write_text(after)
    return summary(load_paths([str(path)]))


EDITS = {
    "unchanged": BASE,
    "path edited": BASE.replace("value: /two", "value: /deux"),
    "line inserted above": "# one more line\n" + BASE,
    "document removed": BASE.replace(ROUTE.format(name="r2", path="/two"), ""),
    "document added": BASE + ROUTE.format(name="r4", path="/four"),
    "duplicate made": BASE.replace("name: r3", "name: r1"),
    "invalid made": BASE.replace("port: 81", "port: 0"),
    "key repeated": BASE.replace("value: /two", "value: /two, type: Exact"),
    "syntax broken": BASE.replace("value: /two}}]", "value: /two}]"),
    "duplicate key": BASE.replace(
        "kind: HTTPRoute\nmetadata: {name: r2}", "kind: HTTPRoute\nkind: x\nmetadata: {name: r2}"
    ),
    "directive added": "%YAML 1.1\n" + BASE,
    "document end added": BASE + "...\n",
}


@pytest.mark.parametrize("after", EDITS.values(), ids=EDITS.keys())
def test_a_warm_load_is_a_cold_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: str) -> None:
    path = tmp_path / "in.yaml"
    assert warm(path, BASE, after, monkeypatch) == cold(path, after, monkeypatch)


@pytest.mark.parametrize("before", EDITS.values(), ids=EDITS.keys())
def test_a_load_after_any_edit_back_is_a_cold_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: str
) -> None:
    path = tmp_path / "in.yaml"
    assert warm(path, before, BASE, monkeypatch) == cold(path, BASE, monkeypatch)


def test_only_changed_chunks_are_parsed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "in.yaml"
    monkeypatch.setattr(files, "_CACHE", doccache.Cache())
    path.write_text(BASE)
    load_paths([str(path)])
    parsed: list[str] = []
    real = files._parse

    def spy(file: str, text: str, errors: list[Any]) -> Any:
        parsed.append(text)
        return real(file, text, errors)

    monkeypatch.setattr(files, "_parse", spy)
    path.write_text(BASE.replace("value: /two", "value: /deux"))
    load_paths([str(path)])
    skipped = "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\n"
    assert parsed == [ROUTE.format(name="r2", path="/deux"), skipped]  # a warning is never remembered


def test_split_cuts_at_document_starts_only() -> None:
    text = "a: 1\n--- b\n---\nc: |\n  ---x\n---\t# c\n----\nd: 2\n"
    chunks = doccache.split(text)
    assert chunks is not None
    assert "".join(c.text for c in chunks) == text
    assert [(c.line, c.text) for c in chunks] == [
        (0, "a: 1\n"),
        (1, "--- b\n"),
        (2, "---\nc: |\n  ---x\n"),
        (5, "---\t# c\n----\nd: 2\n"),
    ]


@pytest.mark.parametrize("text", ["%YAML 1.1\n---\na: 1\n", "a: 1\n...\n", "a: 1\r\nb: 2\r\n", "a: 1\n\ufeff---\n"])
def test_split_leaves_alone_what_it_cannot_mirror(text: str) -> None:
    assert doccache.split(text) is None
