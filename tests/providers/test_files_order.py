"""Load order: arguments in order, a directory's files by name in its place; later files win."""

from pathlib import Path

from mirrorgate.providers.files import expand_paths, load_paths


def route(percent: int, name: str = "r") -> str:
    return f"""\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: team}}
spec:
  parentRefs: [{{name: eg}}]
  rules:
  - backendRefs: [{{name: backend, port: 3000}}]
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef: {{name: backend-2, port: 3000}}
        percent: {percent}
"""


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def percent(paths: list[str]) -> int | None:
    result = load_paths(paths)
    assert result.errors == ()
    (r,) = result.snapshot.http_routes
    mirror = r.spec.rules[0].filters[0].request_mirror
    assert mirror is not None
    return mirror.percent


def test_a_later_file_replaces_the_object_with_a_note_naming_both(tmp_path: Path) -> None:
    before = write(tmp_path / "before.yaml", route(10))
    after = write(tmp_path / "after.yaml", route(20))
    result = load_paths([before, after])
    assert result.errors == ()
    assert result.notes == (f"{after}: HTTPRoute team/r replaces its definition in {before} (later files win)",)
    assert result.sources == {"HTTPRoute team/r": after}
    assert percent([before, after]) == 20
    assert percent([after, before]) == 10


def test_an_identical_repetition_is_applied_once_without_a_note(tmp_path: Path) -> None:
    a = write(tmp_path / "a.yaml", route(10))
    b = write(tmp_path / "b.yaml", route(10))
    result = load_paths([a, b, a])
    assert (result.errors, result.notes, len(result.snapshot.http_routes)) == ((), (), 1)


def test_a_different_repetition_in_one_file_stays_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "one.yaml", route(10) + "---\n" + route(20))
    result = load_paths([path])
    assert [str(e) for e in result.errors] == [
        f"{path}: HTTPRoute team/r: metadata.name: Duplicate value: 'r': already defined in {path}"
    ]
    assert percent([write(tmp_path / "ok.yaml", route(10))]) == 10


def test_a_later_file_may_not_repeat_its_own_replacement(tmp_path: Path) -> None:
    first = write(tmp_path / "first.yaml", route(10))
    second = write(tmp_path / "second.yaml", route(20) + "---\n" + route(30))
    result = load_paths([first, second])
    assert [e.file for e in result.errors] == [second]
    assert "Duplicate value" in str(result.errors[0])


def test_an_invalid_later_definition_is_an_error_and_replaces_nothing(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml", route(10))
    bad = write(tmp_path / "bad.yaml", route(1000))
    result = load_paths([good, bad])
    assert [e.file for e in result.errors] == [bad]
    assert result.sources == {"HTTPRoute team/r": good}


def test_directory_files_load_in_code_point_order_in_place_of_the_directory(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    names = ["9-b.yaml", "10-a.yml", "B.yaml", "a.yaml"]
    for i, name in enumerate(names):
        write(conf / name, route(i + 1))
    write(conf / "z.txt", "ignored")
    (conf / "sub.yaml").mkdir()
    last = write(tmp_path / "last.yaml", route(50))
    assert expand_paths([str(conf), last, "-"]) == [str(conf / n) for n in sorted(names)] + [last, "-"]
    assert sorted(names) == ["10-a.yml", "9-b.yaml", "B.yaml", "a.yaml"]
    assert percent([str(conf)]) == names.index("a.yaml") + 1
    assert percent([str(conf), last]) == 50
    assert percent([last, str(conf)]) == names.index("a.yaml") + 1
