"""Bad flags, values and files, through a real ``mirrorgate`` process: one line naming the value,
exit 2 (a flag value, found when the arguments are parsed) or 1 (the configuration or a runtime
failure), never a traceback."""

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mirrorgate.serve.config import ConfigInvalid, load_config

OK = """apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg}
spec:
  gatewayClassName: mirrorgate
  listeners: [{name: http, protocol: HTTP, port: 8080}]
"""

USAGE: dict[tuple[str, ...], str] = {  # argv (after the subcommand's -f, if any) -> the error line, exit 2
    ("run", "--access-log", "/nonexistent/dir/log"): "mirrorgate run: error: argument --access-log: cannot open "
    "'/nonexistent/dir/log' for appending: No such file or directory",
    ("run", "--mirror-access-log", "/nonexistent/dir/log"): "mirrorgate run: error: argument --mirror-access-log: "
    "cannot open '/nonexistent/dir/log' for appending: No such file or directory",
    ("run", "--mirror-access-log", "/"): "mirrorgate run: error: argument --mirror-access-log: cannot open '/' "
    "for appending: Is a directory",
    ("run", "--grace", "-5"): "mirrorgate run: error: argument --grace: expected a number of seconds >= 0, got '-5'",
    ("run", "--grace", "inf"): "mirrorgate run: error: argument --grace: expected a number of seconds >= 0, got 'inf'",
    ("run", "--bind", "not-an-ip"): "mirrorgate run: error: argument --bind: expected an IPv4 or IPv6 address, "
    "got 'not-an-ip'",
    ("run", "--admin", "nowhere"): "mirrorgate run: error: argument --admin: expected HOST:PORT, got 'nowhere'",
    ("run", "--admin", "example.com:9901"): "mirrorgate run: error: argument --admin: expected HOST:PORT with HOST "
    "an IP address, got 'example.com:9901'",
    ("run", "--admin", "127.0.0.1:65536"): "mirrorgate run: error: argument --admin: expected HOST:PORT, "
    "got '127.0.0.1:65536'",
    ("run", "--workers", "0"): "mirrorgate run: error: argument --workers: expected a positive number or auto, got '0'",
    ("run", "--log-level", "loud"): "mirrorgate run: error: argument --log-level: invalid choice: 'loud' "
    "(choose from 'debug', 'info', 'warning')",
    ("status", "--bind", "::g"): "mirrorgate status: error: argument --bind: expected an IPv4 or IPv6 address, "
    "got '::g'",
    ("demo", "--port", "70000"): "mirrorgate demo: error: argument --port: expected a port number 0..65535, "
    "got '70000'",
    ("demo", "--requests", "-1"): "mirrorgate demo: error: argument --requests: expected a whole number >= 0, got '-1'",
    ("echo", "--port", "99999"): "mirrorgate echo: error: argument --port: expected a port number 0..65535, "
    "got '99999'",
}


def mirrorgate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mirrorgate", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _argv(args: tuple[str, ...], conf: Path) -> list[str]:
    command, *rest = args
    return [command, "-f", str(conf), *rest] if command in ("run", "status", "validate") else [command, *rest]


@pytest.mark.parametrize("args", sorted(USAGE), ids=" ".join)
def test_a_bad_flag_value_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    conf = tmp_path / "ok.yaml"
    conf.write_text(OK)
    proc = mirrorgate(*_argv(args, conf))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1] == USAGE[args]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("name", "content"),
    [("binary.yaml", b"\x00\x01\xff\xfe binary"), ("latin1.yaml", "kind: Gateway # caf\xe9\n".encode("latin-1"))],
)
def test_a_file_that_is_not_utf8_is_one_line_naming_it(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    for command in ("validate", "run"):
        proc = (
            mirrorgate(command, "-f", str(path), "--no-watch")
            if command == "run"
            else mirrorgate(command, "-f", str(path))
        )
        assert proc.returncode == 1, proc.stderr
        assert f"{path}: cannot read file:" in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_missing_path_is_one_line_naming_it(tmp_path: Path) -> None:
    proc = mirrorgate("run", "-f", str(tmp_path / "nope"), "--admin", "off")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"{tmp_path / 'nope'}: cannot read file: No such file or directory"
    assert "Traceback" not in proc.stderr


def test_validate_warns_but_exits_0(tmp_path: Path) -> None:
    conf = tmp_path / "empty.yaml"
    conf.write_text("")
    proc = mirrorgate("validate", "-f", str(conf))
    assert proc.returncode == 0
    assert proc.stderr.splitlines() == [
        "warning: no listener is served: the configuration has no Gateway (0 object(s) loaded)",
        "0 object(s) valid",
    ]


def test_echo_port_taken_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = mirrorgate("echo", "--bind", "127.0.0.1", "--port", str(port))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"mirrorgate echo: cannot listen on 127.0.0.1:{port}: ")
    assert len(proc.stderr.splitlines()) == 1


def test_demo_port_asked_for_and_taken_is_an_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = mirrorgate("demo", "--no-serve", "--requests", "0", "--port", str(port))
    assert proc.returncode == 1
    assert proc.stderr == f"mirrorgate demo: port {port} on 127.0.0.1 is already in use\n"
    assert proc.stdout == ""


def test_demo_default_port_taken_says_which_it_chose_and_removes_its_files() -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", 8080))
        except OSError:
            pass  # someone else holds 8080: taken either way
        taken.listen()
        proc = mirrorgate("demo", "--no-serve", "--requests", "0")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first.startswith("mirrorgate demo: port 8080 is taken; using port ")
    chosen = first.rsplit("using port ", 1)[1].split()[0]
    assert f"gateway on 127.0.0.1:{chosen}," in proc.stdout
    conf = next(line for line in proc.stdout.splitlines() if line.startswith("configuration: "))
    assert not Path(conf.split()[1]).parent.exists()
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", ["validate", "status"])
def test_a_directory_that_cannot_be_listed_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """In-process (the suite may run as root, for whom no directory is unreadable): listing fails."""
    from mirrorgate.cli import main

    def refuse(self: Path) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)
    assert main([command, "-f", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"{tmp_path}: cannot read: Permission denied"
    with pytest.raises(ConfigInvalid) as caught:  # what `run` prints, one line, exit 1
        load_config([str(tmp_path)], "127.0.0.1")
    assert caught.value.lines == [f"{tmp_path}: cannot read: Permission denied"]


def test_demo_removes_its_files_when_stopped_while_serving() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirrorgate", "demo", "--port", "0", "--requests", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    conf = next(line for line in lines if line.startswith("configuration: "))
    assert not Path(conf.split()[1]).parent.exists()
    assert "Traceback" not in err
