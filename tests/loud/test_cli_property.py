"""Property: whatever the arguments and whatever bytes the ``-f`` file holds, ``mirrorgate`` exits
0, 1 or 2 and never prints a traceback.

Each example runs a real ``python -m mirrorgate`` process (the CLI is the unit under test: argument
parsing, loading, logging set-up and exit codes, as a user meets them). A random command that is
valid may start serving (``run`` with a file that loads to an empty configuration, ``echo`` with a
free port, ``demo`` without ``--no-serve``): the process gets ``RUNNING_FOR`` seconds, and one still
running then is a valid command doing its job, so it is killed and accepted (its stderr must still
hold no traceback). Everything runs in a temporary directory (``--access-log`` values create files
there), with the admin server off unless the example says otherwise; worker counts stay small.
"""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

RUNNING_FOR = 2.0  # seconds a process may run before it counts as serving

ARG_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
PORTS = st.sampled_from(["0", "-1", "65535", "65536", "99999", "8x", "", " 1", "1e3"]) | ARG_TEXT
NUMBERS = st.sampled_from(["0", "-5", "1.5", "nan", "inf", "-inf", "1e309", "10", ""]) | ARG_TEXT
ADDRESSES = st.sampled_from(["127.0.0.1", "::1", "not-an-ip", "0.0.0.0", "[::1]", "1.2.3.4.5"]) | ARG_TEXT
HOST_PORTS = st.sampled_from(["off", "127.0.0.1:0", "localhost:0", "[::1]:0", "x:1", ":", "1.2.3.4:70000"]) | ARG_TEXT
FLAGS: dict[str, dict[str, st.SearchStrategy[str] | None]] = {
    "run": {
        "--bind": ADDRESSES,
        "--grace": NUMBERS,
        "--access-log": st.sampled_from(["-", "off", "log.txt", "/nonexistent/dir/log", ".", ""]) | ARG_TEXT,
        "--access-log-json": None,
        "--mirror-access-log": st.sampled_from(["-", "off", "mirror.txt", "/nonexistent/dir/log", ".", ""]) | ARG_TEXT,
        "--admin": HOST_PORTS,
        "--log-format": st.sampled_from(["text", "json", "xml"]),
        "--log-level": st.sampled_from(["debug", "info", "warning", "loud"]),
        "--no-shadow-host-suffix": None,
        "--workers": st.sampled_from(["0", "1", "2", "-1", "auto", "x", ""]),
        "--no-watch": None,
        "--limit": st.sampled_from(["max-headers=200", "max-headers=-1", "nope=1", "body-timeout=x", "="]) | ARG_TEXT,
        "--mirror-limit": st.sampled_from(["timeout=2", "timeout=-1", "x=y", "breaker-failures=0"]) | ARG_TEXT,
    },
    "validate": {},
    "status": {"-o": st.sampled_from(["yaml", "json", "xml"]), "--bind": ADDRESSES, "--routing-table": None},
    "demo": {"--port": PORTS, "--requests": st.sampled_from(["0", "1", "-1", "x"]), "--no-serve": None},
    "echo": {"--port": PORTS, "--bind": ADDRESSES, "--name": ARG_TEXT, "--namespace": ARG_TEXT},
}
WITH_FILE = ("run", "validate", "status")


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A subcommand with some of its flags and random values, sometimes junk mixed in."""
    command = draw(st.sampled_from([*FLAGS, "", "--version", "nope"]))
    argv = [command] if command else []
    if (command in WITH_FILE and draw(st.booleans())) or draw(st.integers(0, 9)) == 0:
        argv += ["-f", draw(st.sampled_from(["conf.yaml", "conf.yaml", "conf.yaml", "missing.yaml", ".", "-"]))]
    flags = FLAGS.get(command, {})
    for flag in draw(st.lists(st.sampled_from(sorted(flags)), max_size=4)) if flags else []:
        values = flags[flag]
        argv += [flag] if values is None else [flag, draw(values)]
    if draw(st.integers(0, 4)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(ARG_TEXT))
    if command == "run" and "--admin" not in argv:
        argv += ["--admin", "off"]
    if command == "demo":
        argv += ["--requests", "2"]  # bounded traffic; a random --requests given earlier is overridden
    return argv


def _run(argv: list[str], cwd: str) -> tuple[int | None, str]:
    """(exit code, or None when still running after ``RUNNING_FOR``; stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mirrorgate", *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": cwd},  # what it creates (the demo's directory) goes with cwd
    )
    try:
        _, err = proc.communicate(timeout=RUNNING_FOR)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # as a user stops it; a stuck one is killed
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        return None, err.decode(errors="replace")
    return proc.returncode, err.decode(errors="replace")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argv=command_lines(), content=st.binary(max_size=300))
def test_any_command_line_and_file_exits_0_1_or_2_without_a_traceback(argv: list[str], content: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="mirrorgate-prop-") as cwd:
        (Path(cwd) / "conf.yaml").write_bytes(content)
        code, err = _run(argv, cwd)
    assert "Traceback" not in err, (argv, err)
    assert code in (None, 0, 1, 2), (argv, code, err)
