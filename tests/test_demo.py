"""`mirrorgate demo` end to end, as a real process: mirroring visible in its output."""

import json
import re
import subprocess
import sys
import urllib.request


def test_demo_walkthrough_shows_mirroring() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mirrorgate", "demo", "--no-serve", "--port", "0", "--requests", "100"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Traceback" not in proc.stderr
    # the primary answered, the 100% mirror received every request, the responses of the mirror were dropped
    assert out.count("-> 200 from pod backend-5d9c7b6f4-x2k8q") == 3
    assert "backend answered 3, backend-2 received 3 mirrored copies" in out
    assert re.search(r"\[backend-2\] Echoing back request made to /get\?demo=2 to client", out)
    # the percent mirror: a binomial count for 100 draws at 42% (generous bound: 5 sigma)
    m = re.search(r"foo-v2 received (\d+) mirrored copies", out)
    assert m is not None
    assert 42 - 25 <= int(m.group(1)) <= 42 + 25
    assert "answered by: {'foo-v1-5d9c7b6f4-x2k8q': 100}" in out
    assert re.search(r"http-mirror/rule/0/mirror/0 -> service/default/backend-2:3000: sent 3, .*'2xx': 3", out)


def test_the_demo_admin_server_shows_its_mirrors() -> None:
    """Serving, the demo names its admin server's /mirrors and /dashboard, and /mirrors lists the
    walkthrough's two mirrors with their counts."""
    with subprocess.Popen(
        [sys.executable, "-m", "mirrorgate", "demo", "--port", "0", "--requests", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:  # the process prints "Press Ctrl-C to stop." once serving
                lines.append(line)
                if "Press Ctrl-C" in line:
                    break
            out = "".join(lines)
            m = re.search(r"curl http://127\.0\.0\.1:(\d+)/mirrors\n", out)
            assert m is not None, out
            assert f"open http://127.0.0.1:{m.group(1)}/dashboard" in out
            with urllib.request.urlopen(f"http://127.0.0.1:{m.group(1)}/mirrors", timeout=10) as resp:
                mirrors = {entry["backend"]: entry["sent"] for entry in json.load(resp)["mirrors"]}
            assert mirrors["service/default/backend-2:3000"] == 3
            assert "service/default/foo-v2:8080" in mirrors
        finally:
            proc.terminate()
            proc.wait(30)
