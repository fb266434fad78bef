"""``mirrorgate run --kubernetes``: usage errors and one-line failures before anything starts."""

import sys
from pathlib import Path

import pytest

from mirrorgate.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["run", *argv])
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    "argv",
    [[], ["-f", "x.yaml", "--kubernetes"], ["--kubernetes", "--endpoints", "svc=127.0.0.1:80"]],
    ids=["neither", "both", "endpoints"],
)
def test_a_usage_error_is_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run(argv, capsys)
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith("mirrorgate run: ")


def test_without_the_kubernetes_extra_it_says_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "kubernetes_asyncio", None)  # import fails as when not installed
    code, lines = run(["--kubernetes"], capsys)
    assert code == 1
    assert lines == ["mirrorgate run: --kubernetes needs the Kubernetes client: pip install 'mirrorgate[kubernetes]'"]


def test_a_missing_kubeconfig_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope"
    code, lines = run(["--kubernetes", "--kubeconfig", str(missing)], capsys)
    assert code == 1
    assert lines == [f"mirrorgate run: kubeconfig {missing}: no such file"]


def test_publish_service_needs_namespace_and_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--kubernetes", "--publish-service", "just-a-name"])
    assert exc.value.code == 2
    assert "expected NAMESPACE/NAME" in capsys.readouterr().err
